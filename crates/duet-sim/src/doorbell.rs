//! The two doorbells between the simulated cores: HSEM 0 (M7 -> M4) and HSEM 1 (M4 -> M7).
//!
//! Each doorbell is a ring counter that only the ringing side bumps. A waiter remembers the
//! last value it saw; a different value means "rung since then". That gives the sticky
//! semantics of `Platform::wait` (like the WFE event register); the waiter never writes the
//! counter.
//!
//! A waiter that was woken by a ring last time ("the link is busy") first spins on the counter
//! for up to [`SPIN`] before it sleeps: a sleeping thread takes tens of microseconds to wake,
//! far more than a round trip through shared memory. A waiter whose last wait timed out
//! sleeps at once, so an idle core costs no CPU.

use std::hint::spin_loop;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use crate::hints::Published;
use crate::memory::Mapping;
use crate::process;

/// How long a busy waiter spins on the counter before it sleeps.
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// One in-process doorbell: a ring counter, and a condition variable for waiters that sleep.
/// Aligned to 128 bytes (two cache lines, as the adjacent-line prefetcher pairs them), so
/// that the two doorbells of a chip never share a line: each core spins on the one the other
/// rings, and a ring in one direction does not take the other waiter's line away.
#[derive(Default)]
#[repr(C, align(128))]
pub(crate) struct LocalBell {
    /// Ring count (written by the ringing side only).
    count: AtomicU32,
    /// The ringing core's prefetch hints (see [`crate::hints`]): in the line the waiter spins
    /// on, so that they reach it at no extra cost.
    pub(crate) hints: Published,
    /// Whether the waiter is (about to be) asleep on `rung`: the ringer then takes `lock` and
    /// notifies. Both are `SeqCst`, so either the waiter sees the new count or the ringer
    /// sees the flag (no lost wake-up).
    sleeping: AtomicBool,
    lock: Mutex<()>,
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
            Doorbells::Local(bells) => bells[bell & 1].count.load(Ordering::SeqCst),
            Doorbells::File(map) => {
                let v = u32::from_le(Self::file_counter(map, bell).load(Ordering::Acquire));
                fence(Ordering::SeqCst);
                v
            }
        }
    }

    /// Rings doorbell `bell`: makes every earlier write visible, then bumps its counter.
    pub(crate) fn ring(&self, bell: usize) {
        match self {
            Doorbells::Local(bells) => {
                let b = &bells[bell & 1];
                // A read-modify-write (so that a fault injector's delayed ring racing this
                // one is not lost), `SeqCst`: every earlier write is visible to a waiter that
                // sees the new count, and the `sleeping` check below cannot pass it.
                b.count.fetch_add(1, Ordering::SeqCst);
                if b.sleeping.load(Ordering::SeqCst) {
                    // The waiter holds the lock from setting the flag until it sleeps, so
                    // this notification cannot fall between its check and its sleep.
                    let _g = b.lock.lock().unwrap_or_else(PoisonError::into_inner);
                    b.rung.notify_all();
                }
            }
            Doorbells::File(map) => {
                fence(Ordering::SeqCst);
                let c = Self::file_counter(map, bell);
                // Single writer: read our own last value, store the next one in one access.
                let next = u32::from_le(c.load(Ordering::Relaxed)).wrapping_add(1);
                c.store(next.to_le(), Ordering::Release);
            }
        }
    }

    /// The in-process doorbells (`None` in process mode).
    pub(crate) fn in_process(&self) -> Option<&Arc<[LocalBell; 2]>> {
        match self {
            Doorbells::Local(bells) => Some(bells),
            Doorbells::File(_) => None,
        }
    }

    /// Waits until doorbell `bell`'s count differs from `*seen` or `deadline` passes
    /// (`None` = never). Updates `*seen` and returns `true` if it differs. With `spin`, or if
    /// the deadline is at most [`SPIN`] away, first polls the count for up to [`SPIN`] (see
    /// the module doc); the caller passes whether its previous wait was ended by a ring.
    pub(crate) fn wait(
        &self,
        bell: usize,
        seen: &mut u32,
        deadline: Option<StdInstant>,
        spin: bool,
    ) -> bool {
        // A wait shorter than a spin (a sender polling for returned buffers) spins too:
        // sleeping that briefly costs more than it saves.
        let short = deadline.is_some_and(|d| d <= StdInstant::now() + SPIN);
        if (spin || short) && self.spin(bell, seen, deadline) {
            return true;
        }
        match self {
            Doorbells::Local(bells) => {
                let b = &bells[bell & 1];
                let mut guard = b.lock.lock().unwrap_or_else(PoisonError::into_inner);
                b.sleeping.store(true, Ordering::SeqCst);
                let rung = loop {
                    let now = b.count.load(Ordering::SeqCst);
                    if now != *seen {
                        *seen = now;
                        break true;
                    }
                    match deadline {
                        None => {
                            guard = b.rung.wait(guard).unwrap_or_else(PoisonError::into_inner);
                        }
                        Some(d) => {
                            let left = d.saturating_duration_since(StdInstant::now());
                            if left.is_zero() {
                                break false;
                            }
                            guard = b
                                .rung
                                .wait_timeout(guard, left)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                    }
                };
                b.sleeping.store(false, Ordering::SeqCst);
                drop(guard);
                fence(Ordering::SeqCst);
                rung
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

    /// Polls doorbell `bell`'s count for up to [`SPIN`] (not past `deadline`); `true` (and
    /// `*seen` updated) as soon as it differs from `*seen`.
    fn spin(&self, bell: usize, seen: &mut u32, deadline: Option<StdInstant>) -> bool {
        let start = StdInstant::now();
        let stop = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
        loop {
            // Reading the clock costs more than a poll: check it every 64 polls.
            for _ in 0..64 {
                let now = self.count(bell);
                if now != *seen {
                    *seen = now;
                    fence(Ordering::SeqCst);
                    return true;
                }
                spin_loop();
            }
            if StdInstant::now() >= stop {
                return false;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn a_ring_before_the_wait_is_not_lost_spinning_or_not() {
        for spin in [false, true] {
            let bells = Doorbells::local();
            let mut seen = bells.count(1);
            bells.ring(1);
            let deadline = Some(StdInstant::now() + Duration::from_secs(5));
            assert!(bells.wait(1, &mut seen, deadline, spin));
            assert_eq!(seen, bells.count(1));
            // Nothing new: times out (and only the other doorbell rings).
            bells.ring(0);
            let soon = Some(StdInstant::now() + Duration::from_millis(2));
            assert!(!bells.wait(1, &mut seen, soon, spin));
        }
    }

    #[test]
    fn a_ring_wakes_a_sleeping_or_spinning_waiter() {
        // After 0 us the waiter is spinning; after 5 ms it is asleep on the condvar.
        for (spin, delay_us) in [(true, 0), (true, 5000), (false, 0), (false, 5000)] {
            let bells = Doorbells::local();
            let mut seen = bells.count(0);
            let ringer = bells.clone();
            let t = thread::spawn(move || {
                thread::sleep(Duration::from_micros(delay_us));
                ringer.ring(0);
            });
            // No deadline: only the ring can end this wait.
            assert!(bells.wait(0, &mut seen, None, spin));
            assert_eq!(seen, 1);
            t.join().unwrap();
        }
    }
}
