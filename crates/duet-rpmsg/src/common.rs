//! Pieces shared by both roles: statistics, zero-copy views, the blocking helpers.

use core::time::Duration;

use crate::config::{layout, Geometry, MAX_DESCRIPTORS};
use crate::platform::{Instant, OutOfBounds, Platform, SharedMemory};
use crate::transport::{Corruption, Endpoint, Error, Transport};

/// How long a blocking call sleeps at most before it re-polls shared memory. Buffer returns
/// ring no doorbell, so waiting only for a ring could wait forever.
pub const POLL_SLICE: Duration = Duration::from_micros(500);

/// Counters of one side (all wrap at `u32::MAX`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    /// Messages sent (a multi-buffer message counts once).
    pub messages_sent: u32,
    /// Buffers sent (data and control).
    pub buffers_sent: u32,
    /// Data buffers delivered to the caller (a multi-buffer message counts per buffer).
    pub buffers_received: u32,
    /// Control messages consumed internally (name service, first-message handshake).
    pub control_received: u32,
    /// Sends refused for lack of buffers (`NoBuffer`).
    pub no_buffer: u32,
    /// Corrupt entries skipped (each also returned as `Error::Corrupt`).
    pub corrupt: u32,
    /// Name-service announcements ignored (unknown name, or destroy of an unbound endpoint).
    pub ns_ignored: u32,
    /// Peer resets seen.
    pub peer_resets: u32,
}

/// All counters 0 (a constant, so creating a role is plain stores).
pub(crate) const NO_STATS: Stats = Stats {
    messages_sent: 0,
    buffers_sent: 0,
    buffers_received: 0,
    control_received: 0,
    no_buffer: 0,
    corrupt: 0,
    ns_ignored: 0,
    peer_resets: 0,
};

/// A received payload, still in shared memory. Read it with [`Payload::read`]; it is never a
/// Rust reference into shared memory. Valid until the callback that got it returns.
pub struct Payload<'a, M: SharedMemory> {
    pub(crate) mem: &'a M,
    pub(crate) offset: usize,
    pub(crate) len: usize,
}

impl<M: SharedMemory> Payload<'_, M> {
    /// Payload length in bytes (at most one buffer's payload).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` payload bytes from `offset` into `buf`; `OutOfBounds` (offsets relative
    /// to the payload) if that passes the payload's end.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let oob = OutOfBounds {
            offset,
            len: buf.len(),
        };
        match offset.checked_add(buf.len()) {
            Some(end) if end <= self.len => self.mem.read(self.offset + offset, buf),
            _ => Err(oob),
        }
    }
}

impl<M: SharedMemory> crate::transport::PayloadRead for Payload<'_, M> {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        Payload::read(self, offset, buf)
    }
}

/// Writes a message straight into its shared buffers (see `send_with`). Offsets are relative to
/// the message; bytes never written keep whatever the buffer held before.
pub struct Writer<'a, M: SharedMemory> {
    pub(crate) io: Io<'a, M>,
    pub(crate) geo: &'a Geometry,
    /// Transmit descriptors of the message; chunk `i` is the `i`-th lowest.
    pub(crate) ids: u64,
    /// Host role (transmit ring 1, fixed buffers) or remote (ring 0, buffers the host posted).
    pub(crate) host: bool,
    /// Remote: the buffers of the transmit descriptors it took (see [`tx_buf`]).
    pub(crate) posted: &'a Posted,
    pub(crate) len: usize,
}

impl<M: SharedMemory> Writer<'_, M> {
    /// Message length in bytes (fixed when the send started).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` to the message at `offset`; `OutOfBounds` (message-relative) if that passes
    /// the message's end.
    pub fn write(&mut self, mut offset: usize, mut data: &[u8]) -> Result<(), OutOfBounds> {
        let oob = OutOfBounds {
            offset,
            len: data.len(),
        };
        if offset.checked_add(data.len()).is_none_or(|e| e > self.len) {
            return Err(oob);
        }
        let per = self.geo.payload();
        while !data.is_empty() {
            let (Some(i), Some(within)) = (offset.checked_div(per), offset.checked_rem(per)) else {
                return Err(oob);
            };
            let n = (per - within).min(data.len());
            let base = self.chunk(i).ok_or(oob)?;
            let (now, rest) = data.split_at(n);
            self.io.m.write(base + layout::HDR_SIZE + within, now)?;
            data = rest;
            offset += n;
        }
        Ok(())
    }

    /// The buffer (header start) of chunk `i`.
    pub(crate) fn chunk(&self, i: usize) -> Option<usize> {
        Some(tx_buf(self.geo, self.host, self.posted, nth(self.ids, i)?))
    }
}

/// Remote: per transmit descriptor, the buffer its descriptor named when this side took it
/// (validated then; a later rewrite by the host cannot redirect the write).
pub(crate) type Posted = [u32; MAX_DESCRIPTORS as usize];

/// The buffer (header start) of transmit descriptor `id`: the host's own, or the one the host
/// posted (as validated when the remote took it).
#[inline(always)]
pub(crate) fn tx_buf(g: &Geometry, host: bool, posted: &Posted, id: u16) -> usize {
    if host {
        return g.host_buf(1, id);
    }
    posted[id as usize % posted.len()] as usize
}

/// The buffer the descriptor at `d` points to, if it is one of the pool's.
#[inline(always)]
pub(crate) fn desc_buf<M: SharedMemory>(io: Io<'_, M>, g: &Geometry, d: usize) -> Option<usize> {
    let a = io.read_pair(d + layout::DESC_ADDR);
    g.buffer_at(a as u32, (a >> 32) as u32)
}

/// A set of descriptor ids (up to 64), 4-aligned so that clearing it never needs `memclr8`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Bits {
    lo: u32,
    hi: u32,
}

impl Bits {
    /// The empty set.
    pub const NONE: Bits = Bits { lo: 0, hi: 0 };
    pub fn get(self) -> u64 {
        self.lo as u64 | (self.hi as u64) << 32
    }
    /// The 32-bit half holding `id`, and its bit there. Callers keep `id` below the ring
    /// size (at most 64); a larger one would alias `id % 64` (never out of bounds).
    fn word(&mut self, id: u16) -> (&mut u32, u32) {
        let bit = 1u32 << (id & 31);
        if id & 32 == 0 {
            (&mut self.lo, bit)
        } else {
            (&mut self.hi, bit)
        }
    }
    pub fn has(self, id: u16) -> bool {
        let w = if id & 32 == 0 { self.lo } else { self.hi };
        (w >> (id & 31)) & 1 != 0
    }
    /// Adds (`on`) or removes descriptor `id` (below 64).
    #[inline(always)]
    pub fn put(&mut self, id: u16, on: bool) {
        let (w, b) = self.word(id);
        *w = if on { *w | b } else { *w & !b };
    }
    /// The lowest id in the set, if any.
    pub fn lowest(self) -> Option<u16> {
        if self.lo != 0 {
            Some(self.lo.trailing_zeros() as u16)
        } else if self.hi != 0 {
            Some(32 + self.hi.trailing_zeros() as u16)
        } else {
            None
        }
    }
    /// Number of ids in the set.
    #[inline(never)]
    pub fn count(self) -> usize {
        (self.lo.count_ones() + self.hi.count_ones()) as usize
    }
    /// The ids `0..n` (all 64 if `n > 64`), without a loop (folds for a constant `n`).
    pub fn first(n: u16) -> Bits {
        let mask = |k: u16| {
            1u32.checked_shl(k.min(32) as u32)
                .map_or(u32::MAX, |b| b - 1)
        };
        Bits {
            lo: mask(n),
            hi: mask(n.saturating_sub(32)),
        }
    }
}

/// The `k` lowest ids of `set`, if it has that many.
pub(crate) fn lowest(set: u64, k: usize) -> Option<u64> {
    let mut left = set;
    for _ in 0..k {
        if left == 0 {
            return None;
        }
        left &= left - 1;
    }
    Some(set & !left)
}

/// The `i`-th lowest id of `set`.
fn nth(set: u64, i: usize) -> Option<u16> {
    let mut m = set;
    for _ in 0..i {
        m &= m.wrapping_sub(1);
    }
    (m != 0).then_some(m.trailing_zeros() as u16)
}

/// Iterates over the ids of `set`, lowest first.
pub(crate) fn ids(mut set: u64) -> impl Iterator<Item = u16> {
    core::iter::from_fn(move || {
        let id = (set != 0).then_some(set.trailing_zeros() as u16);
        set &= set.wrapping_sub(1);
        id
    })
}

/// An internal failure: [`Error`] without payloads, so internal results fit in registers.
/// Turned into an `Error` by [`Fault::into_error`] at the public entry points. The variants
/// are in `Error`'s order (two placeholders fill the gaps), so that the conversion is an offset
/// of the tag, not a table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fault {
    NotReady,
    NoBuffer,
    /// Placeholder for `Error::Timeout` (never built: only the blocking helpers time out).
    #[allow(dead_code)]
    Timeout,
    /// `MessageTooLarge`; the entry point knows the length and the limit.
    TooLarge,
    /// `BufferTooSmall`; the entry point passes the payload length as `len`.
    TooSmall,
    Corrupt(Corruption),
    /// Placeholder for `Error::Memory` (never built: only `Host::new` reports it).
    #[allow(dead_code)]
    Memory,
    PeerReset,
    InvalidConfig,
}

impl Fault {
    /// The public error: `len`/`max` for `MessageTooLarge`.
    pub fn into_error(self, len: usize, max: usize) -> Error {
        match self {
            Fault::NotReady => Error::NotReady,
            Fault::NoBuffer => Error::NoBuffer,
            Fault::TooLarge => Error::MessageTooLarge { len, max },
            Fault::Corrupt(c) => Error::Corrupt(c),
            Fault::PeerReset => Error::PeerReset,
            Fault::InvalidConfig => Error::InvalidConfig,
            Fault::TooSmall => Error::BufferTooSmall { needed: len },
            Fault::Timeout => Error::Timeout,
            // Never built; the payload as `TooLarge`'s, so that every arm stores the same.
            Fault::Memory => Error::Memory(OutOfBounds {
                offset: len,
                len: max,
            }),
        }
    }
}

/// Shared memory as the role code sees it, once the region is known to hold the whole layout
/// ([`covers`]): every offset the roles use is then inside it (ring offsets by the layout,
/// buffers by their validation against the pool), so accesses cannot be refused; a refused one
/// (a halted simulated core) reads 0 and writes nothing. No error path per access.
pub(crate) struct Io<'a, M> {
    pub m: &'a M,
}

impl<M> Clone for Io<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Io<'_, M> {}

/// `Ok` if `m` holds the whole layout `g` (offsets `0..g.end`), else the refused range.
#[inline(always)]
pub(crate) fn covers<M: SharedMemory>(m: &M, g: &Geometry) -> Result<(), OutOfBounds> {
    let size = m.size();
    if size < g.end {
        return Err(OutOfBounds {
            offset: size,
            len: g.end - size,
        });
    }
    Ok(())
}

impl<M: SharedMemory> Io<'_, M> {
    /// Whether `len` bytes at `off` lie inside the region and `off` is a multiple of `align`
    /// (a power of two). Checked here once per access (or per word pair), in a form the
    /// compiler carries into the memory's own check, which then folds where it is inlined.
    #[inline(always)]
    fn fits(self, off: usize, len: usize, align: usize) -> bool {
        off & (align - 1) == 0 && off <= self.m.size().wrapping_sub(len)
    }
    /// One word load; a plain load where the compiler knows the offset (the resource table of
    /// a compile-time profile).
    #[inline(always)]
    pub fn read_u32(self, off: usize) -> u32 {
        if !self.fits(off, 4, 4) {
            return 0;
        }
        self.m.read_u32(off).unwrap_or(0)
    }
    #[inline(always)]
    pub fn write_u16(self, off: usize, v: u16) {
        if self.fits(off, 2, 2) {
            let _ = self.m.write_u16(off, v);
        }
    }
    /// One word store (`off` 4-aligned by the layout).
    #[inline(never)]
    pub fn write_u32(self, off: usize, v: u32) {
        if self.fits(off, 4, 4) {
            let _ = self.m.write_u32(off, v);
        }
    }

    /// Reads the word at `off` (low half) and the one after it (high half); one register pair.
    #[inline(always)]
    pub fn read_pair(self, off: usize) -> u64 {
        if !self.fits(off, 8, 4) {
            return 0;
        }
        let lo = self.m.read_u32(off).unwrap_or(0) as u64;
        lo | (self.m.read_u32(off + 4).unwrap_or(0) as u64) << 32
    }

    /// Writes `a` at `off` and `b` right after it: two word stores (this side's own words,
    /// published to the peer only by a later fence and index; `off` is 4-aligned by the layout).
    #[inline(always)]
    pub fn write_pair(self, off: usize, a: u32, b: u32) {
        if self.fits(off, 8, 4) {
            let _ = self.m.write_u32(off, a);
            let _ = self.m.write_u32(off + 4, b);
        }
    }
    /// Out of line: payloads and headers share it.
    #[inline(never)]
    pub fn write(self, off: usize, data: &[u8]) {
        let _ = self.m.write(off, data);
    }
    pub fn read(self, off: usize, buf: &mut [u8]) {
        let _ = self.m.read(off, buf);
    }
    pub fn fence(self) {
        self.m.fence()
    }
}

/// The public result of an operation: `r` with `len`/`max` for `MessageTooLarge`.
pub(crate) fn finish<T>(r: Result<T, Fault>, len: usize, max: usize) -> Result<T, Error> {
    r.map_err(|f| f.into_error(len, max))
}

/// The [`Io`] of a role struct (field `platform`).
macro_rules! io {
    ($s:expr) => {
        $crate::common::Io {
            m: $s.platform.memory(),
        }
    };
}
pub(crate) use io;

/// `send` for both roles: `try_send` until it stops saying `NoBuffer` or `deadline` passes,
/// sleeping at most [`POLL_SLICE`] at a time.
pub(crate) fn send_until<T: Transport>(
    t: &mut T,
    endpoint: Endpoint,
    data: &[u8],
    deadline: Instant,
) -> Result<(), Error> {
    loop {
        match t.try_send(endpoint, data) {
            Err(Error::NoBuffer) => {}
            r => return r,
        }
        if !nap(t.platform(), deadline) {
            return Err(Error::Timeout);
        }
    }
}

/// Sleeps until a ring, `deadline` or one poll slice; `false` if `deadline` has passed.
pub(crate) fn nap<P: Platform>(p: &P, deadline: Instant) -> bool {
    let now = p.now();
    if now >= deadline {
        return false;
    }
    p.wait(deadline.min(now.saturating_add(POLL_SLICE)));
    true
}

/// Polls `t` (sleeping between polls) until both endpoints are ready; `Timeout` at `deadline`.
///
/// Corrupt entries met on the way are skipped (they are counted in the transport's stats);
/// `PeerReset` restarts the wait; other errors are returned.
pub fn connect<T: Transport>(t: &mut T, deadline: Instant) -> Result<(), Error> {
    loop {
        match t.poll() {
            Ok(()) | Err(Error::Corrupt(_)) | Err(Error::PeerReset) | Err(Error::NoBuffer) => {}
            Err(e) => return Err(e),
        }
        if Endpoint::ALL.iter().all(|&e| t.is_ready(e)) {
            return Ok(());
        }
        if !nap(t.platform(), deadline) {
            return Err(Error::Timeout);
        }
    }
}
