//! The physical floor of two cores talking through shared memory, measured on this host: a bare
//! cache-line ping-pong (latency) and a bare single-producer single-consumer memcpy ring
//! (throughput). Nothing can go faster through shared memory, so duet's figures are reported
//! as ratios to these, measured in the same run.

use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::{pattern, pin_side, Cpus, Side};

/// Round trips before the clock starts (both threads running, lines in cache).
const WARM_UP: u64 = 1000;

/// One cache line (128 bytes: two 64-byte lines, so the adjacent-line prefetcher shares
/// nothing with a neighbour).
#[repr(align(128))]
struct Line<T>(T);

/// Median-ready sample: nanoseconds per round trip of a bare cache-line ping-pong between two
/// threads (one on each CPU of `cpus`): A stores an odd value, B waits for it and stores the
/// next even value, A waits for that. Both spin (no sleeping).
pub fn pingpong(round_trips: u64, cpus: Cpus) -> f64 {
    let line = Line(AtomicU64::new(0));
    let l = &line.0;
    thread::scope(|s| {
        s.spawn(move || {
            pin_side(cpus, Side::M4);
            for k in 0..round_trips + WARM_UP {
                let ping = 2 * k + 1;
                while l.load(Ordering::Acquire) != ping {
                    spin_loop();
                }
                l.store(ping + 1, Ordering::Release);
            }
        });
        let a = s.spawn(move || {
            pin_side(cpus, Side::M7);
            let mut start = Instant::now();
            for k in 0..round_trips + WARM_UP {
                if k == WARM_UP {
                    start = Instant::now();
                }
                l.store(2 * k + 1, Ordering::Release);
                while l.load(Ordering::Acquire) != 2 * k + 2 {
                    spin_loop();
                }
            }
            start.elapsed()
        });
        per_op(a.join().expect("ping-pong thread"), round_trips)
    })
}

/// Capacity of the memcpy ring: the 64 receive buffers of 512 bytes the M7 has for the M4's
/// messages in the Arduino profile.
pub const RING_BYTES: usize = 64 * 512;

/// Bytes per write and per read in the stream measurements (the memcpy ring and duet's
/// `Serial` both move application chunks of this size).
pub const CHUNK: usize = 4096;

/// A single-producer single-consumer byte ring: `head` counts the bytes written (producer
/// only), `tail` the bytes read (consumer only); bytes `tail..head` (mod capacity) are the
/// consumer's, the rest the producer's.
struct Ring {
    buf: Box<[UnsafeCell<u8>]>,
    head: Line<AtomicUsize>,
    tail: Line<AtomicUsize>,
}

// SAFETY: the producer writes only bytes outside `tail..head` and the consumer reads only bytes
// inside it; `head`/`tail` are published with Release and read with Acquire, so every byte
// access is ordered before the other side's access to the same byte (no data race).
unsafe impl Sync for Ring {}

impl Ring {
    fn new() -> Ring {
        Ring {
            buf: (0..RING_BYTES).map(|_| UnsafeCell::new(0)).collect(),
            head: Line(AtomicUsize::new(0)),
            tail: Line(AtomicUsize::new(0)),
        }
    }

    /// Producer: copies as much of `data` as fits; returns the count.
    fn write(&self, data: &[u8]) -> usize {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let n = data.len().min(RING_BYTES - (head - tail));
        let at = head % RING_BYTES;
        let first = n.min(RING_BYTES - at);
        let base = UnsafeCell::raw_get(self.buf.as_ptr());
        // SAFETY: `at..at + first` and `0..n - first` are inside `buf` and outside the
        // consumer's part `tail..head` (n <= free space); see `impl Sync`.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), base.add(at), first);
            core::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, n - first);
        }
        self.head.0.store(head + n, Ordering::Release);
        n
    }

    /// Consumer: copies up to `out.len()` bytes out; returns the count.
    fn read(&self, out: &mut [u8]) -> usize {
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Acquire);
        let n = out.len().min(head - tail);
        let at = tail % RING_BYTES;
        let first = n.min(RING_BYTES - at);
        let base = UnsafeCell::raw_get(self.buf.as_ptr());
        // SAFETY: `at..at + first` and `0..n - first` are inside `buf` and inside the
        // consumer's part `tail..head` (n <= head - tail); see `impl Sync`.
        unsafe {
            core::ptr::copy_nonoverlapping(base.add(at), out.as_mut_ptr(), first);
            core::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), n - first);
        }
        self.tail.0.store(tail + n, Ordering::Release);
        n
    }
}

/// MB/s (10^6 bytes) through a bare memcpy ring of [`RING_BYTES`] between two threads: the
/// producer writes `bytes` of [`pattern`] in [`CHUNK`]-sized writes, the consumer reads
/// [`CHUNK`] at a time and checks every 64th byte (as [`crate::sim::stream`] does). Both spin
/// when the ring is full or empty.
pub fn memcpy_ring(bytes: usize, cpus: Cpus) -> f64 {
    let ring = Ring::new();
    let ring = &ring;
    let src = crate::pattern_source();
    let src = &src;
    thread::scope(|s| {
        s.spawn(move || {
            pin_side(cpus, Side::M4);
            let mut sent = 0;
            while sent < bytes {
                let want = CHUNK.min(bytes - sent);
                let from = &src[sent % 251..][..want];
                let mut done = 0;
                while done < want {
                    let n = ring.write(&from[done..]);
                    if n == 0 {
                        spin_loop();
                    }
                    done += n;
                }
                sent += want;
            }
        });
        let c = s.spawn(move || {
            pin_side(cpus, Side::M7);
            let mut buf = vec![0u8; CHUNK];
            let (mut got, mut start) = (0, None);
            while got < bytes {
                let n = ring.read(&mut buf);
                if n == 0 {
                    spin_loop();
                    continue;
                }
                start.get_or_insert_with(Instant::now);
                check_sparse(&buf[..n], got);
                got += n;
            }
            start.map_or(Duration::ZERO, |s| s.elapsed())
        });
        mbps(bytes, c.join().expect("ring consumer"))
    })
}

/// Checks every 64th byte of `data` (stream offset `at`) against [`pattern`]; panics on a
/// mismatch (a broken ring or transport, not a slow one).
pub fn check_sparse(data: &[u8], at: usize) {
    for k in (0..data.len()).step_by(64) {
        assert_eq!(data[k], pattern(at + k), "stream byte {}", at + k);
    }
}

/// Nanoseconds per operation.
pub fn per_op(d: Duration, ops: u64) -> f64 {
    d.as_nanos() as f64 / ops.max(1) as f64
}

/// MB/s (10^6 bytes per second).
pub fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / 1e6
}
