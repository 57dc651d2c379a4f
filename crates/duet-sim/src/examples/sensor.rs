//! RPC sensor: the M7 binds `sensorRead`, which reads the potentiometer on A0; the M4 calls it
//! every second and prints the value through RPC serial.

use std::time::Duration;

use duet::Rpc;

use crate::board::A0;
use crate::machine::{M4Rpc, M7Rpc, ARDUINO_M4_ADDRESS, M4, M7};

use super::{m4_begin, m7_serve, report, rpc_println, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "sensor",
    title: "RPC sensor: the M4 calls sensorRead on the M7 every second",
    m4_address: ARDUINO_M4_ADDRESS,
    m7,
    m4,
};

/// How many readings the M4 takes.
pub const READINGS: u32 = 5;

/// The M7: binds `sensorRead` (A0), boots the M4, serves it and forwards its prints.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let sensor_read = || board.analog_read(A0);
    let mut rpc: M7Rpc<'_> = Rpc::new(transport);
    rpc.bind("sensorRead", &sensor_read)?;
    rpc.start(&mut boot, ARDUINO_M4_ADDRESS, BOOT_TIMEOUT)?;
    let limit = Duration::from_millis(u64::from(READINGS) * 1000) + BOOT_TIMEOUT;
    m7_serve(&mut rpc, &boot, &board, &serial, limit)?;
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: every second, `sensorRead` on the M7, then print the value.
pub fn m4(core: M4) -> Outcome {
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    m4_begin(&mut rpc)?;
    for _ in 0..READINGS {
        core.board.delay(1000);
        let value: u16 = rpc.call("sensorRead", ())?;
        rpc_println(&mut rpc, &format!("Sensor value: {value}"))?;
    }
    report(&core.board, rpc.stats());
    Ok(())
}
