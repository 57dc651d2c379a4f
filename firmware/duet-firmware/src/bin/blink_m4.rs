//! Core identification, the M4 image: the same sketch as the M7's; says hello through the
//! M7's console (RPC serial), then blinks its own LED (green, every 500 ms).
#![no_std]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]
#![no_main]

use cortex_m_rt::entry;
use duet_firmware::blink::{blink, led_for, BLINK_FOR_MS};
use duet_firmware::{finish, init_m4, m4_begin, m4_done, millis, rpc_println, M4Rpc};
use duet_rpmsg::{Arduino, Remote};

#[entry]
fn main() -> ! {
    let chip = init_m4();
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(chip, Arduino));
    if let Err(e) = run(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_done(&mut rpc)
}

fn run(rpc: &mut M4Rpc<'_>) -> Result<(), duet::SerialError> {
    m4_begin(rpc)?;
    let cpu = rpc.cpu_id();
    let (led, ms) = led_for(cpu);
    rpc_println(
        rpc,
        format_args!(
            "Hello from the {} (cpu_id {}): blinking the {} LED every {ms} ms",
            cpu.name(),
            cpu.as_u8(),
            led.colour
        ),
    )?;
    led.init();
    while millis() < BLINK_FOR_MS {
        blink(&led, ms);
    }
    Ok(())
}
