//! LED control from the host side (the guide's MicroPython example): the M4 binds `led`, and
//! the M7 (the host, which booted it at MicroPython's default address) switches the M4's LED
//! on and off by calling it.

use duet::Rpc;

use crate::board::{HIGH, LEDG, LOW};
use crate::machine::{M4Rpc, M7Rpc, M4, M7, MICROPYTHON_M4_ADDRESS};

use super::{m4_begin, m4_serve, report, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "led",
    title: "LED control from the host: the M7 calls led(true/false) on the M4 (MicroPython)",
    m4_address: MICROPYTHON_M4_ADDRESS,
    m7,
    m4,
};

/// How many times the M7 switches the LED on and off.
pub const TOGGLES: u32 = 3;

/// The M7: boots the M4, then calls `led` every half second.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let mut rpc: M7Rpc<'_> = Rpc::new(transport);
    rpc.start(&mut boot, MICROPYTHON_M4_ADDRESS, BOOT_TIMEOUT)?;
    for _ in 0..TOGGLES {
        for on in [true, false] {
            let lit: bool = rpc.call("led", (on,))?;
            serial.println(&format!(
                "led({on}) -> the M4's LED is {}",
                if lit { "on" } else { "off" }
            ));
            board.delay(500);
        }
    }
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: binds `led` (its green LED; returns whether it is lit) and serves.
pub fn m4(core: M4) -> Outcome {
    let board = &core.board;
    let led = |on: bool| {
        board.digital_write(LEDG, if on { LOW } else { HIGH });
        on
    };
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    rpc.bind("led", &led)?;
    m4_begin(&mut rpc)?;
    m4_serve(&mut rpc, board)?;
    report(board, rpc.stats());
    Ok(())
}
