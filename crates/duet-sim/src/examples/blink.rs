//! Core identification (the guide's first example): the same sketch runs on both cores; it
//! asks `cpu_id()` which core it is on and blinks that core's LED (M7: blue every 100 ms,
//! M4: green every 500 ms), saying which core it is.

use std::time::Duration;

use duet::{CpuId, Rpc};

use crate::board::{Board, Pin, HIGH, LEDB, LEDG, LOW};
use crate::machine::{M4Rpc, M7Rpc, ARDUINO_M4_ADDRESS, M4, M7};

use super::{
    forward_serial, m4_begin, m7_serve, report, rpc_println, Example, Outcome, BOOT_TIMEOUT,
};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "blink",
    title: "core identification: each core blinks its own LED, chosen by cpu_id",
    m4_address: ARDUINO_M4_ADDRESS,
    m7,
    m4,
};

/// How long the demo blinks, in ms of each core's clock.
pub const BLINK_FOR_MS: u64 = 2000;

/// The shared sketch's choice: which LED and how fast, by core.
pub fn led_for(cpu: CpuId) -> (Pin, u64) {
    match cpu {
        CpuId::Cm7 => (LEDB, 100),
        CpuId::Cm4 => (LEDG, 500),
    }
}

/// What the sketch says about itself.
pub fn hello(cpu: CpuId) -> String {
    let (led, ms) = led_for(cpu);
    let core = if cpu == CpuId::Cm7 { "M7" } else { "M4" };
    format!(
        "Hello from the {core} (cpu_id {}): blinking the {} LED every {ms} ms",
        cpu.as_u8(),
        led.colour()
    )
}

/// One blink of the sketch's `loop()`: on (the LED is active-low), wait, off, wait.
fn blink(board: &Board, led: Pin, ms: u64) {
    board.digital_write(led, LOW);
    board.delay(ms);
    board.digital_write(led, HIGH);
    board.delay(ms);
}

/// The M7: boots the M4, then blinks, forwarding the M4's greeting between blinks.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let mut rpc: M7Rpc<'_> = Rpc::new(transport);
    rpc.start(&mut boot, ARDUINO_M4_ADDRESS, BOOT_TIMEOUT)?;
    let cpu = rpc.cpu_id();
    serial.println(&hello(cpu));
    let (led, ms) = led_for(cpu);
    while board.millis() < BLINK_FOR_MS {
        blink(&board, led, ms);
        forward_serial(&mut rpc, &serial);
    }
    let limit = Duration::from_millis(BLINK_FOR_MS) + BOOT_TIMEOUT;
    m7_serve(&mut rpc, &boot, &board, &serial, limit)?;
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: says hello through the M7, then blinks.
pub fn m4(core: M4) -> Outcome {
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    m4_begin(&mut rpc)?;
    let cpu = rpc.cpu_id();
    rpc_println(&mut rpc, &hello(cpu))?;
    let (led, ms) = led_for(cpu);
    while core.board.millis() < BLINK_FOR_MS {
        blink(&core.board, led, ms);
    }
    report(&core.board, rpc.stats());
    Ok(())
}
