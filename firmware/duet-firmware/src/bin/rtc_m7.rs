//! RTC, the M7 image: prints every time the M4 sends (`rtcTime` notifications).
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use core::cell::Cell;
use core::time::Duration;

use cortex_m_rt::entry;
use duet_firmware::rtc::READINGS;
use duet_firmware::{
    finish, init_m7, m7_begin, m7_serve, println, serve_limit, M7Rpc, ServeError, M4_DONE,
};
use duet_rpmsg::{Arduino, Host};
use duet_stm32h7::rtc::Ctime;

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), ServeError> {
    let chip = init_m7();
    let show_time = |unix: i64| println!("RTC time (from the M4): {}", Ctime(unix));
    let done = Cell::new(false);
    let on_done = || done.set(true);
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(Host::new(chip, Arduino).map_err(duet::Error::from)?);
    rpc.bind("rtcTime", &show_time)
        .map_err(|_| duet::Error::TooManyCalls)?;
    rpc.bind(M4_DONE, &on_done)
        .map_err(|_| duet::Error::TooManyCalls)?;
    m7_begin(&mut rpc)?;
    let limit = serve_limit(Duration::from_millis(u64::from(READINGS) * 1000));
    m7_serve(&mut rpc, &done, limit)
}
