//! The two doorbells between the simulated cores: HSEM 0 (M7 -> M4) and HSEM 1 (M4 -> M7).
//!
//! Each doorbell is a ring counter with a single writer (the ringing side). A waiter remembers
//! the last value it saw; a different value means "rung since then". That gives the sticky
//! semantics of `Platform::wait` (like the WFE event register) without read-modify-write atomics
//! across the two sides.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use crate::memory::Mapping;
use crate::process;

/// One in-process doorbell: a ring counter and a condition variable to sleep on.
#[derive(Default)]
pub(crate) struct LocalBell {
    count: Mutex<u32>,
    rung: Condvar,
}

/// The doorbells of one simulated chip, in one of the two modes.
#[derive(Clone)]
pub(crate) enum Doorbells {
    /// Thread mode: `[HSEM 0, HSEM 1]`, woken through condition variables.
    Local(Arc<[LocalBell; 2]>),
    /// Process mode: the counters in the control page of the mapped file, polled.
    File(Arc<Mapping>),
}

impl Doorbells {
    /// A fresh pair of in-process doorbells.
    pub(crate) fn local() -> Doorbells {
        Doorbells::Local(Arc::new([LocalBell::default(), LocalBell::default()]))
    }

    /// The doorbell counters in the control page of `map` (a process-mode file mapping).
    pub(crate) fn file(map: Arc<Mapping>) -> Doorbells {
        Doorbells::File(map)
    }

    /// The file-mode counter of doorbell `bell` (0 or 1).
    fn file_counter(map: &Mapping, bell: usize) -> &AtomicU32 {
        let off = process::CONTROL_OFFSET + process::DOORBELL_OFFSETS[bell & 1];
        // The control page is part of every file mapping and the offset is 4-aligned.
        map.u32_at(off)
            .expect("control page is inside the mapping (checked when the file was opened)")
    }

    /// The current ring count of doorbell `bell`.
    pub(crate) fn count(&self, bell: usize) -> u32 {
        match self {
            Doorbells::Local(bells) => *bells[bell & 1]
                .count
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            Doorbells::File(map) => {
                let v = u32::from_le(Self::file_counter(map, bell).load(Ordering::Acquire));
                fence(Ordering::SeqCst);
                v
            }
        }
    }

    /// Rings doorbell `bell`: makes every earlier write visible, then bumps its counter.
    /// Only the owning side may call this (single writer).
    pub(crate) fn ring(&self, bell: usize) {
        fence(Ordering::SeqCst);
        match self {
            Doorbells::Local(bells) => {
                let b = &bells[bell & 1];
                let mut count = b.count.lock().unwrap_or_else(PoisonError::into_inner);
                *count = count.wrapping_add(1);
                b.rung.notify_all();
            }
            Doorbells::File(map) => {
                let c = Self::file_counter(map, bell);
                // Single writer: read our own last value, store the next one in one access.
                let next = u32::from_le(c.load(Ordering::Relaxed)).wrapping_add(1);
                c.store(next.to_le(), Ordering::Release);
            }
        }
    }

    /// Waits until doorbell `bell`'s count differs from `*seen` or `deadline` passes
    /// (`None` = never). Updates `*seen` and returns `true` if it differs.
    pub(crate) fn wait(&self, bell: usize, seen: &mut u32, deadline: Option<StdInstant>) -> bool {
        match self {
            Doorbells::Local(bells) => {
                let b = &bells[bell & 1];
                let mut count = b.count.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if *count != *seen {
                        *seen = *count;
                        drop(count);
                        fence(Ordering::SeqCst);
                        return true;
                    }
                    match deadline {
                        None => {
                            count = b.rung.wait(count).unwrap_or_else(PoisonError::into_inner);
                        }
                        Some(d) => {
                            let left = d.saturating_duration_since(StdInstant::now());
                            if left.is_zero() {
                                return false;
                            }
                            count = b
                                .rung
                                .wait_timeout(count, left)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                    }
                }
            }
            Doorbells::File(_) => {
                let mut backoff = Backoff::default();
                loop {
                    let now = self.count(bell);
                    if now != *seen {
                        *seen = now;
                        return true;
                    }
                    let left = match deadline {
                        None => Duration::MAX,
                        Some(d) => d.saturating_duration_since(StdInstant::now()),
                    };
                    if left.is_zero() {
                        return false;
                    }
                    backoff.pause(left);
                }
            }
        }
    }
}

/// Polling backoff for process mode: spin briefly, then yield, then sleep 50..200 us.
#[derive(Default)]
struct Backoff {
    step: u32,
}

impl Backoff {
    /// Spins before this many polls have been made.
    const SPINS: u32 = 64;
    /// Then yields the CPU for this many more polls.
    const YIELDS: u32 = 16;
    /// Then sleeps, starting at this long...
    const MIN_SLEEP: Duration = Duration::from_micros(50);
    /// ...and doubling up to this long.
    const MAX_SLEEP: Duration = Duration::from_micros(200);

    /// Pauses before the next poll, never longer than `left`.
    fn pause(&mut self, left: Duration) {
        self.step = self.step.saturating_add(1);
        if self.step <= Self::SPINS {
            std::hint::spin_loop();
        } else if self.step <= Self::SPINS + Self::YIELDS {
            std::thread::yield_now();
        } else {
            let doublings = (self.step - Self::SPINS - Self::YIELDS).min(2);
            let sleep = (Self::MIN_SLEEP * (1 << doublings)).min(Self::MAX_SLEEP);
            std::thread::sleep(sleep.min(left));
        }
    }
}
