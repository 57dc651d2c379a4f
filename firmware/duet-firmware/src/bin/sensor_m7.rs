//! RPC sensor, the M7 image: binds `sensorRead` (A0 through ADC1), boots the M4, serves it
//! and forwards its prints.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use core::cell::{Cell, RefCell};
use core::time::Duration;

use cortex_m_rt::entry;
use duet_firmware::sensor::READINGS;
use duet_firmware::{
    finish, init_m7, m7_begin, m7_serve, println, serve_limit, M7Rpc, ServeError, M4_DONE,
};
use duet_rpmsg::{Arduino, Host};
use duet_stm32h7::adc::Adc1;
use duet_stm32h7::board::BOARD;

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), ServeError> {
    let chip = init_m7();
    let adc = match Adc1::init() {
        Ok(a) => RefCell::new(a),
        Err(e) => {
            println!("{e}");
            duet_firmware::exit(1)
        }
    };
    let sensor_read = || -> u16 {
        match adc.borrow_mut().read(BOARD.a0_channel) {
            Ok(v) => v,
            Err(e) => {
                println!("{e}");
                0
            }
        }
    };
    let done = Cell::new(false);
    let on_done = || done.set(true);
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(Host::new(chip, Arduino).map_err(duet::Error::from)?);
    rpc.bind("sensorRead", &sensor_read)
        .map_err(|_| duet::Error::TooManyCalls)?;
    rpc.bind(M4_DONE, &on_done)
        .map_err(|_| duet::Error::TooManyCalls)?;
    m7_begin(&mut rpc)?;
    let limit = serve_limit(Duration::from_millis(u64::from(READINGS) * 1000));
    m7_serve(&mut rpc, &done, limit)
}
