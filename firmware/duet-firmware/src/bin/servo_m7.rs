//! RPC servo, the M7 image: attaches the servo (50 Hz pulse on the board's D5, TIM3), binds
//! `servoMove(angle)` (clamped to 0..=180, sets the pulse, printed, returned), boots the M4 and
//! serves it.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use core::cell::Cell;
use core::time::Duration;

use cortex_m_rt::entry;
use duet_firmware::servo::SWEEP;
use duet_firmware::{
    finish, init_m7, m7_begin, m7_serve, println, serve_limit, M7Rpc, ServeError, M4_DONE,
};
use duet_rpmsg::{Arduino, Host};
use duet_stm32h7::board::BOARD;
use duet_stm32h7::servo::Servo;

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), ServeError> {
    let chip = init_m7();
    let servo = match Servo::attach(BOARD.servo) {
        Ok(s) => s,
        Err(e) => {
            println!("{e}");
            duet_firmware::exit(1);
        }
    };
    let servo_move = |angle: i32| -> u8 {
        let at = servo.write(angle);
        println!("servoMove({angle}): servo at {at} degrees");
        at
    };
    let done = Cell::new(false);
    let on_done = || done.set(true);
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(Host::new(chip, Arduino).map_err(duet::Error::from)?);
    rpc.bind("servoMove", &servo_move)
        .map_err(|_| duet::Error::TooManyCalls)?;
    rpc.bind(M4_DONE, &on_done)
        .map_err(|_| duet::Error::TooManyCalls)?;
    m7_begin(&mut rpc)?;
    let limit = serve_limit(Duration::from_millis(SWEEP.len() as u64 * 500));
    m7_serve(&mut rpc, &done, limit)
}
