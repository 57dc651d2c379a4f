//! [`Serial`]: the byte stream on the `"raw"` endpoint (Arduino's `RPC.print`/`RPC.read`), or
//! SerialRPC's `"tty"` notifications.
//!
//! # Sending
//! Writes are collected in a buffer of one transport payload (496 bytes) and sent as one
//! message when it is full, on [`flush`](embedded_io::Write::flush), and at the next
//! [`Rpc::poll`](crate::Rpc::poll) (never one message per byte as Arduino's `print` does).
//! A write that completes a payload sends the buffered bytes and its own straight into the
//! shared buffer (one copy each, no joining first). Without a free transport buffer the bytes
//! are buffered; the next write or flush polls the engine and retries until the serial
//! timeout, then reports `TimedOut`; the bytes stay buffered, nothing is dropped.
//!
//! # Receiving: copies
//! A `read` with an empty receive ring copies the raw payload at the head of the transport's
//! queue straight from shared memory into the caller's buffer (what does not fit goes to the
//! ring). [`available`](Serial::available) with an empty ring counts such a payload but leaves
//! it in place for that read; any other engine step (also the one a waiting `read` takes to
//! serve RPC) moves raw payloads into the ring, as below.
//!
//! # Receiving, and the trade-off with RPC traffic
//! `"raw"` and `"rpc"` payloads arrive through one transport queue, in order, and the engine
//! cannot skip a raw payload to reach a later RPC message. Received bytes go to a ring of
//! `SERIAL` bytes. With [`SerialOverflow::Backpressure`] (the default) the engine stops pulling
//! from the transport while the ring has less room than one payload: no byte is lost, the
//! peer's sends wait for buffers, but RPC messages queued behind unread serial data also wait
//! (calls then time out rather than hang). An application that does not read the stream should
//! choose [`SerialOverflow::Drop`]: the engine always pulls, and raw bytes that do not fit are
//! dropped and counted in [`Stats::serial_dropped`](crate::Stats::serial_dropped), so RPC traffic
//! never waits for the reader.

use core::time::Duration;

use duet_rpmsg::{Endpoint, PayloadRead, Platform, Transport};

use crate::engine::{Got, MAX_PAYLOAD};
use crate::{Error, Rpc};

/// What the receive side does when the serial ring is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SerialOverflow {
    /// Stop pulling from the transport until the reader makes room (lossless; RPC messages
    /// behind the serial data wait too).
    #[default]
    Backpressure,
    /// Keep pulling; drop raw bytes that do not fit (RPC traffic is never held up).
    Drop,
}

/// Bytes of `[2, "tty", [bin]]` around the data of one `"tty"` notification (bin16 header).
pub(crate) const TTY_OVERHEAD: usize = 1 + 1 + 4 + 1 + 3;

/// Bytes on a word boundary, so that block copies in and out of them (shared-memory copies
/// use `LDM`/`STM` on the chip when both sides are aligned) take the word-wise paths.
#[repr(C, align(4))]
pub(crate) struct Aligned<const N: usize>(pub(crate) [u8; N]);

impl<const N: usize> core::ops::Deref for Aligned<N> {
    type Target = [u8; N];
    fn deref(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> core::ops::DerefMut for Aligned<N> {
    fn deref_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

/// Copies `src` into `dst` (the shorter length). When both start on a word boundary: 32-byte
/// blocks (one eight-register `LDM`/`STM` pair on the chip, where `memcpy` loops over words),
/// then words; then the last bytes. The staging copies of the byte stream go through here.
#[inline(never)]
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let mut i = 0;
    if (dst.as_ptr() as usize | src.as_ptr() as usize) & 3 == 0 {
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        // SAFETY: both ranges hold `n` bytes and are 4-aligned (checked); `&mut` and `&` do
        // not overlap.
        i = unsafe { blocks(d, s, n) };
        while n - i >= 4 {
            // SAFETY: `i + 4 <= n` and `i` is a multiple of 4, so both words lie inside their
            // slices, 4-aligned.
            unsafe { d.add(i).cast::<u32>().write(s.add(i).cast::<u32>().read()) };
            i += 4;
        }
    }
    if i < n {
        dst[i..n].copy_from_slice(&src[i..n]);
    }
}

/// Copies the whole 32-byte blocks of `n` bytes from `src` to `dst` with `LDM`/`STM`; returns
/// how many bytes.
///
/// # Safety
/// `src..src + n` must be readable and `dst..dst + n` writable, both 4-aligned, not
/// overlapping.
#[cfg(all(target_arch = "arm", target_os = "none"))]
#[inline(always)]
unsafe fn blocks(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let k = n / 32;
    if k == 0 {
        return 0;
    }
    // SAFETY: both ranges are valid and 4-aligned for `32 * k <= n` bytes (the caller); the
    // loop runs `k >= 1` times and clobbers only the named registers.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldm {s}!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "stm {d}!, {{r3, r4, r5, r8, r9, r10, r11, r12}}",
            "subs {k}, {k}, #1",
            "bne 2b",
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            k = inout(reg) k => _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(nostack),
        );
    }
    k * 32
}

/// Elsewhere (host builds): the same blocks with the platform's `memcpy` (faster there than a
/// word loop).
///
/// # Safety
/// As for the chip's version.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
#[inline(always)]
unsafe fn blocks(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let len = n & !31;
    // SAFETY: both ranges are valid for `len <= n` bytes and do not overlap (the caller).
    unsafe { core::ptr::copy_nonoverlapping(src, dst, len) };
    len
}

/// A byte ring.
pub(crate) struct Ring<const N: usize> {
    buf: Aligned<N>,
    head: usize,
    len: usize,
}

impl<const N: usize> Ring<N> {
    const fn new() -> Self {
        Ring {
            buf: Aligned([0; N]),
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn free(&self) -> usize {
        N - self.len
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends as much of `data` as fits; returns how much. Two block copies (before and
    /// after the wrap), not a loop over bytes.
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        // `head < N` and `len < N` here (free() > 0), so `at < N`.
        let at = (self.head + self.len) % N;
        let first = n.min(N - at);
        copy(&mut self.buf[at..at + first], &data[..first]);
        if n > first {
            copy(&mut self.buf[..n - first], &data[first..n]);
        }
        self.len += n;
        n
    }

    /// Appends as much of `p` from byte `skip` on as fits, copied straight from where the
    /// payload lies (at most two reads); returns how much. A refused read keeps nothing.
    pub(crate) fn push_from(&mut self, p: &dyn PayloadRead, skip: usize) -> usize {
        let n = p.len().saturating_sub(skip).min(self.free());
        if n == 0 {
            return 0;
        }
        let at = (self.head + self.len) % N;
        let first = n.min(N - at);
        let ok = p.read(skip, &mut self.buf[at..at + first]).is_ok()
            && (n == first || p.read(skip + first, &mut self.buf[..n - first]).is_ok());
        if !ok {
            return 0;
        }
        self.len += n;
        n
    }

    /// Removes up to `out.len()` bytes into `out`; returns how many (two block copies). An
    /// emptied ring starts over at the front, so that the next payload lands in one piece.
    pub(crate) fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        if n == 0 {
            return 0;
        }
        let first = n.min(N - self.head);
        copy(&mut out[..first], &self.buf[self.head..self.head + first]);
        if n > first {
            copy(&mut out[first..n], &self.buf[..n - first]);
        }
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % N
        };
        n
    }
}

/// The serial stream's state, kept in the engine between [`Serial`] handles.
pub(crate) struct SerialState<const N: usize> {
    pub(crate) ring: Ring<N>,
    pub(crate) tx: Aligned<MAX_PAYLOAD>,
    pub(crate) tx_len: usize,
    pub(crate) tty: bool,
    pub(crate) overflow: SerialOverflow,
    pub(crate) timeout: Duration,
    /// Set while [`Serial::available`] polls: a raw payload met with the ring empty is left
    /// in shared memory, to be copied once, straight into the reader's buffer.
    pub(crate) offer: bool,
    /// The length of the raw payload so left by [`Serial::available`] (0: none, or taken
    /// since).
    pub(crate) pending: usize,
}

impl<const N: usize> SerialState<N> {
    pub(crate) const fn new() -> Self {
        SerialState {
            ring: Ring::new(),
            tx: Aligned([0; MAX_PAYLOAD]),
            tx_len: 0,
            tty: false,
            overflow: SerialOverflow::Backpressure,
            timeout: crate::engine::DEFAULT_TIMEOUT,
            offer: false,
            pending: 0,
        }
    }

    /// What the receive loop does with the raw payload `p`: leaves it for the reader (see
    /// `offer`), or copies it into the ring (with [`SerialOverflow::Drop`], what does not fit
    /// is dropped).
    pub(crate) fn take(&mut self, p: &dyn PayloadRead) -> (bool, Got) {
        if self.offer && self.ring.len() == 0 && self.overflow == SerialOverflow::Backpressure {
            self.pending = p.len();
            return (false, Got::Stop);
        }
        (true, Got::Raw(p.len(), self.ring.push_from(p, 0)))
    }

    /// Whether a payload of `ppb` bytes may be pulled from the transport now.
    pub(crate) fn can_accept(&self, ppb: usize) -> bool {
        self.overflow == SerialOverflow::Drop || self.ring.free() >= ppb
    }
}

/// Why a serial read or write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialError {
    /// No byte arrived (read) or no transport buffer became free (write/flush) before the
    /// serial timeout. Written bytes stay buffered.
    Timeout,
    /// The endpoint is not bound with the peer yet.
    NotReady,
    /// Another engine or transport error.
    Rpc(Error),
}

impl core::fmt::Display for SerialError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SerialError::Timeout => f.write_str("serial timeout"),
            SerialError::NotReady => f.write_str("serial endpoint not ready"),
            SerialError::Rpc(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for SerialError {}

impl embedded_io::Error for SerialError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            SerialError::Timeout => embedded_io::ErrorKind::TimedOut,
            SerialError::NotReady => embedded_io::ErrorKind::NotConnected,
            SerialError::Rpc(_) => embedded_io::ErrorKind::Other,
        }
    }
}

impl From<Error> for SerialError {
    fn from(e: Error) -> Self {
        match e {
            Error::Timeout => SerialError::Timeout,
            Error::NotReady => SerialError::NotReady,
            e => SerialError::Rpc(e),
        }
    }
}

/// The byte stream, borrowed from an [`Rpc`] (get it with [`Rpc::serial`]). Implements
/// `embedded_io::{Read, Write, ReadReady, WriteReady}` and `core::fmt::Write`. See the module
/// docs for buffering and backpressure.
pub struct Serial<
    'r,
    'a,
    T: Transport,
    const HANDLERS: usize,
    const CALLS: usize,
    const BUF: usize,
    const REPLY: usize,
    const SERIAL: usize,
> {
    rpc: &'r mut Rpc<'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>,
}

impl<
        'r,
        'a,
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > Serial<'r, 'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    pub(crate) fn new(rpc: &'r mut Rpc<'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>) -> Self {
        Serial { rpc }
    }

    /// `true`: send as SerialRPC `[2,"tty",[bin]]` notifications on `"rpc"` and accept incoming
    /// `"tty"` notifications into the receive ring. `false` (default): raw bytes on `"raw"`.
    ///
    /// Bytes still buffered are sent in the new mode, in order; a raw buffer fuller than one
    /// notification holds (486 bytes of data with 496-byte payloads) goes out as two.
    pub fn set_tty(&mut self, tty: bool) {
        self.rpc.engine.serial.tty = tty;
    }

    /// Chooses the receive overflow policy (see [`SerialOverflow`]).
    pub fn set_overflow(&mut self, overflow: SerialOverflow) {
        self.rpc.engine.serial.overflow = overflow;
    }

    /// Sets how long a read waits for data and a write/flush waits for a free buffer
    /// (default 1 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.rpc.engine.serial.timeout = timeout;
    }

    /// Bytes ready to read without waiting (Arduino's `available()`), after one engine step.
    /// With the receive ring empty, a raw payload that came in is counted but left in shared
    /// memory, so that the next `read` copies it only once; a later engine step that is not
    /// the reader's moves it to the ring as usual.
    pub fn available(&mut self) -> usize {
        let e = &mut self.rpc.engine;
        // A payload offered by the last call and still unread is not offered again: it goes to
        // the ring like the ones behind it, so a caller waiting for more bytes than one payload
        // holds sees them arrive.
        e.serial.offer = e.serial.pending == 0;
        e.serial.pending = 0;
        let _ = self.rpc.poll();
        let s = &mut self.rpc.engine.serial;
        s.offer = false;
        s.ring.len() + s.pending
    }

    /// With the ring empty, a raw payload at the head of the queue straight into `buf`.
    fn read_direct(&mut self, buf: &mut [u8]) -> Result<Option<usize>, SerialError> {
        Ok(self.rpc.serial_read_direct(buf)?)
    }

    /// Bytes of the current message that are waiting in the transmit buffer.
    pub fn pending_tx(&self) -> usize {
        self.rpc.engine.serial.tx_len
    }

    fn chunk(&self) -> usize {
        let e = &self.rpc.engine;
        let ppb = e.ppb().min(MAX_PAYLOAD);
        if e.serial.tty {
            ppb.saturating_sub(TTY_OVERHEAD).max(1)
        } else {
            ppb
        }
    }

    fn ready(&self) -> bool {
        let ep = if self.rpc.engine.serial.tty {
            Endpoint::Rpc
        } else {
            Endpoint::Raw
        };
        self.rpc.engine.transport.is_ready(ep)
    }

    fn flush_buffer(&mut self) -> Result<(), SerialError> {
        if self.rpc.engine.serial.tx_len == 0 {
            return Ok(());
        }
        if !self.ready() {
            return Err(SerialError::NotReady);
        }
        let deadline = self
            .rpc
            .engine
            .now()
            .saturating_add(self.rpc.engine.serial.timeout);
        loop {
            if self.rpc.engine.serial_send_once()? {
                return Ok(());
            }
            let now = self.rpc.engine.now();
            if now >= deadline {
                return Err(SerialError::Timeout);
            }
            // Serve the peer meanwhile, so two writers cannot block each other.
            let _ = self.rpc.context().poll();
            let rung = self.rpc.engine.transport.platform().wait(core::cmp::min(
                deadline,
                now.saturating_add(crate::engine::SEND_RETRY),
            ));
            self.rpc.engine.count_wake(rung);
        }
    }
}

impl<
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > embedded_io::ErrorType for Serial<'_, '_, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    type Error = SerialError;
}

impl<
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > embedded_io::Read for Serial<'_, '_, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    /// Waits (serving RPC) until at least one byte is there, up to the serial timeout.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // The clock is read only once there is nothing to take: the timeout runs from then.
        let mut deadline = None;
        loop {
            let n = self.rpc.engine.serial.ring.pop(buf);
            if n > 0 {
                return Ok(n);
            }
            if let Some(n) = self.read_direct(buf)? {
                return Ok(n);
            }
            // An ordinary engine step: a raw payload it meets goes to the ring (copying it
            // again, in blocks, costs less than finding it in the transport a second time).
            let _ = self.rpc.poll();
            let n = self.rpc.engine.serial.ring.pop(buf);
            if n > 0 {
                return Ok(n);
            }
            let e = &mut self.rpc.engine;
            let now = e.now();
            let end = *deadline.get_or_insert(now.saturating_add(e.serial.timeout));
            if now >= end {
                return Err(SerialError::Timeout);
            }
            e.wait_from(now, end);
        }
    }
}

impl<
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > embedded_io::ReadReady for Serial<'_, '_, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    fn read_ready(&mut self) -> Result<bool, SerialError> {
        Ok(self.available() > 0)
    }
}

impl<
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > embedded_io::Write for Serial<'_, '_, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    /// Buffers as much of `buf` as fits in the current message; sends the message when it is
    /// full (waiting for a transport buffer up to the serial timeout).
    fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let cap = self.chunk();
        if self.rpc.engine.serial.tx_len >= cap {
            self.flush_buffer()?;
        }
        let e = &mut self.rpc.engine;
        let room = cap - e.serial.tx_len.min(cap);
        let n = buf.len().min(room);
        let whole = n == room;
        if whole && !e.serial.tty && e.serial_send_with(&buf[..n]) {
            // A whole buffer's worth: the buffered bytes and the start of `buf` went straight
            // into the shared buffer, one copy each.
            return Ok(n);
        }
        let s = &mut e.serial;
        copy(&mut s.tx[s.tx_len..s.tx_len + n], &buf[..n]);
        s.tx_len += n;
        if whole && s.tty {
            // Best effort now; a failure leaves the bytes buffered for the next write/flush.
            let _ = e.serial_send_once();
        }
        // (In raw mode a full buffer found no free transport buffer just now: the next write
        // or flush waits for one.)
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), SerialError> {
        self.flush_buffer()
    }
}

impl<
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > embedded_io::WriteReady for Serial<'_, '_, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    fn write_ready(&mut self) -> Result<bool, SerialError> {
        if self.rpc.engine.serial.tx_len >= self.chunk() {
            let _ = self.rpc.engine.serial_send_once();
        }
        Ok(self.rpc.engine.serial.tx_len < self.chunk())
    }
}

impl<
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > core::fmt::Write for Serial<'_, '_, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    /// Buffers the text (sending full messages as needed); call `flush` or `Rpc::poll` to send
    /// the rest.
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        embedded_io::Write::write_all(self, s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::{copy, Aligned, Ring};

    /// Every start offset of both sides (aligned and not) and lengths across the block and
    /// word boundaries: the bytes copied are exactly `src`'s, nothing around them changes.
    #[test]
    fn copy_moves_exactly_the_bytes_at_any_alignment() {
        let src: Aligned<160> = Aligned(core::array::from_fn(|i| i as u8));
        for so in 0..4 {
            for d_off in 0..4 {
                for n in 0..=100 {
                    let mut dst = Aligned([0xEEu8; 160]);
                    copy(&mut dst[d_off..d_off + n], &src[so..so + n]);
                    assert_eq!(&dst[d_off..d_off + n], &src[so..so + n]);
                    assert!(dst[..d_off].iter().all(|&b| b == 0xEE));
                    assert!(dst[d_off + n..].iter().all(|&b| b == 0xEE));
                }
            }
        }
    }

    /// Pushes and pops chunks of every size 1..=9 through an 8-byte ring, so every wrap
    /// position is crossed; the bytes come out in order and the counts are right.
    #[test]
    fn ring_keeps_order_across_the_wrap() {
        let mut r = Ring::<8>::new();
        let (mut next_in, mut next_out) = (0u8, 0u8);
        for size in 1..=9usize {
            for _ in 0..5 {
                let data: [u8; 9] = core::array::from_fn(|i| next_in.wrapping_add(i as u8));
                let free = r.free();
                let n = r.push(&data[..size]);
                assert_eq!(n, size.min(free));
                next_in = next_in.wrapping_add(n as u8);
                let mut out = [0u8; 9];
                let m = r.pop(&mut out[..size.min(5)]);
                assert_eq!(m, size.min(5).min(r.len() + m));
                for b in &out[..m] {
                    assert_eq!(*b, next_out);
                    next_out = next_out.wrapping_add(1);
                }
            }
        }
        let mut out = [0u8; 8];
        let m = r.pop(&mut out);
        assert_eq!(r.len(), 0);
        for b in &out[..m] {
            assert_eq!(*b, next_out);
            next_out = next_out.wrapping_add(1);
        }
        assert_eq!(next_out, next_in);
        assert_eq!(r.push(&[]), 0);
        assert_eq!(r.pop(&mut []), 0);
    }
}
