//! LED control from the host, the M4 image: binds `led` (its green LED; returns whether it is
//! lit) and serves forever.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::{finish, init_m4, m4_begin, m4_serve, M4Rpc};
use duet_rpmsg::{Arduino, Remote};
use duet_stm32h7::board::BOARD;

#[entry]
fn main() -> ! {
    let green = BOARD.green;
    green.init();
    let led = |on: bool| {
        green.set(on);
        on
    };
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(init_m4(), Arduino));
    if rpc.bind("led", &led).is_err() {
        finish("M4", Err("cannot bind led"));
    }
    if let Err(e) = m4_begin(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_serve(&mut rpc)
}
