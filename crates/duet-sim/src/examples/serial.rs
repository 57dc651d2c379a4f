//! RPC serial: the M4 has no serial port of its own, so it prints through the M7
//! (`RPC.println` on the M4, `RPC.read` + `Serial.write` on the M7). duet sends whole buffers
//! and applies backpressure, so a burst arrives complete and in order.

use std::time::Duration;

use duet::Rpc;

use crate::machine::{M4Rpc, M7Rpc, ARDUINO_M4_ADDRESS, M4, M7};

use super::{m4_begin, m7_serve, report, rpc_println, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "serial",
    title: "RPC serial: the M4 prints through the M7's Serial Monitor",
    m4_address: ARDUINO_M4_ADDRESS,
    m7,
    m4,
};

/// Lines the M4 prints once a second (as in the guide).
pub const SLOW_LINES: u32 = 3;
/// Lines it then prints without any pause.
pub const BURST_LINES: u32 = 12;

/// The `n`th line of the burst (numbered from 1): long enough that the burst spans several
/// transport buffers.
pub fn burst_line(n: u32) -> String {
    format!("burst {n:02}/{BURST_LINES}: the quick brown fox jumps over the lazy dog")
}

/// The M7: boots the M4 and copies its RPC serial output to the Serial Monitor.
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
    let limit = Duration::from_millis(u64::from(SLOW_LINES) * 1000) + BOOT_TIMEOUT;
    m7_serve(&mut rpc, &boot, &board, &serial, limit)?;
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: a line every second, then a burst.
pub fn m4(core: M4) -> Outcome {
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    m4_begin(&mut rpc)?;
    for i in 1..=SLOW_LINES {
        rpc_println(&mut rpc, &format!("Printed from M4 core ({i})"))?;
        core.board.delay(1000);
    }
    for n in 1..=BURST_LINES {
        rpc_println(&mut rpc, &burst_line(n))?;
    }
    report(&core.board, rpc.stats());
    Ok(())
}
