//! Fault injection between the two simulated cores (thread mode, [`SimChip`]).
//!
//! A [`Faults`] plan is shared by the platforms of one chip and may be changed while the cores
//! run. It injects:
//! - doorbell faults ([`DoorbellFaults`]): a ring is dropped, delayed (delivered later by a
//!   helper thread) or duplicated, each with a probability;
//! - shared-memory corruption ([`Faults::corrupt`]): one byte of a [`Target`] area (vring
//!   descriptors, ring indices and entries, RPMsg headers, payloads) XORed with a random
//!   non-zero mask.
//!
//! Every random choice comes from one seeded generator, so the same seed gives the same
//! sequence of decisions (which rings are dropped, which bytes flipped with which masks); what
//! a flip hits still depends on how the two threads interleave.
//!
//! Stopping a core is per platform: [`SimPlatform::halt_switch`] gives a [`Halt`]; a restarted
//! core is a fresh [`SimChip::core`] running its start-up again (for the M7 see
//! [`start_host`]). A peer that stops consuming is a program that stops polling.

use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use duet_rpmsg::{layout as l, Config, Host, Platform, SharedMemory};

use crate::doorbell::Doorbells;
use crate::memory::{Gate, SimMemory};
use crate::platform::SimPlatform;

#[cfg(doc)]
use crate::platform::SimChip;

/// Probabilities of doorbell faults (each from 0.0 to 1.0; values outside are clamped).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DoorbellFaults {
    /// A ring is lost.
    pub drop: f64,
    /// A ring (not dropped) is delivered late, after a uniform random delay up to `max_delay`.
    pub delay: f64,
    /// The longest delay.
    pub max_delay: Duration,
    /// A ring (not dropped) is delivered twice (the extra one at once).
    pub duplicate: f64,
}

/// What the plan has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Doorbell rings the cores asked for.
    pub rings: u64,
    /// Rings dropped.
    pub dropped: u64,
    /// Rings delivered late.
    pub delayed: u64,
    /// Extra rings delivered.
    pub duplicated: u64,
    /// Bytes flipped by [`Faults::corrupt`].
    pub flips: u64,
}

/// A shared-memory area that [`Faults::corrupt`] can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The descriptor tables of both vrings (address, length, flags, next).
    Descriptors,
    /// The avail and used parts of both vrings: flags, indices and entries.
    Indices,
    /// The 16-byte RPMsg header at the start of every buffer (src, dst, len, flags).
    Headers,
    /// The payload bytes of every buffer.
    Payloads,
    /// Any of the above, chosen at random for each flip.
    Any,
}

impl Target {
    /// Every target, `Any` last.
    pub const ALL: [Target; 5] = [
        Target::Descriptors,
        Target::Indices,
        Target::Headers,
        Target::Payloads,
        Target::Any,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Descriptors => "descriptors",
            Target::Indices => "indices",
            Target::Headers => "headers",
            Target::Payloads => "payloads",
            Target::Any => "any",
        }
    }

    /// The byte ranges (region offsets) of this target under `config`; `Any` is their union.
    pub fn ranges(self, config: &Config) -> Vec<Range<usize>> {
        let base = config.shm_base;
        let off = |addr: u32| addr.wrapping_sub(base) as usize;
        let num = config.num_descriptors as usize;
        let align = config.vring_align as usize;
        let buf = config.buffer_size as usize;
        let rings = [off(config.vring0_addr), off(config.vring1_addr)];
        let buffers = (0..num).map(|i| off(config.pool_addr) + i * buf).chain(
            (0..config.host_tx_buffers as usize).map(|i| off(config.host_tx_pool_addr) + i * buf),
        );
        match self {
            Target::Descriptors => rings.iter().map(|&r| r..r + num * l::DESC_SIZE).collect(),
            Target::Indices => rings
                .iter()
                .flat_map(|&r| {
                    let avail = r + l::avail_offset(num);
                    let used = r + l::used_offset(num, align);
                    [
                        avail..avail + l::AVAIL_RING + 2 * num,
                        used..used + l::USED_RING + l::USED_ELEM_SIZE * num,
                    ]
                })
                .collect(),
            Target::Headers => buffers.map(|b| b..b + l::HDR_SIZE).collect(),
            Target::Payloads => buffers.map(|b| b + l::HDR_SIZE..b + buf).collect(),
            Target::Any => Target::ALL[..4]
                .iter()
                .flat_map(|t| t.ranges(config))
                .collect(),
        }
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!("unknown target {s:?} (descriptors, indices, headers, payloads, any)")
            })
    }
}

/// One flipped byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flip {
    /// Region offset of the byte.
    pub offset: usize,
    /// The bits flipped (never 0).
    pub mask: u8,
}

/// A doorbell ring to deliver: which counter, and the peer's duet doorbell.
pub(crate) struct Ring {
    bells: Doorbells,
    bell: usize,
    duet: Option<Arc<duet::Doorbell>>,
}

impl Ring {
    pub(crate) fn new(bells: Doorbells, bell: usize, duet: Option<Arc<duet::Doorbell>>) -> Ring {
        Ring { bells, bell, duet }
    }

    fn deliver(&self) {
        // Thread mode: the counter is behind a mutex, so the helper thread may ring too.
        self.bells.ring(self.bell);
        if let Some(d) = &self.duet {
            d.ring();
        }
    }
}

/// The fault plan of one simulated chip: see the module docs.
pub struct Faults {
    rng: Mutex<u64>,
    doorbells: Mutex<DoorbellFaults>,
    counts: [AtomicU64; 5],
    /// The delayed-ring helper thread's queue (started on the first delayed ring).
    delayer: Mutex<Option<Sender<(StdInstant, Ring)>>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("doorbells", &self.doorbell_faults())
            .field("counts", &self.counts())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// splitmix64 step: advances `state` and returns the next output.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Faults {
    /// A plan that injects nothing yet, with the generator seeded by `seed`.
    pub fn new(seed: u64) -> Arc<Faults> {
        Arc::new(Faults {
            rng: Mutex::new(seed),
            doorbells: Mutex::new(DoorbellFaults::default()),
            counts: Default::default(),
            delayer: Mutex::new(None),
        })
    }

    /// Sets the doorbell faults (from the next ring on).
    pub fn set_doorbells(&self, d: DoorbellFaults) {
        *lock(&self.doorbells) = d;
    }

    /// The doorbell faults in force.
    pub fn doorbell_faults(&self) -> DoorbellFaults {
        *lock(&self.doorbells)
    }

    /// What has been injected so far.
    pub fn counts(&self) -> FaultCounts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        FaultCounts {
            rings: c(0),
            dropped: c(1),
            delayed: c(2),
            duplicated: c(3),
            flips: c(4),
        }
    }

    fn count(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A uniform random number in `0..1`.
    fn uniform(&self) -> f64 {
        (next(&mut lock(&self.rng)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random `u64`.
    pub fn random(&self) -> u64 {
        next(&mut lock(&self.rng))
    }

    /// Delivers a ring through the plan.
    pub(crate) fn ring(&self, ring: Ring) {
        self.count(0);
        let d = self.doorbell_faults();
        if self.uniform() < d.drop {
            self.count(1);
            return;
        }
        if self.uniform() < d.duplicate {
            self.count(3);
            ring.deliver();
        }
        if self.uniform() < d.delay && !d.max_delay.is_zero() {
            self.count(2);
            let after = d.max_delay.mul_f64(self.uniform());
            self.delay(StdInstant::now() + after, ring);
            return;
        }
        ring.deliver();
    }

    /// Queues `ring` for delivery at `due` (starting the helper thread if needed).
    fn delay(&self, due: StdInstant, ring: Ring) {
        let mut tx = lock(&self.delayer);
        let sender = tx.get_or_insert_with(|| {
            let (s, r) = mpsc::channel();
            std::thread::Builder::new()
                .name("doorbell-delay".into())
                .spawn(move || deliver_late(r))
                .expect("spawn the doorbell delay thread");
            s
        });
        if let Err(mpsc::SendError((_, ring))) = sender.send((due, ring)) {
            ring.deliver();
        }
    }

    /// Flips one random byte of `target` in `memory` (laid out as `config`) with a random
    /// non-zero mask; returns what it flipped (`None` if the target is empty under `config`).
    pub fn corrupt(&self, memory: &SimMemory, config: &Config, target: Target) -> Option<Flip> {
        let target = match target {
            Target::Any => Target::ALL[(self.random() % 4) as usize],
            t => t,
        };
        let ranges = target.ranges(config);
        let total: usize = ranges.iter().map(|r| r.len()).sum();
        if total == 0 {
            return None;
        }
        let mut at = (self.random() % total as u64) as usize;
        let range = ranges.iter().find(|r| {
            if at < r.len() {
                true
            } else {
                at -= r.len();
                false
            }
        })?;
        let offset = range.start + at;
        let mask = (self.random() % 255 + 1) as u8;
        memory.flip(offset, mask).then(|| {
            self.count(4);
            Flip { offset, mask }
        })
    }
}

/// The delay helper: delivers queued rings when they are due; ends (delivering what is left)
/// when the plan is gone.
fn deliver_late(r: Receiver<(StdInstant, Ring)>) {
    let mut queue: Vec<(StdInstant, Ring)> = Vec::new();
    loop {
        let now = StdInstant::now();
        let mut i = 0;
        while i < queue.len() {
            if queue[i].0 <= now {
                queue.swap_remove(i).1.deliver();
            } else {
                i += 1;
            }
        }
        let wait = queue
            .iter()
            .map(|(due, _)| due.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1));
        match r.recv_timeout(wait) {
            Ok(item) => queue.push(item),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                for (_, ring) in queue {
                    ring.deliver();
                }
                return;
            }
        }
    }
}

/// Stops one core (see [`SimPlatform::halt_switch`]). Cheap to clone; `Send`.
#[derive(Clone)]
pub struct Halt {
    gate: Arc<Gate>,
}

impl Halt {
    pub(crate) fn new(gate: Arc<Gate>) -> Halt {
        Halt { gate }
    }

    /// Stops the core now: returns once no shared-memory access of it is in progress, and
    /// none will start. Halting twice is harmless; a halted core is never resumed (restart it
    /// with a fresh platform instead).
    pub fn halt(&self) {
        self.gate.halt();
    }

    /// Whether the core is halted.
    pub fn is_halted(&self) -> bool {
        self.gate.is_halted()
    }
}

/// The M7's start-up on a chip where a previous M7 program may have left a live link (a warm
/// restart): clears the vdev status byte (`DRIVER_OK`), waits `hold` so the running M4 sees
/// the reset at its next poll and stops using the rings (at least one M4 poll period; duet's
/// blocking waits poll every 10 ms), then lays everything out with [`Host::new`]. On a fresh
/// chip the hold only costs time.
pub fn start_host(
    platform: SimPlatform,
    config: Config,
    hold: Duration,
) -> Result<Host<SimPlatform>, duet_rpmsg::Error> {
    let status = config.rsc_table_offset as usize + l::VDEV_STATUS;
    platform.memory().write(status, &[0])?;
    platform.memory().fence();
    std::thread::sleep(hold);
    Host::new(platform, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_lie_inside_the_region_and_apart() {
        let c = crate::machine::sim_config();
        let mut all: Vec<Range<usize>> = Vec::new();
        for t in &Target::ALL[..4] {
            let r = t.ranges(&c);
            assert!(!r.is_empty());
            assert!(r.iter().all(|r| r.end <= crate::SHM_SIZE && !r.is_empty()));
            all.extend(r);
        }
        all.sort_by_key(|r| r.start);
        for w in all.windows(2) {
            assert!(w[0].end <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
        }
        // Nothing touches the resource table.
        assert!(all[0].start >= l::RSC_TABLE_AREA);
        assert_eq!(
            Target::Any.ranges(&c).len(),
            all.len(),
            "Any is the union of the four"
        );
        assert_eq!("indices".parse::<Target>(), Ok(Target::Indices));
        assert!("nope".parse::<Target>().is_err());
    }

    #[test]
    fn flips_are_reproducible_and_stay_in_their_target() {
        let c = crate::machine::sim_config();
        let run = |seed| {
            let f = Faults::new(seed);
            let mem = SimMemory::new();
            let flips: Vec<Flip> = (0..200)
                .map(|i| f.corrupt(&mem, &c, Target::ALL[i % 5]).unwrap())
                .collect();
            (flips, mem.snapshot(), f.counts().flips)
        };
        let (a, image, n) = run(9);
        assert_eq!(n, 200);
        assert_eq!(run(9).0, a, "same seed, same flips");
        assert_ne!(run(10).0, a);
        for (i, flip) in a.iter().enumerate() {
            assert_ne!(flip.mask, 0);
            let t = Target::ALL[i % 5];
            assert!(t.ranges(&c).iter().any(|r| r.contains(&flip.offset)));
        }
        // The image is the XOR of the masks (a zeroed region to start with).
        let mut want = vec![0u8; crate::SHM_SIZE];
        for f in &a {
            want[f.offset] ^= f.mask;
        }
        assert_eq!(image, want);
    }

    #[test]
    fn doorbell_plan_drops_duplicates_and_delays() {
        let chip = crate::SimChip::new(Faults::new(3));
        let m7 = chip.core(duet::CpuId::Cm7);
        let m4 = chip.core(duet::CpuId::Cm4);
        let far = |p: &SimPlatform| p.now().saturating_add(Duration::from_secs(5));
        let soon = |p: &SimPlatform| p.now().saturating_add(Duration::from_millis(30));
        // Everything dropped: the M4 never wakes.
        chip.faults().set_doorbells(DoorbellFaults {
            drop: 1.0,
            ..Default::default()
        });
        m7.notify();
        assert!(!m4.wait(soon(&m4)));
        assert_eq!(m7.rings_sent(), 0);
        // Everything duplicated: two counts per ring.
        chip.faults().set_doorbells(DoorbellFaults {
            duplicate: 1.0,
            ..Default::default()
        });
        m7.notify();
        assert_eq!(m7.rings_sent(), 2);
        assert!(m4.wait(far(&m4)));
        // Everything delayed: delivered later by the helper.
        chip.faults().set_doorbells(DoorbellFaults {
            delay: 1.0,
            max_delay: Duration::from_millis(20),
            ..Default::default()
        });
        m7.notify();
        assert!(m4.wait(far(&m4)));
        assert_eq!(m7.rings_sent(), 3);
        let c = chip.faults().counts();
        assert_eq!((c.rings, c.dropped, c.duplicated, c.delayed), (3, 1, 1, 1));
    }

    #[test]
    fn a_halted_core_touches_nothing() {
        let chip = crate::SimChip::new(Faults::new(1));
        let m4 = chip.core(duet::CpuId::Cm4);
        let m7 = chip.core(duet::CpuId::Cm7);
        m4.memory().write_u32(64, 7).unwrap();
        let halt = m4.halt_switch().unwrap();
        halt.halt();
        assert!(halt.is_halted());
        assert!(m4.memory().write_u32(64, 9).is_err());
        assert!(m4.memory().read_u32(64).is_err());
        assert_eq!(chip.memory().read_u32(64), Ok(7));
        m4.notify();
        assert_eq!(m4.rings_sent(), 0);
        // The other core and a restarted M4 work on.
        assert_eq!(m7.memory().read_u32(64), Ok(7));
        let again = chip.core(duet::CpuId::Cm4);
        again.memory().write_u32(64, 11).unwrap();
        assert_eq!(m7.memory().read_u32(64), Ok(11));
    }
}
