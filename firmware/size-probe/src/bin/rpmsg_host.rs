//! The transport's host role alone (what the M7 image links): init, poll, send, receive.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use duet_rpmsg::{Arduino, Host};
use size_probe::chip::{exercise, Chip};

#[entry]
fn main() -> ! {
    let Ok(mut host) = Host::new(Chip, Arduino) else {
        loop {
            core::hint::spin_loop();
        }
    };
    loop {
        exercise(&mut host);
    }
}
