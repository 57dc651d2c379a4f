//! What the transport needs from the chip (or the simulator): shared memory, a doorbell to the
//! peer, a way to sleep until the peer rings, and a clock. Kept minimal on purpose.

use core::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch of the platform's clock.
///
/// Limit: a `u64` of microseconds wraps after 584 000 years; arithmetic saturates.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant(u64);

impl Instant {
    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the far future (so "never" is `Instant::MAX`).
    pub fn saturating_add(self, d: Duration) -> Self {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(us))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// The far future: a deadline that never passes.
    pub const MAX: Instant = Instant(u64::MAX);
}

/// An access outside the shared region, or a misaligned single access.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OutOfBounds {
    /// Offset of the refused access.
    pub offset: usize,
    /// Length of the refused access in bytes.
    pub len: usize,
}

/// Volatile, bounds-checked access to the memory both cores share, by offset from its start.
///
/// Implementations never hand out a Rust reference into the region: the other core may write
/// it at any time. Every method checks `offset + len <= size()` and returns [`OutOfBounds`]
/// instead of touching memory outside the region.
pub trait SharedMemory {
    /// Size of the region in bytes; valid offsets are `0..size()`.
    fn size(&self) -> usize;

    /// Copies `buf.len()` bytes starting at `offset` into `buf` (volatile reads).
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds>;

    /// Copies `data` to the region starting at `offset` (volatile writes).
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds>;

    /// Reads a little-endian `u16` with one single-copy-atomic access; `offset` must be 2-aligned.
    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds>;

    /// Writes a little-endian `u16` with one single-copy-atomic access; `offset` must be 2-aligned.
    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds>;

    /// Reads a little-endian `u32` with one single-copy-atomic access; `offset` must be 4-aligned.
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds>;

    /// Writes a little-endian `u32` with one single-copy-atomic access; `offset` must be 4-aligned.
    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds>;

    /// Memory barrier: every access before it is observed by the peer before any access after
    /// it (a DMB on the chip, a SeqCst fence on the host). Used around index publication.
    fn fence(&self);
}

/// The platform under the transport: one core's view of the shared memory, its doorbell to the
/// peer, its wait for the peer's doorbell, and its clock.
pub trait Platform {
    /// The shared-memory accessor.
    type Memory: SharedMemory;

    /// The shared region (on the H747: SRAM4, 64 KiB at 0x3800_0000).
    fn memory(&self) -> &Self::Memory;

    /// Rings the peer's doorbell (HSEM 0 from the M7, HSEM 1 from the M4). A hint only: the peer
    /// must not rely on it to find every message.
    fn notify(&self);

    /// Sleeps until the peer rings or `deadline` passes; returns `true` if woken by a ring.
    ///
    /// A ring that arrived since the previous call returned is not lost: the call then returns
    /// at once (like the WFE event register). Spurious `true` returns are allowed, so callers
    /// re-check shared memory after every return.
    fn wait(&self, deadline: Instant) -> bool;

    /// The current time of this core's clock; monotonic.
    fn now(&self) -> Instant;
}
