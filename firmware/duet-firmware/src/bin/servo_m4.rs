//! RPC servo, the M4 image: sweeps the servo by calling `servoMove` on the M7, half a second
//! per step (the last angle is out of range on purpose).
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::servo::SWEEP;
use duet_firmware::{delay, finish, init_m4, m4_begin, m4_done, M4Rpc};
use duet_rpmsg::{Arduino, Remote};

#[entry]
fn main() -> ! {
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(init_m4(), Arduino));
    if let Err(e) = run(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_done(&mut rpc)
}

fn run(rpc: &mut M4Rpc<'_>) -> Result<(), duet::Error> {
    m4_begin(rpc)?;
    for angle in SWEEP {
        let _at: u8 = rpc.call("servoMove", (angle,))?;
        delay(500);
    }
    Ok(())
}
