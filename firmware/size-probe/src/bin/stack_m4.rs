//! The whole duet stack on the M4 (remote role): transport + codec + RPC + stream, two bound
//! functions; the engine in a static so its RAM shows as .bss.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use duet::Rpc;
use duet_rpmsg::{Arduino, Remote};
use size_probe::chip::Chip;
use size_probe::stack::{bind, exercise};

static mut RPC: MaybeUninit<Rpc<'static, Remote<Chip, Arduino>>> = MaybeUninit::uninit();

#[entry]
fn main() -> ! {
    // SAFETY: the only access to RPC, once, before any other use.
    let rpc = unsafe { (*addr_of_mut!(RPC)).write(Rpc::new(Remote::new(Chip, Arduino))) };
    bind(rpc);
    loop {
        exercise(rpc);
    }
}
