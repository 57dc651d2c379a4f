//! The examples of Arduino's "Guide to GIGA R1 Dual Cores" (and its MicroPython section),
//! ported to duet: each is an M7 program and an M4 program written only against the duet API
//! and the simulated [`board`](crate::board), run by [`run`] on a fresh [`Machine`].
//!
//! | name | what it shows |
//! |---|---|
//! | [`blink`] | core identification: one sketch, each core blinks its own LED, chosen by `cpu_id` |
//! | [`serial`] | RPC serial: the M4 prints through the M7, whole lines, nothing lost |
//! | [`sensor`] | the M4 calls `sensorRead` on the M7 every second; the M7 reads A0 |
//! | [`servo`] | the M4 calls `servoMove(angle)` on the M7, which moves the servo |
//! | [`rtc`] | the M4 sets the RTC and reads it back; the M7 prints the time |
//! | [`led`] | the host (M7) calls `led(true/false)` on the M4 (MicroPython's example) |
//! | [`objects`] | bound objects (`"foo1.add"`) and several `call_async` joined (MicroPython) |
//! | [`errors`] | what duet does better: error values, timeouts, messages over one buffer |
//!
//! Every program returns [`Outcome`]: an error is a value, reported by [`run`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use duet::{Rpc, SerialError, Transport};
use duet_rpmsg::Platform;

use crate::board::{Board, Console, Peripherals, Source};
use crate::machine::{sim_config, Boot, Machine, M4, M7};

pub mod blink;
pub mod errors;
pub mod led;
pub mod objects;
pub mod rtc;
pub mod sensor;
pub mod serial;
pub mod servo;

/// What a program returns: `Ok`, or the error that stopped it.
pub type Outcome = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// How long the M7 waits for the M4 to come up, and the M4 for the M7's endpoints.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(5);

/// One example: its name on the command line, a title, and its two programs.
#[derive(Clone, Copy)]
pub struct Example {
    /// The command-line name (`duet-sim <name>`).
    pub name: &'static str,
    /// One line saying what it shows (the demo's header).
    pub title: &'static str,
    /// Where the M4 program is flashed (the M7 program boots this address).
    pub m4_address: u32,
    /// The M7 program.
    pub m7: fn(M7) -> Outcome,
    /// The M4 program.
    pub m4: fn(M4) -> Outcome,
}

/// Every example, in the demo's order.
pub const EXAMPLES: [Example; 8] = [
    blink::EXAMPLE,
    serial::EXAMPLE,
    sensor::EXAMPLE,
    servo::EXAMPLE,
    rtc::EXAMPLE,
    led::EXAMPLE,
    objects::EXAMPLE,
    errors::EXAMPLE,
];

/// The example called `name`.
pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

/// Why an example failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExampleError {
    /// The M7 program returned this error.
    M7(String),
    /// The M4 program returned this error.
    M4(String),
}

impl std::fmt::Display for ExampleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExampleError::M7(e) => write!(f, "the M7 program failed: {e}"),
            ExampleError::M4(e) => write!(f, "the M4 program failed: {e}"),
        }
    }
}

impl std::error::Error for ExampleError {}

/// Runs `example` on a fresh [`Machine`] whose Serial Monitor is `console`, `speed` times
/// faster than real time. Returns the hardware (events, console) for inspection.
pub fn run(example: &Example, console: &Console, speed: u32) -> Result<Peripherals, ExampleError> {
    run_traced(example, console, speed, None)
}

/// [`run`], recording the chip's traffic and activity into `recorder` if given (see
/// [`Machine::set_recorder`]); a marker with the example's name starts it.
pub fn run_traced(
    example: &Example,
    console: &Console,
    speed: u32,
    recorder: Option<Arc<duet_trace::Recorder>>,
) -> Result<Peripherals, ExampleError> {
    let mut machine = Machine::with(sim_config(), console.clone(), speed)
        .map_err(|e| ExampleError::M7(format!("{e:?}")))?;
    if let Some(r) = recorder {
        r.record_now(
            duet::CpuId::Cm7,
            duet_trace::EventKind::Mark {
                text: format!("example {}", example.name),
            },
        );
        machine.set_recorder(r);
    }
    let hw = machine.peripherals().clone();
    let m4_error = Arc::new(Mutex::new(None));
    let m4 = example.m4;
    let m4_slot = m4_error.clone();
    machine.flash_m4(example.m4_address, move |core| {
        if let Err(e) = m4(core) {
            *m4_slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
        }
    });
    let m7 = machine.run(example.m7).map_err(|e| e.to_string());
    let m4 = m4_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match (m7, m4) {
        (Err(e), _) => Err(ExampleError::M7(e)),
        (Ok(()), Some(e)) => Err(ExampleError::M4(e)),
        (Ok(()), None) => Ok(hw),
    }
}

/// Runs every example in order on `console`, each under a short header; stops at the first
/// failure.
pub fn demo(console: &Console, speed: u32) -> Result<(), ExampleError> {
    demo_traced(console, speed, None)
}

/// [`demo`], recording every example into `recorder` (one after the other on its clock).
pub fn demo_traced(
    console: &Console,
    speed: u32,
    recorder: Option<Arc<duet_trace::Recorder>>,
) -> Result<(), ExampleError> {
    console.note(
        Source::Demo,
        "duet on a simulated Arduino GIGA R1 (STM32H747: M7 + M4), the dual-core guide's examples",
    );
    console.note(
        Source::Demo,
        "(Serial Monitor lines as printed; hardware changes indented, [core clock] first)",
    );
    for e in &EXAMPLES {
        console.note(Source::Demo, "");
        console.note(Source::Demo, format!("=== {}: {} ===", e.name, e.title));
        run_traced(e, console, speed, recorder.clone())?;
    }
    console.note(Source::Demo, "");
    console.note(
        Source::Demo,
        format!("all {} examples done", EXAMPLES.len()),
    );
    Ok(())
}

// ---- What the guide's sketches do with the RPC library, as small duet helpers. ----

/// Prints `stats` of the board's core at the end of an example: a [`Source::Stats`] line
/// ([`stats_line`]) on the console.
pub fn report(board: &Board, stats: duet::Stats) {
    board
        .console()
        .note(Source::Stats, stats_line(board.core(), &stats));
}

/// One line with a core's counters: traffic per endpoint (messages/bytes), calls, doorbells,
/// high-water marks, and the error counters that are not zero.
pub fn stats_line(core: duet::CpuId, s: &duet::Stats) -> String {
    use std::fmt::Write;
    let name = match core {
        duet::CpuId::Cm7 => "M7",
        duet::CpuId::Cm4 => "M4",
    };
    let t = |t: duet::Traffic| format!("{}/{} B", t.messages, t.bytes);
    let (raw, rpc) = (duet::Endpoint::Raw as usize, duet::Endpoint::Rpc as usize);
    let mut line = format!(
        "[{name} stats] rpc sent {} recv {}; raw sent {} recv {}; calls {} ok {} failed; \
         doorbells {} rung {} woke; high water: rx {} B, tx {} B, serial {} B, {} in flight",
        t(s.sent[rpc]),
        t(s.received[rpc]),
        t(s.sent[raw]),
        t(s.received[raw]),
        s.calls.completed,
        s.calls.failed(),
        s.doorbells_rung,
        s.doorbells_received,
        s.high_water.rx_bytes,
        s.high_water.tx_bytes,
        s.high_water.serial_rx_bytes,
        s.high_water.calls_in_flight,
    );
    let c = &s.calls;
    let others = [
        ("remote errors", c.remote_error),
        ("timeouts", c.timeout),
        ("resets", c.peer_reset),
        ("refused", c.refused),
        ("bad results", c.bad_result),
        ("late replies", s.late_replies),
        ("expired", s.expired_calls),
        ("framing errors", s.framing_errors),
        ("oversized", s.oversized_messages),
        ("malformed", s.malformed_messages),
        ("ignored notifications", s.ignored_notifications),
        ("unknown requests", s.unknown_requests),
        ("nesting refused", s.nesting_refused),
        ("reply failures", s.reply_failures),
        ("serial dropped", s.serial_dropped),
        ("transport errors", s.transport_errors),
    ];
    for (what, n) in others.into_iter().filter(|(_, n)| *n != 0) {
        let _ = write!(line, "; {what} {n}");
    }
    line
}

/// A deadline `timeout` from now on the core's platform clock (for duet's waits).
pub fn deadline<T: Transport>(rpc: &Rpc<'_, T>, timeout: Duration) -> duet::Instant {
    rpc.transport().platform().now().saturating_add(timeout)
}

/// `RPC.begin()` on the M4: waits until the M7 has bound both endpoints.
pub fn m4_begin<T: Transport>(rpc: &mut Rpc<'_, T>) -> Result<(), duet::Error> {
    let d = deadline(rpc, BOOT_TIMEOUT);
    rpc.wait_ready(d)
}

/// `RPC.println(line)`: sends one line to the other core's RPC serial at once.
pub fn rpc_println<T: Transport>(rpc: &mut Rpc<'_, T>, line: &str) -> Result<(), SerialError> {
    use embedded_io::Write;
    let mut serial = rpc.serial();
    serial.write_all(line.as_bytes())?;
    serial.write_all(b"\n")?;
    serial.flush()
}

/// The guide's M7 `loop()` for RPC serial: copies everything the M4 has printed so far to the
/// Serial Monitor (while `RPC.available()`, `Serial.write(RPC.read())`).
pub fn forward_serial<T: Transport>(rpc: &mut Rpc<'_, T>, monitor: &Console) {
    use embedded_io::Read;
    let mut serial = rpc.serial();
    let mut buf = [0u8; 128];
    while serial.available() > 0 {
        match serial.read(&mut buf) {
            Ok(n) => monitor.write(&buf[..n]),
            Err(_) => break,
        }
    }
}

/// The M4 program was still running when [`m7_serve`]'s time limit passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct M4StillRunning {
    /// The limit that passed (real time).
    pub limit: Duration,
}

impl std::fmt::Display for M4StillRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the M4 program was still running after {:?}", self.limit)
    }
}

impl std::error::Error for M4StillRunning {}

/// The M7's `loop()` in most examples: serve the M4's calls and forward its RPC serial output,
/// until the M4 program ends (on the chip: forever). Then forwards what is left.
///
/// Gives up after `limit` of real time (the platform clock) with [`M4StillRunning`], so a stuck
/// M4 cannot hang the simulator: pass the example's length in chip time (at least its real
/// length at any speed) plus a margin such as [`BOOT_TIMEOUT`]. Errors of `poll` are returned
/// as they are.
pub fn m7_serve<T: Transport>(
    rpc: &mut Rpc<'_, T>,
    boot: &Boot,
    board: &Board,
    monitor: &Console,
    limit: Duration,
) -> Outcome {
    let end = deadline(rpc, limit);
    while !boot.m4_finished() {
        rpc.poll()?;
        forward_serial(rpc, monitor);
        if rpc.transport().platform().now() >= end {
            return Err(M4StillRunning { limit }.into());
        }
        board.idle();
    }
    rpc.poll()?;
    forward_serial(rpc, monitor);
    Ok(())
}

/// The M4's `loop()` when it only serves calls: poll, sleep until the doorbell, until the
/// simulated chip is switched off (on the chip: forever).
pub fn m4_serve<T: Transport>(rpc: &mut Rpc<'_, T>, board: &Board) -> Result<(), duet::Error> {
    while board.powered() {
        rpc.poll()?;
        board.idle();
    }
    Ok(())
}
