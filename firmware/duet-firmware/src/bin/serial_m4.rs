//! RPC serial, the M4 image: a line every second, then a burst without pause; all printed
//! through the M7's console, complete and in order.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::serial::{BurstLine, BURST_LINES, SLOW_LINES};
use duet_firmware::{delay, finish, init_m4, m4_begin, m4_done, rpc_println, M4Rpc};
use duet_rpmsg::{Arduino, Remote};

#[entry]
fn main() -> ! {
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(init_m4(), Arduino));
    if let Err(e) = run(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_done(&mut rpc)
}

fn run(rpc: &mut M4Rpc<'_>) -> Result<(), duet::SerialError> {
    m4_begin(rpc)?;
    for i in 1..=SLOW_LINES {
        rpc_println(rpc, format_args!("Printed from M4 core ({i})"))?;
        delay(1000);
    }
    for n in 1..=BURST_LINES {
        rpc_println(rpc, format_args!("{}", BurstLine(n)))?;
    }
    Ok(())
}
