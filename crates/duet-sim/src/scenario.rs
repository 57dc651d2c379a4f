//! Fault scenarios: the two cores exchange calls (both ways, arguments up to three buffers,
//! every result checked end to end with a CRC-32) and stream bytes, while [`Scenario`] injects
//! faults: doorbell faults for the whole run, then one event — shared-memory corruption, or a
//! core halted mid-call and restarted. Then the link is recovered (after corruption the M7
//! resets it; after a restart the new program's start-up does) and a clean phase of calls must
//! all succeed, with every transport buffer back at the end.
//!
//! `duet-sim faults` runs one; `tests/corruption.rs` and `tests/faults.rs` run them with
//! assertions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use duet::{Bin, Context, CpuId, Error, Request, Rpc};
use duet_rpmsg::{connect, Host, Platform, Remote, Transport};

use crate::faults::{start_host, DoorbellFaults, Faults, Halt, Target};
use crate::machine::{sim_config, CORE_STACK};
use crate::platform::{SimChip, SimPlatform};
use crate::soak::{crc32, error_kind, SOAK_BUF, SOAK_SERIAL};

/// The one event a scenario injects after its warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing (doorbell faults only, if any).
    None,
    /// `flips` random bytes of `target` flipped, one every `every`; then the M7 resets the link
    /// (`begin_reset`, held until the M4 has seen it, `reinit`).
    Corrupt {
        /// What to hit.
        target: Target,
        /// How many bytes.
        flips: u32,
        /// Pause between two flips.
        every: Duration,
    },
    /// This core stops consuming (it does not poll at all) for `for_`, then goes on: the
    /// other core's calls to it time out and its sends meet backpressure meanwhile.
    Stall {
        /// The core that stops.
        core: CpuId,
        /// For how long.
        for_: Duration,
    },
    /// This core is halted in the middle of its calls and a fresh program started on it. For
    /// the M4, the M7 re-lays the rings (`Rpc::reset` with `reinit`) before the new M4 boots;
    /// the M7 restarts with [`start_host`] (`DRIVER_OK` held clear for 100 ms).
    Restart(CpuId),
}

/// A fault scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scenario {
    /// Seed of the fault plan (doorbells, flips) and of the argument sizes.
    pub seed: u64,
    /// Doorbell faults for the whole run.
    pub doorbells: DoorbellFaults,
    /// The event.
    pub event: Event,
    /// Calls each core must make before the event.
    pub warm_up: u64,
    /// Calls each core makes after the recovery; all must succeed.
    pub after: u64,
    /// Deadline of each call.
    pub call_timeout: Duration,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            doorbells: DoorbellFaults::default(),
            event: Event::None,
            warm_up: 20,
            after: 50,
            call_timeout: Duration::from_millis(200),
        }
    }
}

/// Outcomes of calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Returned the right result.
    pub ok: u64,
    /// Returned `Ok` with a result that fails the end-to-end check (undetectable by duet).
    pub wrong: u64,
    /// Failed, by error kind.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Calls that failed.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    fn error(&mut self, e: &Error) {
        *self.errors.entry(error_kind(e)).or_default() += 1;
    }
}

/// Buffer counts at the end: (transmit buffers free, pool size), and for the M7 (receive
/// buffers posted, ring size).
pub type Pools = ((usize, usize), Option<(usize, usize)>);

/// What one core saw (over all of its programs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreReport {
    /// Calls before and during the event (errors expected).
    pub during: Tally,
    /// Calls after the recovery (all must succeed).
    pub after: Tally,
    /// Peer resets this core's transport detected (over its programs).
    pub resets: u64,
    /// Stream bytes received (written until the clean phase; not checked: bytes in flight at
    /// a reset or hit by corruption are lost or altered).
    pub stream_received: u64,
    /// Corrupt entries the transport skipped, over the core's programs.
    pub corrupt_entries: u64,
    /// Messages the engine dropped as malformed, badly framed or oversized.
    pub dropped_messages: u64,
    /// Transmit buffers free at the end and the pool's size (M7: also receive buffers posted).
    pub pools: Option<Pools>,
}

impl CoreReport {
    /// Whether every buffer was back at the end.
    pub fn pools_full(&self) -> bool {
        matches!(self.pools, Some(((a, b), rx)) if a == b && rx.is_none_or(|(c, d)| c == d))
    }
}

/// The result of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioReport {
    /// The scenario.
    pub scenario: Scenario,
    /// The M7's figures.
    pub m7: CoreReport,
    /// The M4's figures.
    pub m4: CoreReport,
    /// What the fault plan did.
    pub injected: crate::faults::FaultCounts,
    /// Whether the recovery finished (the link came back) before its deadline.
    pub recovered: bool,
}

impl ScenarioReport {
    /// The link recovered, every call after the recovery succeeded with the right result and
    /// every buffer came back; `Err` says what did not.
    pub fn check(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        if !self.recovered {
            bad.push("the link did not come back".to_string());
        }
        for (name, c) in [("M7", &self.m7), ("M4", &self.m4)] {
            let a = &c.after;
            if a.ok != self.scenario.after || a.wrong != 0 || a.failed() != 0 {
                bad.push(format!("{name} after recovery: {a:?}"));
            }
            if !c.pools_full() {
                bad.push(format!("{name} buffers: {:?}", c.pools));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }
}

impl std::fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scenario: {:?}", self.scenario)?;
        writeln!(f, "injected: {:?}", self.injected)?;
        for (name, c) in [("M7", &self.m7), ("M4", &self.m4)] {
            writeln!(
                f,
                "{name}: during: {} ok, {} wrong, failed {:?}; after: {} ok, {} wrong, failed \
                 {:?}; {} resets, {} corrupt entries skipped, {} messages dropped, {} stream \
                 bytes in; pools {:?}",
                c.during.ok,
                c.during.wrong,
                c.during.errors,
                c.after.ok,
                c.after.wrong,
                c.after.errors,
                c.resets,
                c.corrupt_entries,
                c.dropped_messages,
                c.stream_received,
                c.pools
            )?;
        }
        match self.check() {
            Ok(()) => write!(
                f,
                "check: recovered; every call after the recovery right; buffer pools full"
            ),
            Err(e) => write!(f, "check FAILED: {e}"),
        }
    }
}

/// Phases, in order (`Shared::phase`).
const WARM: u8 = 0;
const EVENT: u8 = 1;
const AFTER: u8 = 2;

/// What the programs and the orchestrator share.
struct Shared {
    scenario: Scenario,
    phase: AtomicU8,
    /// M7: 1 = re-lay at once (`reinit`), 2 = `begin_reset`, hold, `reinit`; cleared when done.
    reset: AtomicU8,
    /// Calls made per core (progress).
    calls: [AtomicU64; 2],
    /// Programs per core that have connected (finished their start-up).
    connected: [AtomicU64; 2],
    /// Per core: stop polling while set (a peer that stops consuming).
    stalled: [AtomicBool; 2],
    /// Per core: peer resets its transport has reported (published after every step).
    transport_resets: [AtomicU64; 2],
    /// Per core: its after-phase calls are done.
    done: [AtomicBool; 2],
    reports: [Mutex<CoreReport>; 2],
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Argument of call `seq` by `core`: 0..=1400 bytes (up to three buffers).
fn argument(seed: u64, core: usize, seq: u64) -> Vec<u8> {
    let k = seed ^ (core as u64) << 40 ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let len = (k.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 33) % 1401;
    (0..len)
        .map(|i| (k >> (i % 7 * 8)) as u8 ^ i as u8)
        .collect()
}

/// One core's program: serves `echo`, calls the peer's, streams, obeys the orchestrator.
fn program<T: Transport + crate::runner::Pools>(
    t: T,
    core: usize,
    halt: Halt,
    sh: &Shared,
    reset: impl Fn(&mut ScenarioRpc<'_, T>, u8),
) {
    let config = sim_config();
    let echo = |ctx: &mut Context<'_>, req: Request<'_>| match req.args::<(u64, &[u8])>() {
        Ok((seq, data)) => ctx.respond(&(seq, crc32(0, data))),
        Err(_) => ctx.respond_error("echo: bad arguments"),
    };
    // The soak's capacities: room for everything the peer can have in flight, so a core
    // blocked in a call still drains its receive ring (see crate::soak::SOAK_SERIAL).
    let mut rpc: ScenarioRpc<'_, T> = Rpc::new(t);
    rpc.bind_handler("echo", &echo).expect("room");
    rpc.set_timeout(sh.scenario.call_timeout);
    let mut seq = sh.calls[core].load(Ordering::SeqCst);
    let mut after_made = 0;
    let mut chunk = [0u8; 300];
    let mut rx = [0u8; 512];
    let long = Duration::from_secs(10);
    while !halt.is_halted() {
        if sh.stalled[core].load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let phase = sh.phase.load(Ordering::SeqCst);
        if core == 0 {
            let r = sh.reset.load(Ordering::SeqCst);
            if r != 0 {
                reset(&mut rpc, r);
                sh.reset.store(0, Ordering::SeqCst);
            }
        }
        if phase == AFTER && after_made == 0 {
            let deadline = rpc.context().now().saturating_add(long);
            if rpc.wait_ready(deadline).is_err() {
                break;
            }
            // The clean phase: a deadline a loaded machine does not miss.
            rpc.set_timeout(Duration::from_secs(3));
        }
        if phase == AFTER && after_made >= sh.scenario.after {
            sh.done[core].store(true, Ordering::SeqCst);
            if sh.done.iter().all(|d| d.load(Ordering::SeqCst)) {
                break;
            }
            drain_stream(&mut rpc, &mut rx, &sh.reports[core]);
            let p = rpc.transport().platform();
            p.wait(p.now().saturating_add(Duration::from_millis(1)));
            continue;
        }
        let arg = argument(sh.scenario.seed, core, seq);
        let r = rpc.call::<(u64, u32), _>("echo", (seq, Bin(&arg)));
        if halt.is_halted() {
            break;
        }
        let resets = rpc.transport().stats_now().peer_resets as u64;
        sh.transport_resets[core].store(resets, Ordering::SeqCst);
        seq += 1;
        sh.calls[core].store(seq, Ordering::SeqCst);
        {
            let mut rep = lock(&sh.reports[core]);
            let tally = if phase == AFTER {
                after_made += 1;
                &mut rep.after
            } else {
                &mut rep.during
            };
            match r {
                Ok((s, crc)) if s == seq - 1 && crc == crc32(0, &arg) => tally.ok += 1,
                Ok(_) => tally.wrong += 1,
                Err(e) => tally.error(&e),
            }
        }
        if r == Err(Error::PeerReset) || r == Err(Error::NotReady) {
            let deadline = rpc.context().now().saturating_add(long);
            let _ = rpc.wait_ready(deadline);
        }
        if phase != AFTER {
            // Stream both ways without blocking (until the clean phase).
            let mut s = rpc.serial();
            if embedded_io::WriteReady::write_ready(&mut s).unwrap_or(false) {
                let _ = embedded_io::Write::write(&mut s, &chunk);
            }
            chunk.rotate_left(1);
        }
        drain_stream(&mut rpc, &mut rx, &sh.reports[core]);
    }
    // Give the last buffers back, then count them (the last program of each core only).
    if !halt.is_halted() {
        let give_up = StdInstant::now() + Duration::from_secs(5);
        loop {
            drain_stream(&mut rpc, &mut rx, &sh.reports[core]);
            let tx = rpc.transport_mut().tx_free(&config).ok();
            let pools = tx.map(|tx| (tx, rpc.transport().rx_posted(&config)));
            let full =
                matches!(pools, Some(((a, b), rx)) if a == b && rx.is_none_or(|(c, d)| c == d));
            lock(&sh.reports[core]).pools = pools;
            if full || StdInstant::now() >= give_up {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    let mut rep = lock(&sh.reports[core]);
    let st = rpc.stats();
    rep.corrupt_entries += rpc.transport().stats_now().corrupt as u64;
    rep.resets += rpc.transport().stats_now().peer_resets as u64;
    rep.dropped_messages +=
        (st.malformed_messages + st.framing_errors + st.oversized_messages) as u64;
}

/// The engine of the scenario programs.
type ScenarioRpc<'a, T> = Rpc<'a, T, 16, 8, SOAK_BUF, 512, SOAK_SERIAL>;

/// Reads (and counts) every stream byte that has arrived, polling the engine. Stream bytes are
/// read in every phase: unread ones would hold up all traffic behind them (backpressure).
fn drain_stream<T: Transport>(
    rpc: &mut ScenarioRpc<'_, T>,
    rx: &mut [u8],
    report: &Mutex<CoreReport>,
) {
    let mut s = rpc.serial();
    while s.available() > 0 {
        let n = embedded_io::Read::read(&mut s, rx).unwrap_or(0);
        if n == 0 {
            break;
        }
        lock(report).stream_received += n as u64;
    }
}

/// The M7's program on a fresh platform (`restart`: with the warm-restart start-up).
fn m7_program(p: SimPlatform, restart: bool, sh: &Shared) {
    let halt = p.halt_switch().expect("a SimChip platform");
    let config = sim_config();
    let t = if restart {
        start_host(p, config, Duration::from_millis(100))
    } else {
        Host::new(p, config)
    };
    let Ok(mut t) = t else { return };
    let deadline = t.platform().now().saturating_add(Duration::from_secs(10));
    if connect(&mut t, deadline).is_err() {
        return;
    }
    sh.connected[0].fetch_add(1, Ordering::SeqCst);
    program(t, 0, halt, sh, |rpc, how| {
        let _ = rpc.reset(|t| {
            if how == 2 {
                // Hold DRIVER_OK clear until the running M4 has seen it (it then stops using
                // the rings), at most 2 s.
                let seen = sh.transport_resets[1].load(Ordering::SeqCst);
                t.begin_reset()?;
                wait_for_at_most(Duration::from_secs(2), || {
                    sh.transport_resets[1].load(Ordering::SeqCst) != seen
                });
            }
            t.reinit()
        });
        if how == 2 {
            // The M4 runs on: wait for its new handshake. (After a halt, a new M4 boots
            // only once this reset is done; the calls that fail meanwhile wait for it.)
            let deadline = rpc.context().now().saturating_add(Duration::from_secs(10));
            let _ = rpc.wait_ready(deadline);
        }
    });
}

/// The M4's program on a fresh platform.
fn m4_program(p: SimPlatform, sh: &Shared) {
    let halt = p.halt_switch().expect("a SimChip platform");
    let mut t = Remote::new(p, sim_config());
    let deadline = t.platform().now().saturating_add(Duration::from_secs(10));
    if connect(&mut t, deadline).is_err() {
        return;
    }
    sh.connected[1].fetch_add(1, Ordering::SeqCst);
    program(t, 1, halt, sh, |_, _| {});
}

/// Waits until `f()` or 10 s; returns whether `f()` held.
fn wait_for(f: impl Fn() -> bool) -> bool {
    wait_for_at_most(Duration::from_secs(10), f)
}

/// Waits until `f()` or `max`; returns whether `f()` held.
fn wait_for_at_most(max: Duration, f: impl Fn() -> bool) -> bool {
    let give_up = StdInstant::now() + max;
    while !f() {
        if StdInstant::now() >= give_up {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Runs `scenario` on a fresh chip (two threads per running program) and reports.
pub fn run(scenario: &Scenario) -> ScenarioReport {
    let faults = Faults::new(scenario.seed);
    faults.set_doorbells(scenario.doorbells);
    let chip = SimChip::new(faults);
    let sh = Shared {
        scenario: *scenario,
        phase: AtomicU8::new(WARM),
        reset: AtomicU8::new(0),
        calls: Default::default(),
        connected: Default::default(),
        transport_resets: Default::default(),
        stalled: Default::default(),
        done: Default::default(),
        reports: Default::default(),
    };
    let config = sim_config();
    let recovered = thread::scope(|s| {
        let sh = &sh;
        let spawn = |name: &str| {
            thread::Builder::new()
                .name(name.into())
                .stack_size(CORE_STACK)
        };
        let m7 = chip.core(CpuId::Cm7);
        let m4 = chip.core(CpuId::Cm4);
        let (halt7, halt4) = (m7.halt_switch(), m4.halt_switch());
        spawn("M4")
            .spawn_scoped(s, move || m4_program(m4, sh))
            .expect("spawn");
        spawn("M7")
            .spawn_scoped(s, move || m7_program(m7, false, sh))
            .expect("spawn");
        let warm = wait_for(|| {
            sh.calls
                .iter()
                .all(|c| c.load(Ordering::SeqCst) >= scenario.warm_up)
        });
        sh.phase.store(EVENT, Ordering::SeqCst);
        let mut ok = warm;
        match scenario.event {
            Event::None => {}
            Event::Stall { core, for_ } => {
                let i = (core == CpuId::Cm4) as usize;
                sh.stalled[i].store(true, Ordering::SeqCst);
                thread::sleep(for_);
                sh.stalled[i].store(false, Ordering::SeqCst);
            }
            Event::Corrupt {
                target,
                flips,
                every,
            } => {
                for _ in 0..flips {
                    chip.faults().corrupt(chip.memory(), &config, target);
                    thread::sleep(every);
                }
                sh.reset.store(2, Ordering::SeqCst);
                ok &= wait_for(|| sh.reset.load(Ordering::SeqCst) == 0);
            }
            Event::Restart(CpuId::Cm4) => {
                // Mid-call: the M4 is halted between two accesses, wherever it is.
                halt4.expect("a SimChip platform").halt();
                sh.reset.store(1, Ordering::SeqCst);
                ok &= wait_for(|| sh.reset.load(Ordering::SeqCst) == 0);
                let m4 = chip.core(CpuId::Cm4);
                spawn("M4 (restarted)")
                    .spawn_scoped(s, move || m4_program(m4, sh))
                    .expect("spawn");
                ok &= wait_for(|| sh.connected[1].load(Ordering::SeqCst) == 2);
            }
            Event::Restart(CpuId::Cm7) => {
                halt7.expect("a SimChip platform").halt();
                let m7 = chip.core(CpuId::Cm7);
                spawn("M7 (restarted)")
                    .spawn_scoped(s, move || m7_program(m7, true, sh))
                    .expect("spawn");
                ok &= wait_for(|| sh.connected[0].load(Ordering::SeqCst) == 2);
            }
        }
        sh.phase.store(AFTER, Ordering::SeqCst);
        ok && wait_for(|| sh.done.iter().all(|d| d.load(Ordering::SeqCst)))
    });
    let [m7, m4] = sh
        .reports
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
    ScenarioReport {
        scenario: *scenario,
        m7,
        m4,
        injected: chip.faults().counts(),
        recovered,
    }
}
