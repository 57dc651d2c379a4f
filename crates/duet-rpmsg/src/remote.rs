//! The remote role: the virtio device (the M4 in the Arduino profile).

use core::cell::Cell;

use crate::common::{
    check_header, corrupt, fill_chunks, finish, io, pending, publish, send_until, Fault, Payload,
    Stats, Writer,
};
use crate::config::{layout as l, Config, Geometry};
use crate::host::copy_out;
use crate::platform::{Instant, OutOfBounds, Platform, SharedMemory};
use crate::transport::{Corruption as C, Endpoint, Error, Received, Transport};

/// A transmit buffer the host posted on vring0, validated and not yet used.
#[derive(Clone, Copy, Default)]
struct TxSlot {
    head: u16,
    buf: u32,
}

/// The remote side (virtio device, the M4): waits for the host's table, announces `"raw"`
/// (0x400) and `"rpc"` (0x401), learns the host's addresses from the first message on each.
///
/// [`Remote::new`] touches nothing; [`Transport::poll`] (or [`connect`](crate::connect)) does
/// the handshake once the table's vring1 `da` matches the config and `DRIVER_OK` is set.
///
/// Reset: if `DRIVER_OK` drops or vring1's `da` changes while running, the next call returns
/// `PeerReset` and the handshake starts over. Limit: a host re-initialisation that completes
/// entirely between two of this side's polls is not seen as a reset; it then shows up as
/// `Corrupt` ring errors.
pub struct Remote<P: Platform> {
    platform: P,
    /// The validated config (`ok == false` if it was invalid).
    geo: Geometry,
    running: bool,
    /// Endpoints announced so far (in order raw, rpc).
    announced: u8,
    /// The host's address per endpoint; `ADDR_ANY` until the first message.
    dest: [u32; 2],
    /// Per ring (0: the host's transmit buffers, 1: the host's messages): next avail entry.
    last_avail: [u16; 2],
    /// Per ring: next used index to fill.
    used: [u16; 2],
    /// Validated transmit buffers, in the order the host posted them (a ring of 64).
    stash: [TxSlot; 64],
    stash_head: u16,
    stash_len: u16,
    /// Per descriptor of vring0: in the stash.
    held: [bool; 64],
    stats: Stats,
    /// The last refused shared-memory access (for `Error::Memory`).
    oob: Cell<Option<OutOfBounds>>,
}

impl<P: Platform> Remote<P> {
    /// A remote that has not looked at shared memory yet. An invalid `config` makes every
    /// later call fail with `InvalidConfig`.
    pub fn new(platform: P, config: Config) -> Self {
        Remote {
            platform,
            geo: config.geometry().unwrap_or(Geometry {
                payload: config.payload_per_buffer(),
                max_msg: config.max_message_len,
                ..Geometry::default()
            }),
            running: false,
            announced: 0,
            dest: [l::ADDR_ANY; 2],
            last_avail: [0; 2],
            used: [0; 2],
            stash: [TxSlot::default(); 64],
            stash_head: 0,
            stash_len: 0,
            held: [false; 64],
            stats: Stats::default(),
            oob: Cell::new(None),
        }
    }

    /// Counters of this side.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether the host's table was found and the rings are in use.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Transmit buffers the host has posted and this side has not used (64 when all are back).
    pub fn free_tx_buffers(&mut self) -> Result<usize, Error> {
        if self.running {
            let r = self.refill();
            self.done(r, 0)?;
        }
        Ok(self.stash_len as usize)
    }

    /// The host's address for `endpoint`, once learned from its first message.
    pub fn remote_address(&self, endpoint: Endpoint) -> Option<u32> {
        self.dest
            .get(endpoint as usize)
            .copied()
            .filter(|&a| a != l::ADDR_ANY)
    }

    /// Zero-copy receive: calls `f` with the next payload while it is still in its shared
    /// buffer, then returns the buffer to the host. `Ok(None)` when nothing is pending.
    pub fn recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, Payload<'_, P::Memory>) -> R,
    ) -> Result<Option<R>, Error> {
        let mut f = Some(f);
        let mut out = None;
        let r = self.recv_inner(&mut |ep, p| {
            if let Some(f) = f.take() {
                out = Some(f(ep, p));
            }
            true
        });
        self.done(r, 0)?;
        Ok(out)
    }

    /// Sends a message of `len` bytes that `f` writes straight into the shared buffers (the
    /// only copy). Same rules and errors as `try_send`; bytes `f` leaves unwritten are stale.
    pub fn send_with(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        f: impl FnOnce(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Error> {
        let mut f = Some(f);
        let r = self.send_data(endpoint, len, &mut |w| {
            if let Some(f) = f.take() {
                f(w)
            }
        });
        self.done(r, len)
    }

    /// The public result of an operation (`len`: the length of the message being sent, if any).
    fn done<T>(&self, r: Result<T, Fault>, len: usize) -> Result<T, Error> {
        finish(&self.oob, r, len, self.geo.max_msg)
    }

    fn forget(&mut self) {
        self.running = false;
        self.announced = 0;
        self.dest = [l::ADDR_ANY; 2];
        self.last_avail = [0; 2];
        self.used = [0; 2];
        self.stash_head = 0;
        self.stash_len = 0;
        self.held = [false; 64];
    }

    /// Looks at the resource table: starts when it is ready, reports `PeerReset` when it went
    /// away. `Ok(true)` while running.
    fn check_host(&mut self) -> Result<bool, Fault> {
        let g = &self.geo;
        if !g.ok {
            return Err(Fault::InvalidConfig);
        }
        let m = io!(self);
        let da = m.read_u32(g.rsc + l::VRING1_DA);
        // The status byte is the low byte of its (4-aligned) little-endian word.
        let status = m.read_u32(g.rsc + l::VDEV_STATUS);
        let ok = da == g.v1_addr && status & l::DRIVER_OK as u32 != 0;
        if self.running {
            if !ok {
                self.forget();
                self.stats.peer_resets = self.stats.peer_resets.wrapping_add(1);
                return Err(Fault::PeerReset);
            }
            return Ok(true);
        }
        if !ok {
            return Ok(false);
        }
        m.fence();
        let v0 = g.rsc + l::VRING0_INFO;
        if m.read_u32(v0 + l::VRING_INFO_DA) != g.v0_addr
            || m.read_u32(v0 + l::VRING_INFO_NUM) != g.num as u32
            || m.read_u32(g.rsc + l::VRING1_INFO + l::VRING_INFO_NUM) != g.num as u32
        {
            return Err(corrupt(&mut self.stats, C::ResourceTable));
        }
        m.write_u16(g.used(0) + l::USED_FLAGS, l::VRING_USED_F_NO_NOTIFY);
        self.running = true;
        Ok(true)
    }

    /// Announces the endpoints not announced yet, in order; stops quietly on `NoBuffer`.
    fn announce(&mut self) -> Result<(), Fault> {
        while let Some(&ep) = Endpoint::ALL.get(self.announced as usize) {
            let addr = l::EPT_ADDR_FIRST + ep as u32;
            let mut rec = [0u8; l::NS_RECORD_SIZE];
            rec[..3].copy_from_slice(ep.name().as_bytes());
            rec[l::NS_REC_ADDR..l::NS_REC_ADDR + 4].copy_from_slice(&addr.to_le_bytes());
            match self.send_inner(addr, l::NS_ADDR, rec.len(), &mut |w| {
                let _ = w.write(0, &rec);
            }) {
                Ok(()) => self.announced += 1,
                Err(Fault::NoBuffer) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next avail entry of ring `r` (not consumed); an index outside the table is skipped
    /// and reported.
    fn peek_avail(&mut self, r: usize) -> Result<Option<u16>, Fault> {
        let g = &self.geo;
        let m = io!(self);
        let last = &mut self.last_avail[r & 1];
        if !pending(m, g, g.avail(r) + l::AVAIL_IDX, *last, &mut self.stats)? {
            return Ok(None);
        }
        let head = m.read_u16(g.avail_slot(r, *last));
        if head >= g.num {
            *last = last.wrapping_add(1);
            return Err(corrupt(&mut self.stats, C::DescriptorIndex));
        }
        Ok(Some(head))
    }

    /// Consumes the peeked avail entry of ring `r`.
    fn consume(&mut self, r: usize) {
        let last = &mut self.last_avail[r & 1];
        *last = last.wrapping_add(1);
    }

    /// Reads and checks descriptor `head` of ring `r`: the buffer inside the pool, `min <=
    /// len <= buffer size`, exactly `flags`. `(buffer offset, len)`.
    fn read_desc(
        &mut self,
        r: usize,
        head: u16,
        flags: u16,
        min: usize,
    ) -> Result<(usize, usize), Fault> {
        let g = &self.geo;
        let m = io!(self);
        let d = g.desc(r, head);
        let lo = m.read_u32(d + l::DESC_ADDR);
        let hi = m.read_u32(d + l::DESC_ADDR + 4);
        let len = m.read_u32(d + l::DESC_LEN) as usize;
        let f = m.read_u16(d + l::DESC_FLAGS);
        let c = match g.buffer_at(lo, hi) {
            None => C::DescriptorAddress,
            Some(_) if len > g.buf || len < min => C::DescriptorLength,
            Some(_) if f != flags => C::DescriptorFlags,
            Some(buf) => return Ok((buf, len)),
        };
        Err(corrupt(&mut self.stats, c))
    }

    /// Puts descriptor `head` on ring `r`'s used ring with `used.len` = the buffer size (the
    /// caller publishes).
    fn give(&mut self, r: usize, head: u16) {
        let g = &self.geo;
        let m = io!(self);
        let u = &mut self.used[r & 1];
        let e = g.used_slot(r, *u);
        m.write_u32(e, head as u32);
        m.write_u32(e + 4, g.buf as u32);
        *u = u.wrapping_add(1);
    }

    /// Publishes ring `r`'s used index.
    fn publish_used(&self, r: usize) {
        let g = &self.geo;
        publish(io!(self), g.used(r) + l::USED_IDX, self.used[r & 1])
    }

    /// Moves the host's newly posted transmit buffers (vring0 avail) into the stash, checking
    /// each; a bad entry is dropped and reported.
    fn refill(&mut self) -> Result<(), Fault> {
        while let Some(head) = self.peek_avail(0)? {
            self.consume(0);
            if self.held.get(head as usize).is_some_and(|&h| h) {
                return Err(corrupt(&mut self.stats, C::DescriptorState));
            }
            let (buf, _) = self.read_desc(0, head, l::VRING_DESC_F_WRITE, self.geo.buf)?;
            let at = (self.stash_head.wrapping_add(self.stash_len) & 63) as usize;
            if let Some(s) = self.stash.get_mut(at) {
                *s = TxSlot {
                    head,
                    buf: buf as u32,
                };
            }
            self.stash_len += 1;
            if let Some(h) = self.held.get_mut(head as usize) {
                *h = true;
            }
        }
        Ok(())
    }

    fn send_data(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        fill: &mut dyn FnMut(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Fault> {
        if !self.geo.ok {
            return Err(Fault::InvalidConfig);
        }
        let max = self.geo.max_msg;
        if len > max {
            return Err(Fault::TooLarge);
        }
        let dest = self.remote_address(endpoint).ok_or(Fault::NotReady)?;
        if !self.check_host()? {
            return Err(Fault::NotReady);
        }
        self.send_inner(l::EPT_ADDR_FIRST + endpoint as u32, dest, len, fill)
    }

    fn send_inner(
        &mut self,
        src: u32,
        dst: u32,
        len: usize,
        fill: &mut dyn FnMut(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Fault> {
        let k = self.geo.chunks(len);
        self.refill()?;
        let mut bufs = [0u32; 64];
        let Some(bufs) = bufs.get_mut(..k).filter(|_| k <= self.stash_len as usize) else {
            self.stats.no_buffer = self.stats.no_buffer.wrapping_add(1);
            return Err(Fault::NoBuffer);
        };
        for (j, b) in bufs.iter_mut().enumerate() {
            *b = self.slot(j).buf;
        }
        let m = io!(self);
        fill_chunks(m, bufs, src, dst, len, self.geo.payload, fill);
        for j in 0..k {
            let head = self.slot(j).head;
            self.give(0, head);
            if let Some(h) = self.held.get_mut(head as usize) {
                *h = false;
            }
        }
        self.publish_used(0);
        self.platform.memory().fence();
        self.platform.notify();
        self.stash_head = self.stash_head.wrapping_add(k as u16) & 63;
        self.stash_len -= k as u16;
        let s = &mut self.stats;
        s.messages_sent = s.messages_sent.wrapping_add(1);
        s.buffers_sent = s.buffers_sent.wrapping_add(k as u32);
        Ok(())
    }

    /// Stash entry `j` from the head.
    fn slot(&self, j: usize) -> TxSlot {
        let at = (self.stash_head as usize).wrapping_add(j) & 63;
        self.stash.get(at).copied().unwrap_or_default()
    }

    /// Checks a host-to-remote descriptor and its header; `Some((endpoint, payload offset,
    /// length))` for data, `None` for the first message of an endpoint (consumed here).
    fn classify(&mut self, head: u16) -> Result<Option<(Endpoint, usize, usize)>, Fault> {
        let (buf, len) = self.read_desc(1, head, 0, l::HDR_SIZE)?;
        let m = io!(self);
        let h = check_header(m, &self.geo, buf, len, &mut self.stats)?;
        let i = h.dst.wrapping_sub(l::EPT_ADDR_FIRST) as usize;
        let (Some(&ep), true) = (Endpoint::ALL.get(i), i < self.announced as usize) else {
            return Err(corrupt(&mut self.stats, C::HeaderAddress));
        };
        let Some(dest) = self.dest.get_mut(i) else {
            return Err(Fault::NotReady);
        };
        if *dest == l::ADDR_ANY && h.src != l::ADDR_ANY {
            *dest = h.src;
            self.stats.control_received = self.stats.control_received.wrapping_add(1);
            return Ok(None);
        }
        if h.src != *dest {
            return Err(corrupt(&mut self.stats, C::HeaderAddress));
        }
        Ok(Some((ep, buf + l::HDR_SIZE, h.len)))
    }

    /// Consumes avail entry `head` of vring1 and returns it on the used ring (silently: the
    /// host asked for no interrupts on vring1).
    fn release_rx(&mut self, head: u16) {
        self.consume(1);
        self.give(1, head);
        self.publish_used(1);
    }

    fn recv_inner(
        &mut self,
        f: &mut dyn FnMut(Endpoint, Payload<'_, P::Memory>) -> bool,
    ) -> Result<bool, Fault> {
        if !self.check_host()? {
            return Ok(false);
        }
        while let Some(head) = self.peek_avail(1)? {
            match self.classify(head) {
                Ok(Some((ep, offset, len))) => {
                    let p = Payload {
                        mem: self.platform.memory(),
                        offset,
                        len,
                    };
                    if !f(ep, p) {
                        return Ok(false);
                    }
                    self.stats.buffers_received = self.stats.buffers_received.wrapping_add(1);
                    self.release_rx(head);
                    return Ok(true);
                }
                Ok(None) => self.release_rx(head),
                Err(e) => {
                    self.release_rx(head);
                    return Err(e);
                }
            }
        }
        Ok(false)
    }
}

impl<P: Platform> Transport for Remote<P> {
    type Platform = P;

    fn platform(&self) -> &P {
        &self.platform
    }

    fn poll(&mut self) -> Result<(), Error> {
        let r = self.check_host();
        let r = r.and_then(|up| if up { self.announce() } else { Ok(()) });
        let r = r.and_then(|_| self.recv_inner(&mut |_, _| false));
        self.done(r.map(|_| ()), 0)
    }

    fn is_ready(&self, endpoint: Endpoint) -> bool {
        self.running && self.remote_address(endpoint).is_some()
    }

    fn max_message_len(&self) -> usize {
        self.geo.max_msg
    }

    fn payload_per_buffer(&self) -> usize {
        self.geo.payload
    }

    fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error> {
        let r = self.send_data(endpoint, data.len(), &mut |w| {
            let _ = w.write(0, data);
        });
        self.done(r, data.len())
    }

    fn send(&mut self, endpoint: Endpoint, data: &[u8], deadline: Instant) -> Result<(), Error> {
        send_until(self, endpoint, data, deadline)
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error> {
        let mut out = Ok(None);
        let r = self.recv_inner(&mut |ep, p| copy_out(ep, &p, buf, &mut out));
        self.done(r, 0)?;
        out
    }
}
