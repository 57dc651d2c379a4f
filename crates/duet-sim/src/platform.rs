//! [`SimPlatform`]: one simulated core (M7 or M4) as a `duet_rpmsg::Platform`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use duet::CpuId;
use duet_rpmsg::{Instant, Platform};

use crate::doorbell::Doorbells;
use crate::faults::{Faults, Halt, Ring};
use crate::hints::Tracker;
use crate::memory::{Gate, Mapping, SimMemory};
use crate::process::{self, OpenError};

/// The HSEM this core rings to notify its peer: 0 from the M7, 1 from the M4.
pub const fn outgoing_doorbell(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => 0,
        CpuId::Cm4 => 1,
    }
}

/// One simulated core's platform: the shared SRAM4, the doorbell to the peer, the wait for the
/// peer's doorbell and a monotonic microsecond clock.
///
/// Made by [`pair`] (thread mode: both cores in this process) or [`SimPlatform::open_file`]
/// (process mode: a file mapped by two processes). `Send`, so it can move into a thread; each
/// core's platform must be used by one side only (one waiter per doorbell).
pub struct SimPlatform {
    core: CpuId,
    memory: SimMemory,
    bells: Doorbells,
    /// The incoming doorbell's count when the last `wait` returned (the "event register").
    seen: AtomicU32,
    /// Whether the last `wait` was ended by a ring (the next one spins before it sleeps).
    busy: AtomicBool,
    /// Zero of `now()`.
    epoch: StdInstant,
    /// The file mapping in process mode (for the pid word).
    file: Option<Arc<Mapping>>,
    /// The duet doorbells of the two cores (`[M7, M4]`), created on first request and rung
    /// by the peer's `notify` (shared by the two platforms of a [`pair`]).
    duet_bells: Arc<DuetBells>,
    /// Where doorbells and sleeps are recorded while tracing (`None`: not tracing).
    recorder: Option<Arc<duet_trace::Recorder>>,
    /// Thread mode with fault injection: this core's halt switch and the chip's faults.
    faults: Option<(Arc<Gate>, Arc<Faults>)>,
    /// Process mode: tells the thread that rings the duet doorbell (if started) to stop.
    watcher_stop: Arc<AtomicBool>,
}

/// The `duet::Doorbell` of each core of one chip: `[M7, M4]`.
type DuetBells = [OnceLock<Arc<duet::Doorbell>>; 2];

/// Two platforms of one simulated chip in this process: `(M7, M4)`, sharing a zeroed region,
/// two in-process doorbells and one clock epoch.
pub fn pair() -> (SimPlatform, SimPlatform) {
    let memory = SimMemory::new();
    let bells = Doorbells::local();
    let epoch = StdInstant::now();
    let duet_bells = Arc::new(DuetBells::default());
    let make = |core| SimPlatform {
        core,
        memory: with_hints(&memory, &bells, core),
        bells: bells.clone(),
        seen: AtomicU32::new(0),
        busy: AtomicBool::new(false),
        epoch,
        file: None,
        duet_bells: duet_bells.clone(),
        recorder: None,
        faults: None,
        watcher_stop: Arc::new(AtomicBool::new(false)),
    };
    (make(CpuId::Cm7), make(CpuId::Cm4))
}

/// One simulated chip in this process (thread mode) with fault injection: the shared region,
/// the two doorbells, one clock epoch and a [`Faults`] plan. Each [`SimChip::core`] call
/// makes a fresh view of a core, as a core that (re)starts gets: its own halt switch, its
/// doorbells passing through the plan. Cheap to clone.
#[derive(Clone)]
pub struct SimChip {
    memory: SimMemory,
    bells: Doorbells,
    epoch: StdInstant,
    duet_bells: Arc<DuetBells>,
    faults: Arc<Faults>,
}

impl SimChip {
    /// A chip with a zeroed region and the fault plan `faults` (which tests and the command
    /// line may change while the cores run).
    pub fn new(faults: Arc<Faults>) -> SimChip {
        SimChip {
            memory: SimMemory::new(),
            bells: Doorbells::local(),
            epoch: StdInstant::now(),
            duet_bells: Arc::new(DuetBells::default()),
            faults,
        }
    }

    /// The fault plan.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The shared region, as the fault injector (not a core) sees it: never halted.
    pub fn memory(&self) -> &SimMemory {
        &self.memory
    }

    /// A platform for `core` as it starts (or restarts): a new halt switch (see
    /// [`SimPlatform::halt_switch`]); doorbells rung before this call are not seen as new.
    pub fn core(&self, core: CpuId) -> SimPlatform {
        let gate = Arc::new(Gate::default());
        let incoming = outgoing_doorbell(core.peer());
        SimPlatform {
            core,
            memory: self.memory.gated(gate.clone()),
            bells: self.bells.clone(),
            seen: AtomicU32::new(self.bells.count(incoming)),
            busy: AtomicBool::new(false),
            epoch: self.epoch,
            file: None,
            duet_bells: self.duet_bells.clone(),
            recorder: None,
            faults: Some((gate, self.faults.clone())),
            watcher_stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl SimPlatform {
    /// Opens the process-mode file at `path` as core `core` (format: `PROCESS-MODE.md`).
    ///
    /// With `create`, the file is created if missing and (re)initialised: zeroed region and
    /// doorbells, header written, magic last. Without it, the file must already be initialised
    /// (`OpenError::BadMagic` / `TooSmall` otherwise; see [`SimPlatform::attach_file`] to wait
    /// for a peer to create it). Writes this process's id into the core's pid word. The clock
    /// epoch is this call (each process has its own).
    pub fn open_file(
        path: impl AsRef<Path>,
        core: CpuId,
        create: bool,
    ) -> Result<SimPlatform, OpenError> {
        let map = process::map_file(path.as_ref(), create)?;
        let bells = Doorbells::file(map.clone());
        let incoming = outgoing_doorbell(core.peer());
        let seen = AtomicU32::new(bells.count(incoming));
        process::control_write(
            &map,
            process::PID_OFFSETS[pid_slot(core)],
            std::process::id(),
        );
        Ok(SimPlatform {
            core,
            memory: SimMemory::from_mapping(map.clone()),
            bells,
            seen,
            busy: AtomicBool::new(false),
            epoch: StdInstant::now(),
            file: Some(map),
            duet_bells: Arc::new(DuetBells::default()),
            recorder: None,
            faults: None,
            watcher_stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Like [`SimPlatform::open_file`] without `create`, but retries every 10 ms while the file
    /// is missing or not initialised yet, for up to `timeout` (then returns the last error).
    ///
    /// Limit: it cannot tell a file left by an earlier run from this run's: it attaches to a
    /// leftover at once and sees its old resource table, rings and `DRIVER_OK` until the
    /// creator re-creates the file (which the attached side then sees as a peer reset, with
    /// the risks `PROCESS-MODE.md` describes). Delete a leftover file before starting either
    /// side, or attach only after the creator has signalled that it created the file.
    pub fn attach_file(
        path: impl AsRef<Path>,
        core: CpuId,
        timeout: Duration,
    ) -> Result<SimPlatform, OpenError> {
        let give_up = StdInstant::now() + timeout;
        loop {
            match SimPlatform::open_file(path.as_ref(), core, false) {
                Ok(p) => return Ok(p),
                Err(e) => {
                    let retry = match &e {
                        OpenError::Io(io) => io.kind() == std::io::ErrorKind::NotFound,
                        OpenError::TooSmall { .. } | OpenError::BadMagic { .. } => true,
                        _ => false,
                    };
                    if !retry || StdInstant::now() >= give_up {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Records this core's doorbells ([`duet_trace::EventKind::Doorbell`]) and sleeps in
    /// [`Platform::wait`] ([`duet_trace::EventKind::Slept`]) into `recorder` (`None`: stop).
    /// Messages are recorded one layer up, by [`Traced`](crate::trace::Traced).
    pub fn set_recorder(&mut self, recorder: Option<Arc<duet_trace::Recorder>>) {
        self.recorder = recorder;
    }

    /// The recorder set with [`SimPlatform::set_recorder`].
    pub fn recorder(&self) -> Option<&Arc<duet_trace::Recorder>> {
        self.recorder.as_ref()
    }

    /// Which core this platform is.
    pub fn core(&self) -> CpuId {
        self.core
    }

    /// Whether this is a process-mode (file-backed) platform.
    pub fn is_file_backed(&self) -> bool {
        self.file.is_some()
    }

    /// Process mode: the process id the peer core wrote into the control page (`None` if it is
    /// 0, or in thread mode). Informative only: a crashed peer leaves its id behind.
    pub fn peer_pid(&self) -> Option<u32> {
        let map = self.file.as_ref()?;
        match process::control_read(map, process::PID_OFFSETS[pid_slot(self.core.peer())]) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// How many times this core has rung its peer (the outgoing counter; wraps at 2^32; in
    /// process mode it is the value in the file, reset when the file is re-created).
    pub fn rings_sent(&self) -> u32 {
        self.bells.count(outgoing_doorbell(self.core))
    }

    /// This core's `duet::Doorbell`, for [`duet::Rpc::set_doorbell`] and async code: every
    /// ring of this core by its peer also rings it (in addition to waking
    /// [`Platform::wait`]), so `Rpc::run()` and call futures wake.
    /// The same doorbell is returned on every call.
    ///
    /// In thread mode the peer's `notify` rings it directly. In process mode the peer is
    /// another program that only bumps the counter in the file, so the first call starts a
    /// watcher thread ("doorbell") that polls the incoming counter (with the back-off of
    /// `PROCESS-MODE.md`, so a ring reaches the doorbell within about 0.2 ms plus scheduling)
    /// and rings the doorbell on every change; it stops when this platform is dropped. The
    /// watcher keeps its own "seen" value, so [`Platform::wait`] still sees every ring too.
    pub fn duet_doorbell(&self) -> Arc<duet::Doorbell> {
        let mut fresh = false;
        let bell = self.duet_bells[pid_slot(self.core)]
            .get_or_init(|| {
                fresh = true;
                Arc::new(duet::Doorbell::new())
            })
            .clone();
        if fresh && self.file.is_some() {
            self.spawn_watcher(bell.clone());
        }
        bell
    }

    /// Process mode: the thread that turns rings in the file into rings of `bell`.
    fn spawn_watcher(&self, bell: Arc<duet::Doorbell>) {
        let bells = self.bells.clone();
        let incoming = outgoing_doorbell(self.core.peer());
        let stop = self.watcher_stop.clone();
        let mut seen = bells.count(incoming);
        // Without a thread (spawn failed) the doorbell never rings and its waiters fall back
        // to their time slices (every wait on it is bounded), as before this hook existed.
        let _ = std::thread::Builder::new()
            .name("doorbell".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let slice = StdInstant::now() + Duration::from_millis(50);
                    if bells.wait(incoming, &mut seen, Some(slice), false) {
                        bell.ring();
                    }
                }
            });
    }

    /// Process mode: a watch on the other core's pid word, to learn that its process has
    /// detached (`None` in thread mode).
    pub fn peer_watch(&self) -> Option<PeerWatch> {
        Some(PeerWatch {
            map: self.file.clone()?,
            slot: process::PID_OFFSETS[pid_slot(self.core.peer())],
            seen: AtomicBool::new(false),
        })
    }

    /// The switch that stops this core (platforms of a [`SimChip`] only): once
    /// [`Halt::halt`] returns, the core neither reads nor writes shared memory (its accesses
    /// fail with `OutOfBounds`, as a stopped core's would never happen), rings no doorbell and
    /// sleeps through every `wait`. A core halted mid-call leaves its half-done work in shared
    /// memory, as a crash or a reset would.
    pub fn halt_switch(&self) -> Option<Halt> {
        self.faults.as_ref().map(|(g, _)| Halt::new(g.clone()))
    }

    /// Whether this core has been halted.
    fn halted(&self) -> bool {
        self.faults.as_ref().is_some_and(|(g, _)| g.is_halted())
    }

    /// Converts a platform deadline to a `std` instant (`None`: beyond what `std` can hold).
    fn std_deadline(&self, deadline: Instant) -> Option<StdInstant> {
        self.epoch
            .checked_add(Duration::from_micros(deadline.as_micros()))
    }
}

/// `memory` with `core`'s prefetch hints (see `crate::hints`) if `bells` are in-process.
fn with_hints(memory: &SimMemory, bells: &Doorbells, core: CpuId) -> SimMemory {
    match bells.in_process() {
        Some(b) => memory.with_hints(Arc::new(Tracker::new(b.clone(), outgoing_doorbell(core)))),
        None => memory.clone(),
    }
}

/// Index of `core` in [`process::PID_OFFSETS`].
fn pid_slot(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => 0,
        CpuId::Cm4 => 1,
    }
}

/// Process mode: whether the other core's process is (still) attached, from the pid word it
/// writes at attach and clears when it detaches (`PROCESS-MODE.md`).
///
/// Limit: the pid word is informative; a peer that crashes leaves it set (never "gone"), and
/// a file re-created by the peer clears it for a moment (then "gone" too early).
pub struct PeerWatch {
    map: Arc<Mapping>,
    slot: usize,
    seen: AtomicBool,
}

impl PeerWatch {
    /// Whether the peer was seen attached (pid word not 0) and has since detached (0).
    pub fn gone(&self) -> bool {
        if process::control_read(&self.map, self.slot) != 0 {
            self.seen.store(true, Ordering::Relaxed);
            false
        } else {
            self.seen.load(Ordering::Relaxed)
        }
    }
}

impl std::fmt::Debug for PeerWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerWatch")
            .field("gone", &self.gone())
            .finish()
    }
}

impl Drop for SimPlatform {
    fn drop(&mut self) {
        self.watcher_stop.store(true, Ordering::Relaxed);
        if let Some(map) = &self.file {
            let slot = process::PID_OFFSETS[pid_slot(self.core)];
            if process::control_read(map, slot) == std::process::id() {
                process::control_write(map, slot, 0);
            }
        }
    }
}

impl std::fmt::Debug for SimPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPlatform")
            .field("core", &self.core)
            .field("file_backed", &self.is_file_backed())
            .finish()
    }
}

impl Platform for SimPlatform {
    type Memory = SimMemory;

    fn memory(&self) -> &SimMemory {
        &self.memory
    }

    fn notify(&self) {
        if let Some(r) = &self.recorder {
            r.record_now(self.core, duet_trace::EventKind::Doorbell);
        }
        match &self.faults {
            None => {
                self.memory.publish_hints();
                self.bells.ring(outgoing_doorbell(self.core));
                if let Some(bell) = self.duet_bells[pid_slot(self.core.peer())].get() {
                    bell.ring();
                }
            }
            Some((gate, faults)) => {
                if gate.is_halted() {
                    return;
                }
                faults.ring(Ring::new(
                    self.bells.clone(),
                    outgoing_doorbell(self.core),
                    self.duet_bells[pid_slot(self.core.peer())].get().cloned(),
                ));
            }
        }
    }

    fn wait(&self, deadline: Instant) -> bool {
        if self.halted() {
            // A stopped core sleeps; in slices, so that its thread can still be wound down.
            let left = self.std_deadline(deadline).map_or(Duration::MAX, |d| {
                d.saturating_duration_since(StdInstant::now())
            });
            std::thread::sleep(left.min(Duration::from_millis(10)));
            return false;
        }
        let incoming = outgoing_doorbell(self.core.peer());
        let mut seen = self.seen.load(Ordering::Relaxed);
        let t0 = self.recorder.as_ref().map(|r| r.now_ns());
        let busy = self.busy.load(Ordering::Relaxed);
        let rung = self
            .bells
            .wait(incoming, &mut seen, self.std_deadline(deadline), busy);
        if rung {
            // What the peer wrote before it rang, all at once (see `crate::hints`).
            self.memory.check_hints();
        }
        self.seen.store(seen, Ordering::Relaxed);
        self.busy.store(rung, Ordering::Relaxed);
        if let (Some(r), Some(t0)) = (&self.recorder, t0) {
            let dur_ns = r.now_ns().saturating_sub(t0);
            r.record_at(
                t0,
                self.core,
                duet_trace::EventKind::Slept {
                    dur_ns,
                    woken: rung,
                },
            );
        }
        rung
    }

    fn now(&self) -> Instant {
        let us = self.epoch.elapsed().as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

/// `cpu_id()` in the simulator: the core this platform belongs to.
impl duet::Core for SimPlatform {
    fn cpu_id(&self) -> duet::CpuId {
        self.core
    }
}
