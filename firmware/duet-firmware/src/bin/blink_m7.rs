//! Core identification, the M7 image: boots the M4, says which core it is (from `cpu_id`) and
//! blinks its own LED (blue, every 100 ms), forwarding the M4's greeting between blinks.
#![no_std]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]
#![no_main]

use core::cell::Cell;
use core::time::Duration;

use cortex_m_rt::entry;
use duet_firmware::blink::{blink, led_for, BLINK_FOR_MS};
use duet_firmware::{
    finish, forward_serial, init_m7, m7_begin, m7_serve, millis, println, serve_limit, M7Rpc,
    ServeError, M4_DONE,
};
use duet_rpmsg::{Arduino, Host};

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), ServeError> {
    let chip = init_m7();
    let done = Cell::new(false);
    let on_done = || done.set(true);
    let transport = Host::new(chip, Arduino).map_err(duet::Error::from)?;
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(transport);
    rpc.bind(M4_DONE, &on_done)
        .map_err(|_| duet::Error::TooManyCalls)?;
    m7_begin(&mut rpc)?;
    let cpu = rpc.cpu_id();
    let (led, ms) = led_for(cpu);
    println!(
        "Hello from the {} (cpu_id {}): blinking the {} LED every {ms} ms",
        cpu.name(),
        cpu.as_u8(),
        led.colour
    );
    led.init();
    while millis() < BLINK_FOR_MS {
        blink(&led, ms);
        forward_serial(&mut rpc);
    }
    m7_serve(
        &mut rpc,
        &done,
        serve_limit(Duration::from_millis(BLINK_FOR_MS)),
    )
}
