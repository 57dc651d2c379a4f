//! Prefetch hints between the two simulated cores (thread mode).
//!
//! The two cores are two host CPUs, and each line of the region that one of them wrote is a
//! cache miss for the other (a transfer between the CPUs, about half a bare ping-pong). The
//! ring code reads one thing after another (index, then entry, then descriptor, then header),
//! so those misses would come one after another. Instead, each core notes the lines it writes
//! ([`Tracker::note`]) and publishes them when it rings its doorbell ([`Tracker::publish`]),
//! in the doorbell's own cache line, which the waiting peer reads anyway; the peer, woken by
//! the ring, prefetches them all at once ([`Tracker::check`]), so the misses overlap.
//!
//! Measured and rejected: publishing at every fence (the doorbell line then bounces between
//! the CPUs during a message), checking for new hints on every read (costs the byte stream
//! more than it saves), prefetching for writing the lines a core wrote last time.
//!
//! Only hints: a lost, stale or torn span costs speed, never correctness (a prefetch reads and
//! writes nothing the program can see). Every field is an atomic accessed `Relaxed`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::doorbell::LocalBell;
use crate::memory::{Mapping, SHM_SIZE};

/// How many spans of lines a publication carries (more are dropped).
pub(crate) const HINTS: usize = 8;

/// At most this many lines are prefetched per publication (8 KiB).
const MAX_LINES: usize = 128;

/// Bytes per cache line (the unit of the hints).
const LINE: usize = 64;

/// A span of lines `first..=last` of the region packed in a `u32` (`first | last << 16`).
fn span(first: usize, last: usize) -> u32 {
    (first as u32 & 0xFFFF) | (last as u32 & 0xFFFF) << 16
}

/// `(first, last)` of a packed span.
fn unspan(s: u32) -> (usize, usize) {
    ((s & 0xFFFF) as usize, (s >> 16) as usize)
}

/// One core's publication: in its outgoing doorbell's cache line.
#[derive(Default)]
pub(crate) struct Published {
    /// Bumped by every publication (the peer compares it with the one it last used).
    generation: AtomicU32,
    /// How many of `spans` are valid.
    len: AtomicU32,
    spans: [AtomicU32; HINTS],
}

/// One core's side of the hints: the lines written since its last publication, and the
/// peer's publication it used last. Used by that core's thread only; aligned so that it
/// shares no cache line with anything the peer touches.
#[repr(align(128))]
pub(crate) struct Tracker {
    /// How many of `spans` are in use.
    len: AtomicU32,
    spans: [AtomicU32; HINTS],
    /// The peer's `generation` last prefetched.
    seen: AtomicU32,
    /// The chip's doorbells (`[HSEM 0, HSEM 1]`), which carry the publications.
    bells: Arc<[LocalBell; 2]>,
    /// This core's outgoing doorbell (0: M7, 1: M4); the peer publishes in the other one.
    out: usize,
}

impl Tracker {
    /// A tracker for the core whose outgoing doorbell is `bells[out]`.
    pub(crate) fn new(bells: Arc<[LocalBell; 2]>, out: usize) -> Tracker {
        let seen = bells[(out ^ 1) & 1]
            .hints
            .generation
            .load(Ordering::Relaxed);
        Tracker {
            len: AtomicU32::new(0),
            spans: Default::default(),
            seen: AtomicU32::new(seen),
            bells,
            out: out & 1,
        }
    }

    /// Notes a write of `len > 0` bytes at `offset`: extends the last span if the lines touch
    /// or overlap it, else adds a span (none once all [`HINTS`] are used). Returns whether
    /// the lines were all in the last span already (written lately by this core).
    #[inline]
    pub(crate) fn note(&self, offset: usize, len: usize) -> bool {
        let (first, last) = (offset / LINE, (offset + len - 1) / LINE);
        let n = self.len.load(Ordering::Relaxed) as usize;
        if let Some(prev) = n.checked_sub(1).and_then(|i| self.spans.get(i)) {
            let p = prev.load(Ordering::Relaxed);
            let (a, b) = unspan(p);
            if first >= a && last <= b {
                return true;
            }
            if first <= b + 1 && last + 1 >= a {
                prev.store(span(a.min(first), b.max(last)), Ordering::Relaxed);
                return false;
            }
        }
        if let Some(slot) = self.spans.get(n) {
            slot.store(span(first, last), Ordering::Relaxed);
            self.len.store(n as u32 + 1, Ordering::Relaxed);
        }
        false
    }

    /// Publishes the lines noted since the last publication (nothing if none); called just
    /// before the core rings its doorbell.
    #[inline]
    pub(crate) fn publish(&self) {
        let n = (self.len.load(Ordering::Relaxed) as usize).min(HINTS);
        if n == 0 {
            return;
        }
        let p = &self.bells[self.out].hints;
        for (dst, src) in p.spans.iter().zip(&self.spans[..n]) {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        p.len.store(n as u32, Ordering::Relaxed);
        let g = p.generation.load(Ordering::Relaxed);
        p.generation.store(g.wrapping_add(1), Ordering::Relaxed);
        self.len.store(0, Ordering::Relaxed);
    }

    /// If the peer has published since the last call, prefetches its lines from `map`
    /// (returns whether it did); called when a ring wakes the core.
    #[inline]
    pub(crate) fn check(&self, map: &Mapping) -> bool {
        let p = &self.bells[self.out ^ 1].hints;
        let g = p.generation.load(Ordering::Relaxed);
        if g == self.seen.load(Ordering::Relaxed) {
            return false;
        }
        self.seen.store(g, Ordering::Relaxed);
        prefetch(map, p);
        true
    }
}

/// Prefetches the lines of publication `p` (at most [`MAX_LINES`], inside the region).
#[inline(never)]
fn prefetch(map: &Mapping, p: &Published) {
    let n = (p.len.load(Ordering::Relaxed) as usize).min(HINTS);
    let mut budget = MAX_LINES;
    for s in &p.spans[..n] {
        let (first, last) = unspan(s.load(Ordering::Relaxed));
        let last = last.min(SHM_SIZE / LINE - 1);
        let mut line = first;
        while line <= last && budget > 0 {
            map.prefetch(line * LINE);
            line += 1;
            budget -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(p: &Published) -> Vec<(usize, usize)> {
        let n = p.len.load(Ordering::Relaxed) as usize;
        p.spans[..n]
            .iter()
            .map(|s| unspan(s.load(Ordering::Relaxed)))
            .collect()
    }

    #[test]
    fn writes_become_spans_of_lines_published_once() {
        let bells: Arc<[LocalBell; 2]> = Arc::default();
        let (m7, m4) = (
            Tracker::new(bells.clone(), 0),
            Tracker::new(bells.clone(), 1),
        );
        let map = Mapping::heap(SHM_SIZE);
        // Nothing written: nothing published, nothing to prefetch.
        m7.publish();
        assert!(!m4.check(&map));
        assert!(!m7.note(0x400, 16)); // line 16
        assert!(m7.note(0x410, 10), "the same line: written lately");
        assert!(!m7.note(0x43f, 2)); // lines 16..=17: extends the span
        assert!(!m7.note(0xa400, 512)); // lines 656..=663
        assert!(!m7.note(0x3c, 8)); // lines 0..=1
        m7.publish();
        assert_eq!(
            spans(&bells[0].hints),
            [(16, 17), (656, 663), (0, 1)],
            "M7 publishes in HSEM 0's line"
        );
        assert_eq!(spans(&bells[1].hints), []);
        assert!(m4.check(&map));
        assert!(!m4.check(&map), "each publication is used once");
        assert!(!m7.check(&map), "the M7 reads the M4's publications only");
        // More spans than fit: the first HINTS are kept.
        for i in 0..HINTS + 3 {
            m7.note(i * 4 * LINE, 1);
        }
        m7.publish();
        let s = spans(&bells[0].hints);
        assert_eq!(s.len(), HINTS);
        assert_eq!(s[HINTS - 1], (4 * (HINTS - 1), 4 * (HINTS - 1)));
        assert!(m4.check(&map));
    }
}
