//! Process mode for examples: one core of an example as this process, attached to the
//! process-mode file (`PROCESS-MODE.md`); the other core is another process: a second
//! `duet-sim --role ...`, or a peer written in C or Python (docs/process-mode.md).
//!
//! `duet-sim --role host --shm FILE sensor` runs the sensor example's M7 program: it creates
//! (re-initialises) FILE, writes the resource table and waits up to
//! [`BOOT_TIMEOUT`](crate::examples::BOOT_TIMEOUT) for the M4 to announce its endpoints
//! ("booting" the M4 starts nothing: start the other process yourself). `--role remote`
//! runs the M4 program: it waits for FILE to be initialised and attaches. Delete a leftover
//! FILE before starting either side.
//!
//! A program that serves "until power-off" (the M4 of `led`, `objects`, `errors`; the M7 of
//! `sensor`, `serial`, ...) stops once the other process has detached (its pid word in the
//! file went back to 0), or at the time limit.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use duet::CpuId;

use crate::board::{Console, Peripherals};
use crate::examples::{Example, ExampleError};
use crate::machine::{process_core, Side};
use crate::runner::Role;
use crate::SimPlatform;

/// Runs the `role` core's program of `example` on the process-mode file `shm`, printing on
/// `console` at `speed`, recording into `recorder` if given. The host creates the file; the
/// remote waits up to `limit` for it. Programs that serve until power-off stop when the other
/// process detaches or after `limit`.
pub fn run_side(
    example: &Example,
    role: Role,
    shm: &Path,
    console: &Console,
    speed: u32,
    recorder: Option<Arc<duet_trace::Recorder>>,
    limit: Duration,
) -> Result<Peripherals, ExampleError> {
    let until = StdInstant::now() + limit;
    let fail = |e: String| match role {
        Role::Host => ExampleError::M7(e),
        Role::Remote => ExampleError::M4(e),
    };
    let platform = match role {
        Role::Host => SimPlatform::open_file(shm, CpuId::Cm7, true),
        Role::Remote => SimPlatform::attach_file(shm, CpuId::Cm4, limit),
    }
    .map_err(|e| fail(format!("{}: {e}", shm.display())))?;
    let peripherals = Peripherals::new(console.clone(), speed);
    if let Some(r) = &recorder {
        r.record_now(
            role.core(),
            duet_trace::EventKind::Mark {
                text: format!("example {} ({} only)", example.name, core_label(role)),
            },
        );
    }
    let side = process_core(platform, &peripherals, recorder, until)
        .map_err(|e| fail(format!("{e:?}")))?;
    let r = match side {
        Side::M7(m7) => (example.m7)(m7),
        Side::M4(m4) => (example.m4)(m4),
    };
    console.finish();
    r.map_err(|e| fail(e.to_string()))?;
    Ok(peripherals)
}

fn core_label(role: Role) -> &'static str {
    match role {
        Role::Host => "M7",
        Role::Remote => "M4",
    }
}
