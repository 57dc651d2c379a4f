//! RTC: the M4 sets the real-time clock and reads it back every second, sending each reading
//! to the M7 (a notification, no reply); the M7 prints the time.

use std::time::Duration;

use duet::Rpc;

use crate::board::ctime;
use crate::machine::{M4Rpc, M7Rpc, ARDUINO_M4_ADDRESS, M4, M7};

use super::{m4_begin, m7_serve, report, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "rtc",
    title: "RTC: the M4 sets and reads the RTC, the M7 prints the time",
    m4_address: ARDUINO_M4_ADDRESS,
    m7,
    m4,
};

/// What the M4 sets the RTC to: 2025-01-01 00:00:00 UTC.
pub const START: i64 = 1_735_689_600;
/// How many readings it sends.
pub const READINGS: u32 = 3;

/// The M7: prints every time the M4 sends.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let show_time = |unix: i64| serial.println(&format!("RTC time (from the M4): {}", ctime(unix)));
    let mut rpc: M7Rpc<'_> = Rpc::new(transport);
    rpc.bind("rtcTime", &show_time)?;
    rpc.start(&mut boot, ARDUINO_M4_ADDRESS, BOOT_TIMEOUT)?;
    let limit = Duration::from_millis(u64::from(READINGS) * 1000) + BOOT_TIMEOUT;
    m7_serve(&mut rpc, &boot, &board, &serial, limit)?;
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: sets the RTC, then reads it every second and tells the M7.
pub fn m4(core: M4) -> Outcome {
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    m4_begin(&mut rpc)?;
    core.board.set_time(START);
    rpc.notify("rtcTime", (core.board.time(),))?;
    for _ in 0..READINGS {
        core.board.delay(1000);
        rpc.notify("rtcTime", (core.board.time(),))?;
    }
    report(&core.board, rpc.stats());
    Ok(())
}
