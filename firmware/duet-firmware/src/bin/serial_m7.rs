//! RPC serial, the M7 image: boots the M4 and copies its RPC serial output to the console.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use core::cell::Cell;
use core::time::Duration;

use cortex_m_rt::entry;
use duet_firmware::serial::{BURST_LINES, SLOW_LINES};
use duet_firmware::{finish, init_m7, m7_begin, m7_serve, serve_limit, M7Rpc, ServeError, M4_DONE};
use duet_rpmsg::{Arduino, Host};

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), ServeError> {
    let chip = init_m7();
    let done = Cell::new(false);
    let on_done = || done.set(true);
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(Host::new(chip, Arduino).map_err(duet::Error::from)?);
    rpc.bind(M4_DONE, &on_done)
        .map_err(|_| duet::Error::TooManyCalls)?;
    m7_begin(&mut rpc)?;
    let limit = serve_limit(Duration::from_millis(
        u64::from(SLOW_LINES + BURST_LINES) * 1000,
    ));
    m7_serve(&mut rpc, &done, limit)
}
