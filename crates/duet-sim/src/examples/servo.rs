//! RPC servo: the M7 drives the servo and binds `servoMove(angle)`; the M4 sweeps it by calling
//! that function. The M7 clamps the angle to 0..=180 and returns where the servo went.

use std::time::Duration;

use duet::Rpc;

use crate::machine::{M4Rpc, M7Rpc, ARDUINO_M4_ADDRESS, M4, M7};

use super::{m4_begin, m7_serve, report, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "servo",
    title: "RPC servo: the M4 calls servoMove(angle) on the M7",
    m4_address: ARDUINO_M4_ADDRESS,
    m7,
    m4,
};

/// The M4's sweep (the last one is out of range on purpose).
pub const SWEEP: [i32; 7] = [0, 45, 90, 135, 180, 90, 270];

/// The M7: binds `servoMove`, boots the M4 and serves it.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let servo_move = |angle: i32| {
        let at = board.servo_write(angle);
        serial.println(&format!("servoMove({angle}): servo at {at} degrees"));
        at
    };
    let mut rpc: M7Rpc<'_> = Rpc::new(transport);
    rpc.bind("servoMove", &servo_move)?;
    rpc.start(&mut boot, ARDUINO_M4_ADDRESS, BOOT_TIMEOUT)?;
    let limit = Duration::from_millis(SWEEP.len() as u64 * 500) + BOOT_TIMEOUT;
    m7_serve(&mut rpc, &boot, &board, &serial, limit)?;
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: sweeps the servo, half a second per step.
pub fn m4(core: M4) -> Outcome {
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    m4_begin(&mut rpc)?;
    for angle in SWEEP {
        let _at: u8 = rpc.call("servoMove", (angle,))?;
        core.board.delay(500);
    }
    report(&core.board, rpc.stats());
    Ok(())
}
