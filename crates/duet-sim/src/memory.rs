//! The simulated SRAM4: a 64 KiB region shared by the two simulated cores.
//!
//! Every access goes through `Relaxed` atomic 4-byte words on raw pointers (bulk copies a load
//! or store per word, aligned `u32` values one load or store, parts of a word and `u16`
//! values a load or a compare-and-swap of their word), so the peer may write the region at any time without a
//! data race in the Rust sense, and all atomic accesses to a location have one size (racing
//! accesses of different sizes are not allowed by Rust's memory model; Miri found them when
//! bytes, half-words and words were mixed). No `&`/`&mut` to the bytes is ever created.

use std::fs::File;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use duet_rpmsg::{OutOfBounds, SharedMemory};

use crate::hints::Tracker;

/// The atomic unit every access of the region goes through: 4 bytes, so that an aligned `u32`
/// (most transport fields) is one plain atomic load or store.
type Word = AtomicU32;
/// The value type of [`Word`].
type Bits = u32;
/// Bytes per [`Word`].
const W: usize = 4;

/// Firmware address of offset 0 of the region (SRAM4 on the STM32H747).
pub const SHM_BASE: u32 = 0x3800_0000;

/// Size of the shared region in bytes (64 KiB: firmware addresses `0x3800_0000..0x3801_0000`).
pub const SHM_SIZE: usize = 0x1_0000;

/// What keeps the mapped bytes alive.
enum Backing {
    /// In-process allocation from `Box::into_raw`; `Word` elements make it word-aligned.
    /// Freed in `Mapping::drop`.
    Heap(*mut [Word]),
    /// A `MAP_SHARED` mapping of a file (page aligned).
    File(#[allow(dead_code)] memmap2::MmapRaw),
}

/// A mapping of `len` bytes at `ptr`, alive as long as this value.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
    backing: Backing,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Backing::Heap(words) = self.backing {
            // SAFETY: `words` came from `Box::into_raw` in `Mapping::heap` and is freed only
            // here, once; no access can happen after the last `Arc<Mapping>` is gone.
            drop(unsafe { Box::from_raw(words) });
        }
    }
}

// SAFETY: `ptr` points into memory owned by `_backing`, which lives as long as the `Mapping`.
// Every access through the pointer is atomic (see the accessors), so sharing and sending the
// mapping between threads cannot cause a data race.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`; `&Mapping` only permits atomic accesses.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A zeroed, word-aligned in-process mapping of `len` bytes (rounded up to a word).
    pub(crate) fn heap(len: usize) -> Mapping {
        let words: Box<[Word]> = (0..len.div_ceil(W)).map(|_| Word::new(0)).collect();
        // A raw allocation (no `Box` kept alive), so that only raw pointers reach the bytes.
        let words = Box::into_raw(words);
        Mapping {
            ptr: words.cast::<u8>(),
            len,
            backing: Backing::Heap(words),
        }
    }

    /// A shared, writable mapping of the first `len` bytes of `file`.
    ///
    /// The caller must have made the file at least `len` bytes long; if another process later
    /// truncates it, accesses may fault (SIGBUS), as with any shared mapping.
    pub(crate) fn file(file: &File, len: usize) -> std::io::Result<Mapping> {
        let raw = memmap2::MmapOptions::new().len(len).map_raw(file)?;
        let ptr = raw.as_mut_ptr();
        Ok(Mapping {
            ptr,
            len,
            backing: Backing::File(raw),
        })
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Checks `offset..offset + len` and the alignment `align`; returns the address.
    fn check(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8, OutOfBounds> {
        let err = OutOfBounds { offset, len };
        let end = offset.checked_add(len).ok_or(err)?;
        if end > self.len || !offset.is_multiple_of(align) {
            return Err(err);
        }
        // The base is word-aligned, so an aligned offset is an aligned address.
        // `wrapping_add` stays in bounds here (checked above) and needs no unsafe.
        Ok(self.ptr.wrapping_add(offset))
    }

    /// Copies bytes `offset..offset + buf.len()` into `buf`, one `Relaxed` word load per word
    /// (the partial words at either end included).
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, buf.len(), 1)?;
        let mut i = 0;
        // The first word, if `offset` is inside one.
        let within = offset % W;
        if within != 0 && !buf.is_empty() {
            let n = (W - within).min(buf.len());
            let v = self
                .word_at(offset / W)
                .load(Ordering::Relaxed)
                .to_ne_bytes();
            buf[..n].copy_from_slice(&v[within..within + n]);
            i = n;
        }
        // Whole words.
        let mut w = (offset + i) / W;
        let mut chunks = buf[i..].chunks_exact_mut(W);
        for out in &mut chunks {
            out.copy_from_slice(&self.word_at(w).load(Ordering::Relaxed).to_ne_bytes());
            w += 1;
        }
        // The last, partial word.
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let v = self.word_at(w).load(Ordering::Relaxed).to_ne_bytes();
            let n = rest.len();
            rest.copy_from_slice(&v[..n]);
        }
        Ok(())
    }

    /// Copies `data` to `offset..`: whole words are one `Relaxed` store, parts of a word a
    /// compare-and-swap that keeps the word's other bytes (the peer may be writing them).
    ///
    /// `recent`: this core wrote these lines lately (they are likely in its cache; see
    /// [`merge`]).
    pub(crate) fn write(
        &self,
        offset: usize,
        data: &[u8],
        recent: bool,
    ) -> Result<(), OutOfBounds> {
        self.check(offset, data.len(), 1)?;
        let mut i = 0;
        let within = offset % W;
        if within != 0 && !data.is_empty() {
            let n = (W - within).min(data.len());
            merge(self.word_at(offset / W), within, &data[..n], recent);
            i = n;
        }
        let mut w = (offset + i) / W;
        let mut chunks = data[i..].chunks_exact(W);
        for part in &mut chunks {
            let mut b = [0; W];
            b.copy_from_slice(part);
            self.word_at(w)
                .store(Bits::from_ne_bytes(b), Ordering::Relaxed);
            w += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            merge(self.word_at(w), 0, rest, recent);
        }
        Ok(())
    }

    /// A little-endian value of `N` (2 or 4) bytes at `offset` (`N`-aligned, so inside one
    /// word): one single-copy-atomic load.
    pub(crate) fn load<const N: usize>(&self, offset: usize) -> Result<[u8; N], OutOfBounds> {
        self.check(offset, N, N)?;
        let at = offset % W;
        let v = self
            .word_at(offset / W)
            .load(Ordering::Relaxed)
            .to_ne_bytes();
        let mut out = [0; N];
        out.copy_from_slice(&v[at..at + N]);
        Ok(out)
    }

    /// Stores `N` (2 or 4) bytes at `offset` (`N`-aligned, so inside one word): a whole word is
    /// one atomic store, a half-word one compare-and-swap of its word (`recent` as for
    /// [`Mapping::write`]).
    pub(crate) fn store<const N: usize>(
        &self,
        offset: usize,
        v: [u8; N],
        recent: bool,
    ) -> Result<(), OutOfBounds> {
        self.check(offset, N, N)?;
        let word = self.word_at(offset / W);
        if N == W {
            let mut b = [0; W];
            b.copy_from_slice(&v);
            word.store(Bits::from_ne_bytes(b), Ordering::Relaxed);
        } else {
            merge(word, offset % W, &v, recent);
        }
        Ok(())
    }

    /// The word `index` of a range already checked by [`Mapping::check`] (its bytes lie inside
    /// the mapping, whose length the allocation or the page rounds up to whole words).
    #[inline(always)]
    fn word_at(&self, index: usize) -> &Word {
        debug_assert!(index * W < self.len.next_multiple_of(W));
        // SAFETY: the base is word-aligned (a `Word` allocation or a page); the caller checked
        // that a byte of word `index` lies inside the mapping, and the mapping's memory extends
        // to the end of that word (heap: whole `Word`s; file: whole pages); it outlives `&self`
        // and so the returned reference; every access to the region's bytes is an atomic access
        // to one of these words.
        unsafe { Word::from_ptr(self.ptr.wrapping_add(index * W).cast::<Bits>()) }
    }

    /// Prefetches the cache line of byte `offset` (nothing past the mapping, under Miri or on
    /// other architectures than x86-64). A hint: it reads and writes nothing.
    #[inline]
    pub(crate) fn prefetch(&self, offset: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if offset < self.len {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: SSE is part of the x86-64 baseline, so the instruction exists; a prefetch
            // neither reads nor writes memory as far as the program can tell and never faults
            // (the address, `wrapping_add` within the mapping, is valid anyway).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.ptr.wrapping_add(offset).cast::<i8>()) };
        }
        #[cfg(not(all(target_arch = "x86_64", not(miri))))]
        let _ = offset;
    }

    /// The `AtomicU32` at `offset` (4-aligned, in bounds). Only for the process-mode control
    /// page behind the region, whose words are never accessed with another size.
    pub(crate) fn u32_at(&self, offset: usize) -> Result<&AtomicU32, OutOfBounds> {
        let p = self.check(offset, 4, 4)?;
        // SAFETY: `p` is in bounds and 4-aligned (checked); the memory lives as long as `self`,
        // which bounds the returned lifetime; all accesses to it are atomic and 4 bytes wide.
        Ok(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) })
    }
}

/// One core's view of the simulated SRAM4: 64 KiB at firmware address [`SHM_BASE`].
///
/// Cheap to clone (a reference-counted handle); clones and the peer's view see the same bytes.
/// Backed by an in-process allocation ([`SimMemory::new`]) or by a file mapped `MAP_SHARED`
/// (see [`crate::SimPlatform::open_file`]). Offsets are relative to [`SHM_BASE`]; single `u16`
/// and `u32` accesses must be naturally aligned, multi-byte values are little-endian.
#[derive(Clone)]
pub struct SimMemory {
    map: Arc<Mapping>,
    /// The core's halt switch (fault injection), if it has one.
    gate: Option<Arc<Gate>>,
    /// The core's prefetch hints (thread mode; see [`crate::hints`]), if it has them.
    hints: Option<Arc<Tracker>>,
}

/// A core's halt switch: once [`Gate::halt`] has returned, every access through a view with
/// this gate is refused (the core is stopped: it neither reads nor writes shared memory).
///
/// Each core has its own gate, touched by that core's accesses (two uncontended atomic
/// read-modify-writes each) and by the halter only; aligned to 128 bytes so that the two cores'
/// gates (small allocations made one after the other) never share a cache line, which would
/// make every access of one core take the line from the other.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Gate {
    halted: AtomicBool,
    /// Accesses between their check and their end.
    active: AtomicU32,
}

/// An access that passed the gate; leaves it on drop.
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// Enters an access, unless the core is halted.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        self.active.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(self);
        (!self.halted.load(Ordering::SeqCst)).then_some(pass)
    }

    /// Halts the core: returns once no access of it is in progress; none starts afterwards.
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    /// Whether the core is halted.
    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }
}

impl SimMemory {
    /// A zeroed in-process region, to be shared by cloning.
    pub fn new() -> SimMemory {
        SimMemory {
            map: Arc::new(Mapping::heap(SHM_SIZE)),
            gate: None,
            hints: None,
        }
    }

    /// This view with the halt switch `gate` (accesses refused once it is halted).
    pub(crate) fn gated(&self, gate: Arc<Gate>) -> SimMemory {
        SimMemory {
            map: self.map.clone(),
            gate: Some(gate),
            hints: None,
        }
    }

    /// This view with the prefetch hints of `tracker` (see [`crate::hints`]).
    pub(crate) fn with_hints(&self, tracker: Arc<Tracker>) -> SimMemory {
        SimMemory {
            map: self.map.clone(),
            gate: self.gate.clone(),
            hints: Some(tracker),
        }
    }

    /// Notes a write for the hints (if any); whether this core wrote these lines lately (since
    /// its last doorbell; `false` without hints).
    #[inline]
    fn note(&self, offset: usize, len: usize) -> bool {
        match (&self.hints, len > 0) {
            (Some(t), true) => t.note(offset, len),
            _ => false,
        }
    }

    /// Prefetches what the peer has published since the last call (if there are hints).
    pub(crate) fn check_hints(&self) {
        if let Some(t) = &self.hints {
            t.check(&self.map);
        }
    }

    /// Publishes the lines written since the last publication (if there are hints).
    #[inline]
    pub(crate) fn publish_hints(&self) {
        if let Some(t) = &self.hints {
            t.publish();
        }
    }

    /// Passes the gate (if any) for one access; `OutOfBounds` for a halted core.
    fn pass(&self, offset: usize, len: usize) -> Result<Option<Pass<'_>>, OutOfBounds> {
        match &self.gate {
            None => Ok(None),
            Some(g) => g.enter().map(Some).ok_or(OutOfBounds { offset, len }),
        }
    }

    /// Flips the bits of `mask` in the byte at `offset` (fault injection; not a single atomic
    /// read-modify-write as seen by the cores: a racing write by them may be lost, as on a
    /// real bus glitch). `false` past the region.
    pub fn flip(&self, offset: usize, mask: u8) -> bool {
        let mut b = [0u8];
        if offset >= SHM_SIZE || self.map.read(offset, &mut b).is_err() {
            return false;
        }
        self.map.write(offset, &[b[0] ^ mask], true).is_ok()
    }

    /// A view of the first [`SHM_SIZE`] bytes of `map` (which must be at least that long).
    pub(crate) fn from_mapping(map: Arc<Mapping>) -> SimMemory {
        debug_assert!(map.len() >= SHM_SIZE);
        SimMemory {
            map,
            gate: None,
            hints: None,
        }
    }

    /// The firmware address of `offset` (`SHM_BASE + offset`), or `None` past the region.
    pub fn address_of(offset: usize) -> Option<u32> {
        if offset >= SHM_SIZE {
            return None;
        }
        u32::try_from(offset).ok().map(|o| SHM_BASE + o)
    }

    /// A copy of the whole region as it is now (not atomic as a whole: the peer may be
    /// writing while it is taken).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut v = vec![0; SHM_SIZE];
        // Cannot fail: the buffer is exactly the region.
        let _ = self.map.read(0, &mut v);
        v
    }
}

impl Default for SimMemory {
    fn default() -> Self {
        SimMemory::new()
    }
}

impl core::fmt::Debug for SimMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimMemory")
            .field("base", &format_args!("{SHM_BASE:#010x}"))
            .field("size", &SHM_SIZE)
            .finish()
    }
}

impl SharedMemory for SimMemory {
    fn size(&self) -> usize {
        SHM_SIZE
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        region_check(offset, buf.len())?;
        let _pass = self.pass(offset, buf.len())?;
        self.map.read(offset, buf)
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        region_check(offset, data.len())?;
        let _pass = self.pass(offset, data.len())?;
        let recent = self.note(offset, data.len());
        self.map.write(offset, data, recent)
    }

    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
        region_check(offset, 2)?;
        let _pass = self.pass(offset, 2)?;
        Ok(u16::from_le_bytes(self.map.load(offset)?))
    }

    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
        region_check(offset, 2)?;
        let _pass = self.pass(offset, 2)?;
        let recent = self.note(offset, 2);
        self.map.store(offset, value.to_le_bytes(), recent)
    }

    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        region_check(offset, 4)?;
        let _pass = self.pass(offset, 4)?;
        Ok(u32::from_le_bytes(self.map.load(offset)?))
    }

    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        region_check(offset, 4)?;
        let _pass = self.pass(offset, 4)?;
        let recent = self.note(offset, 4);
        self.map.store(offset, value.to_le_bytes(), recent)
    }

    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}

/// Replaces bytes `at..at + part.len()` of `word` (within one word) and keeps the others, with
/// a compare-and-swap loop (another core may write the other bytes meanwhile).
///
/// The first attempt's idea of the other bytes: the word as loaded if this core wrote the line
/// lately (`recent`: the line is likely still in its cache), else zero without loading. A load
/// of a line the peer wrote last would fetch it shared, and the compare-and-swap would then
/// fetch it again for writing (two transfers between the host CPUs); a failed
/// compare-and-swap takes the line for writing at once and returns the word, so the second
/// attempt succeeds unless the peer wrote in between.
fn merge(word: &Word, at: usize, part: &[u8], recent: bool) {
    let mut old = if recent {
        word.load(Ordering::Relaxed)
    } else {
        0
    };
    loop {
        let mut b = old.to_ne_bytes();
        b[at..at + part.len()].copy_from_slice(part);
        match word.compare_exchange_weak(
            old,
            Bits::from_ne_bytes(b),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => old = now,
        }
    }
}

/// Refuses accesses past the 64 KiB region (the mapping may be longer: the process-mode
/// control page follows the region and is not part of it).
fn region_check(offset: usize, len: usize) -> Result<(), OutOfBounds> {
    match offset.checked_add(len) {
        Some(end) if end <= SHM_SIZE => Ok(()),
        _ => Err(OutOfBounds { offset, len }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bulk copies at every alignment and length up to a few words land exactly where asked
    /// (checked against single-byte reads) and read back the same.
    #[test]
    fn bulk_copies_at_every_alignment_and_length() {
        let m = SimMemory::new();
        for offset in 0..17 {
            for len in 0..41 {
                let base = 0x100 * (1 + len) + offset;
                let data: Vec<u8> = (0..len).map(|i| (base + i) as u8 | 1).collect();
                m.write(base, &[0; 64]).unwrap();
                m.write(base + 8, &data).unwrap();
                let mut back = vec![0; len];
                m.read(base + 8, &mut back).unwrap();
                assert_eq!(back, data, "offset {offset} len {len}");
                let snap = m.snapshot();
                assert!(snap[base..base + 8].iter().all(|&b| b == 0));
                assert_eq!(&snap[base + 8..base + 8 + len], &data[..]);
                assert!(snap[base + 8 + len..base + 64].iter().all(|&b| b == 0));
            }
        }
        assert!(m.write(SHM_SIZE - 3, &[1; 4]).is_err());
        assert!(m.read(SHM_SIZE - 3, &mut [0; 4]).is_err());
    }

    /// `u16` and `u32` stores at every aligned offset of a few words change exactly their
    /// bytes, little-endian, and read back; misaligned ones are refused.
    #[test]
    fn single_values_touch_only_their_bytes() {
        let m = SimMemory::new();
        let fill: Vec<u8> = (0..32u8).map(|i| 0xA0 ^ i).collect();
        for at in (0..16).step_by(2) {
            m.write(0x200, &fill).unwrap();
            m.write_u16(0x200 + at, 0x1234).unwrap();
            let mut want = fill.clone();
            want[at..at + 2].copy_from_slice(&[0x34, 0x12]);
            assert_eq!(&m.snapshot()[0x200..0x220], &want[..], "u16 at {at}");
            assert_eq!(m.read_u16(0x200 + at).unwrap(), 0x1234);
            if at % 4 == 0 {
                m.write(0x200, &fill).unwrap();
                m.write_u32(0x200 + at, 0x89AB_CDEF).unwrap();
                let mut want = fill.clone();
                want[at..at + 4].copy_from_slice(&[0xEF, 0xCD, 0xAB, 0x89]);
                assert_eq!(&m.snapshot()[0x200..0x220], &want[..], "u32 at {at}");
                assert_eq!(m.read_u32(0x200 + at).unwrap(), 0x89AB_CDEF);
            }
        }
        assert!(m.write_u32(0x202, 1).is_err());
        assert!(m.write_u16(0x201, 1).is_err());
        assert!(m.read_u32(0x206).is_err());
    }
}
