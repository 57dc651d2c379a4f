//! The host role: the virtio driver (the M7 in the Arduino profile).

use core::cell::Cell;

use crate::common::{
    check_header, corrupt, count, fill_chunks, finish, io, pending, publish, send_until, Fault, Io,
    Payload, Stats, Writer,
};
use crate::config::{layout as l, Config, Geometry};
use crate::platform::{Instant, OutOfBounds, Platform, SharedMemory};
use crate::transport::{Corruption as C, Endpoint, Error, Received, Transport};

#[derive(Clone, Copy, Default)]
struct HostEp {
    /// Local address (0x400 or 0x401); 0 while unbound.
    local: u32,
    /// The remote's announced address.
    dest: u32,
    /// The throw-away first byte is still to be sent.
    hello: bool,
}

/// The host side (virtio driver, the M7): owns the resource table and the rings' driver halves.
///
/// Created with [`Host::new`], which lays out the shared memory; then [`Transport::poll`] binds
/// the endpoints the remote announces (or use [`connect`](crate::connect)).
///
/// Limits: a remote that restarts without the host re-initialising cannot be resynchronised
/// (its ring indices restart at 0); the host reports the re-announcement as `PeerReset`, and the
/// fix is [`Host::reinit`]. Receive buffers are re-posted with the full buffer size, whatever
/// `used.len` says (OpenAMP re-posts with `used.len`; a conforming remote writes the full size,
/// so the bytes are the same, and a faulty one cannot shrink the buffers).
pub struct Host<P: Platform> {
    platform: P,
    geo: Geometry,
    eps: [HostEp; 2],
    /// Per ring (0 = receive, 1 = transmit): next used entry to consume.
    last_used: [u16; 2],
    /// Per ring: next avail index to fill.
    avail: [u16; 2],
    /// Per ring and descriptor: handed to the remote and not yet returned.
    out: [[bool; 64]; 2],
    stats: Stats,
    /// The last refused shared-memory access (for `Error::Memory`).
    oob: Cell<Option<OutOfBounds>>,
}

impl<P: Platform> Host<P> {
    /// Validates `config`, then zeroes and writes the resource table and both rings, pre-posts
    /// the receive buffers and sets `DRIVER_OK` last. `InvalidConfig` or `Memory` on failure.
    pub fn new(platform: P, config: Config) -> Result<Self, Error> {
        let mut h = Host {
            platform,
            geo: config.geometry()?,
            eps: [HostEp::default(); 2],
            last_used: [0; 2],
            avail: [0; 2],
            out: [[false; 64]; 2],
            stats: Stats::default(),
            oob: Cell::new(None),
        };
        h.reinit()?;
        Ok(h)
    }

    /// Re-initialises the shared memory (a host-side reset): clears `DRIVER_OK` first, rewrites
    /// everything as [`Host::new`] does and forgets all endpoints. A running remote sees the
    /// status drop (if it polls while it is low) and handshakes again.
    pub fn reinit(&mut self) -> Result<(), Error> {
        let r = self.reinit_inner();
        self.done(r, 0)
    }

    #[inline(never)]
    fn reinit_inner(&mut self) -> Result<(), Fault> {
        let g = &self.geo;
        let m = io!(self);
        m.write(g.rsc + l::VDEV_STATUS, &[0]);
        m.fence();
        zero(m, g.rsc, l::RSC_TABLE_AREA);
        let n = g.num as u32;
        // Fields not listed stay 0 (notifyid of vdev and vring0, config_len, offset[1]).
        let words: [(usize, u32); 14] = [
            (l::RSC_VERSION, l::RSC_TABLE_VERSION),
            (l::RSC_NUM, 1),
            (l::RSC_OFFSET0, l::VDEV_TYPE as u32),
            (l::VDEV_TYPE, l::RSC_VDEV),
            (l::VDEV_ID, l::VIRTIO_ID_RPMSG),
            (l::VDEV_DFEATURES, l::FEATURES),
            (l::VDEV_GFEATURES, l::FEATURES),
            (l::VRING0_INFO + l::VRING_INFO_DA, addr_of(g, 0)),
            (l::VRING0_INFO + l::VRING_INFO_ALIGN, g.align),
            (l::VRING0_INFO + l::VRING_INFO_NUM, n),
            (l::VRING1_INFO + l::VRING_INFO_DA, addr_of(g, 1)),
            (l::VRING1_INFO + l::VRING_INFO_ALIGN, g.align),
            (l::VRING1_INFO + l::VRING_INFO_NUM, n),
            (l::VRING1_INFO + l::VRING_INFO_NOTIFYID, 1),
        ];
        for (off, v) in words {
            m.write_u32(g.rsc + off, v);
        }
        m.write(g.rsc + l::VDEV_NUM_VRINGS, &[l::NUM_VRINGS]);
        for r in 0..2 {
            zero(m, g.ring(r), g.ring_len);
            for i in 0..g.num {
                let next = if i + 1 < g.num {
                    i + 1
                } else {
                    l::DESC_CHAIN_END
                };
                m.write_u16(g.desc(r, i) + l::DESC_NEXT, next);
            }
        }
        self.eps = [HostEp::default(); 2];
        self.last_used = [0; 2];
        self.avail = [0; 2];
        self.out = [[false; 64]; 2];
        for i in 0..self.geo.num {
            self.post(0, i);
        }
        let g = &self.geo;
        let m = io!(self);
        m.write_u16(g.avail(1) + l::AVAIL_FLAGS, l::VRING_AVAIL_F_NO_INTERRUPT);
        publish(m, g.avail(0) + l::AVAIL_IDX, self.avail[0]);
        m.fence();
        m.write(g.rsc + l::VDEV_STATUS, &[l::DRIVER_OK]);
        m.fence();
        Ok(())
    }

    /// Counters of this side.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Transmit buffers free right now (after reclaiming returned ones); the pool is full when
    /// this equals `host_tx_buffers` (46).
    pub fn free_tx_buffers(&mut self) -> Result<usize, Error> {
        let r = self.reclaim();
        self.done(r, 0)?;
        Ok(self.free_count())
    }

    /// Receive buffers currently posted to the remote (`num_descriptors` when none is held).
    pub fn rx_buffers_posted(&self) -> usize {
        count(&self.out[0], self.geo.num)
    }

    /// The local address of `endpoint` (0x400 or 0x401 in announcement order), if bound.
    pub fn local_address(&self, endpoint: Endpoint) -> Option<u32> {
        self.ep(endpoint).map(|e| e.local).filter(|&a| a != 0)
    }

    /// The remote's address of `endpoint`, if bound.
    pub fn remote_address(&self, endpoint: Endpoint) -> Option<u32> {
        self.ep(endpoint).filter(|e| e.local != 0).map(|e| e.dest)
    }

    /// Zero-copy receive: calls `f` with the next payload while it is still in its shared
    /// buffer, then re-posts the buffer. `Ok(None)` when nothing is pending.
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
        let r = self.send_inner(endpoint, len, false, &mut |w| {
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

    fn ep(&self, endpoint: Endpoint) -> Option<&HostEp> {
        self.eps.get(endpoint as usize)
    }

    fn free_count(&self) -> usize {
        self.geo.tx_count as usize - count(&self.out[1], self.geo.tx_count)
    }

    /// Writes descriptor `id` of ring `r` as a fresh buffer (write-only on the receive ring)
    /// and adds it to the avail ring (the caller publishes the index).
    fn post(&mut self, r: usize, id: u16) {
        let g = &self.geo;
        let m = io!(self);
        let d = g.desc(r, id);
        m.write_u32(d + l::DESC_ADDR, (g.host_buf(r, id) - g.da) as u32);
        m.write_u32(d + l::DESC_ADDR + 4, 0);
        m.write_u32(d + l::DESC_LEN, g.buf as u32);
        let flags = if r == 0 { l::VRING_DESC_F_WRITE } else { 0 };
        m.write_u16(d + l::DESC_FLAGS, flags);
        let a = &mut self.avail[r & 1];
        m.write_u16(g.avail_slot(r, *a), id);
        *a = a.wrapping_add(1);
        if let Some(o) = self.out[r & 1].get_mut(id as usize) {
            *o = true;
        }
    }

    /// The next used entry of ring `r`, validated: `(id, used.len)`, not consumed (see
    /// [`Host::consume`]). A bad id is skipped and reported.
    fn peek_used(&mut self, r: usize) -> Result<Option<(u16, u32)>, Fault> {
        let g = &self.geo;
        let m = io!(self);
        let last = &mut self.last_used[r & 1];
        if !pending(m, g, g.used(r) + l::USED_IDX, *last, &mut self.stats)? {
            return Ok(None);
        }
        let e = g.used_slot(r, *last);
        let id = m.read_u32(e);
        let len = m.read_u32(e + 4);
        let c = if id >= g.num as u32 {
            C::DescriptorIndex
        } else if !self.out[r & 1].get(id as usize).is_some_and(|&o| o) {
            C::DescriptorState
        } else {
            return Ok(Some((id as u16, len)));
        };
        *last = last.wrapping_add(1);
        Err(corrupt(&mut self.stats, c))
    }

    /// Consumes the peeked used entry of ring `r` naming descriptor `id`.
    fn consume(&mut self, r: usize, id: u16) {
        let last = &mut self.last_used[r & 1];
        *last = last.wrapping_add(1);
        if let Some(o) = self.out[r & 1].get_mut(id as usize) {
            *o = false;
        }
    }

    /// Consumes used entry `id` of the receive ring and re-posts its buffer (silently: the
    /// remote asked for no notifications on vring0).
    fn release_rx(&mut self, id: u16) {
        self.consume(0, id);
        self.post(0, id);
        publish(io!(self), self.geo.avail(0) + l::AVAIL_IDX, self.avail[0])
    }

    /// Takes back the transmit buffers the remote returned on vring1's used ring.
    fn reclaim(&mut self) -> Result<(), Fault> {
        while let Some((id, len)) = self.peek_used(1)? {
            self.consume(1, id);
            if len as usize > self.geo.buf {
                return Err(corrupt(&mut self.stats, C::DescriptorLength));
            }
        }
        Ok(())
    }

    fn send_inner(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        control: bool,
        fill: &mut dyn FnMut(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Fault> {
        let max = self.geo.max_msg;
        if len > max {
            return Err(Fault::TooLarge);
        }
        let e = *self.ep(endpoint).ok_or(Fault::NotReady)?;
        if e.local == 0 || (e.hello && !control) {
            return Err(Fault::NotReady);
        }
        let k = self.geo.chunks(len);
        self.reclaim()?;
        // The k lowest free transmit descriptors, in order.
        let mut bufs = [0u32; 64];
        let mut n = 0;
        for id in 0..self.geo.tx_count {
            if n < k && !self.out[1].get(id as usize).is_some_and(|&o| o) {
                if let Some(b) = bufs.get_mut(n) {
                    *b = self.geo.host_buf(1, id) as u32;
                }
                n += 1;
            }
        }
        let Some(bufs) = bufs.get_mut(..k).filter(|_| n >= k) else {
            self.stats.no_buffer = self.stats.no_buffer.wrapping_add(1);
            return Err(Fault::NoBuffer);
        };
        let m = io!(self);
        fill_chunks(m, bufs, e.local, e.dest, len, self.geo.payload, fill);
        // Same selection again; `post` marks each one out as it goes.
        let mut n = 0;
        for id in 0..self.geo.tx_count {
            if n < k && !self.out[1].get(id as usize).is_some_and(|&o| o) {
                self.post(1, id);
                n += 1;
            }
        }
        let m = io!(self);
        publish(m, self.geo.avail(1) + l::AVAIL_IDX, self.avail[1]);
        m.fence();
        self.platform.notify();
        let s = &mut self.stats;
        s.messages_sent = s.messages_sent.wrapping_add(1);
        s.buffers_sent = s.buffers_sent.wrapping_add(k as u32);
        Ok(())
    }

    /// Sends the throw-away byte on every endpoint that still needs it.
    fn send_hellos(&mut self) -> Result<(), Fault> {
        for ep in Endpoint::ALL {
            if self.ep(ep).is_some_and(|e| e.local != 0 && e.hello) {
                match self.send_inner(ep, 1, true, &mut |w| {
                    let _ = w.write(0, &[0]);
                }) {
                    Ok(()) => {
                        if let Some(e) = self.eps.get_mut(ep as usize) {
                            e.hello = false;
                        }
                    }
                    Err(Fault::NoBuffer) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Handles a name-service record of `len` bytes at `off`.
    fn name_service(&mut self, off: usize, len: usize) -> Result<(), Fault> {
        if len != l::NS_RECORD_SIZE {
            return Err(corrupt(&mut self.stats, C::NameService));
        }
        let mut rec = [0u8; l::NS_RECORD_SIZE];
        io!(self).read(off, &mut rec);
        let (name, rest) = rec.split_at(l::NS_NAME_LEN);
        let addr = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let flags = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let Some(nul) = name.iter().position(|&b| b == 0) else {
            return Err(corrupt(&mut self.stats, C::NameService));
        };
        if flags > l::NS_DESTROY || addr < l::RESERVED_ADDRESSES || addr == l::ADDR_ANY {
            return Err(corrupt(&mut self.stats, C::NameService));
        }
        let ep = match name.get(..nul) {
            Some(b"raw") => Endpoint::Raw,
            Some(b"rpc") => Endpoint::Rpc,
            _ => {
                self.stats.ns_ignored = self.stats.ns_ignored.wrapping_add(1);
                return Ok(());
            }
        };
        self.stats.control_received = self.stats.control_received.wrapping_add(1);
        let other = self.eps.get(1 - ep as usize).map_or(0, |e| e.local);
        let Some(e) = self.eps.get_mut(ep as usize) else {
            return Ok(());
        };
        if flags == l::NS_DESTROY {
            if e.local != 0 && e.dest == addr {
                *e = HostEp::default();
            } else {
                self.stats.ns_ignored = self.stats.ns_ignored.wrapping_add(1);
            }
            return Ok(());
        }
        let rebound = e.local != 0;
        if !rebound {
            e.local = if other == l::EPT_ADDR_FIRST {
                l::EPT_ADDR_FIRST + 1
            } else {
                l::EPT_ADDR_FIRST
            };
        }
        e.dest = addr;
        e.hello = true;
        self.send_hellos()?;
        if rebound {
            self.stats.peer_resets = self.stats.peer_resets.wrapping_add(1);
            return Err(Fault::PeerReset);
        }
        Ok(())
    }

    /// Validates the used entry's buffer; `Some((endpoint, payload length))` for data,
    /// `None` for a control message (handled here).
    fn classify(&mut self, buf: usize, ulen: u32) -> Result<Option<(Endpoint, usize)>, Fault> {
        let m = io!(self);
        let h = check_header(m, &self.geo, buf, ulen as usize, &mut self.stats)?;
        if h.dst == l::NS_ADDR {
            self.name_service(buf + l::HDR_SIZE, h.len)?;
            return Ok(None);
        }
        for ep in Endpoint::ALL {
            if let Some(e) = self.ep(ep) {
                if e.local != 0 && e.local == h.dst && e.dest == h.src {
                    return Ok(Some((ep, h.len)));
                }
            }
        }
        Err(corrupt(&mut self.stats, C::HeaderAddress))
    }

    /// The receive loop: handles control messages, hands the first data payload to `f`
    /// (consumed if `f` returns true). `Ok(true)` if a payload was consumed.
    fn recv_inner(
        &mut self,
        f: &mut dyn FnMut(Endpoint, Payload<'_, P::Memory>) -> bool,
    ) -> Result<bool, Fault> {
        while let Some((id, ulen)) = self.peek_used(0)? {
            let buf = self.geo.host_buf(0, id);
            match self.classify(buf, ulen) {
                Ok(Some((ep, len))) => {
                    let p = Payload {
                        mem: self.platform.memory(),
                        offset: buf + l::HDR_SIZE,
                        len,
                    };
                    if !f(ep, p) {
                        return Ok(false);
                    }
                    self.stats.buffers_received = self.stats.buffers_received.wrapping_add(1);
                    self.release_rx(id);
                    return Ok(true);
                }
                Ok(None) => self.release_rx(id),
                Err(err) => {
                    self.release_rx(id);
                    return Err(err);
                }
            }
        }
        Ok(false)
    }
}

impl<P: Platform> Transport for Host<P> {
    type Platform = P;

    fn platform(&self) -> &P {
        &self.platform
    }

    fn poll(&mut self) -> Result<(), Error> {
        let r = self.reclaim();
        let r = r.and_then(|_| self.send_hellos());
        let r = r.and_then(|_| self.recv_inner(&mut |_, _| false));
        self.done(r.map(|_| ()), 0)
    }

    fn is_ready(&self, endpoint: Endpoint) -> bool {
        self.ep(endpoint).is_some_and(|e| e.local != 0 && !e.hello)
    }

    fn max_message_len(&self) -> usize {
        self.geo.max_msg
    }

    fn payload_per_buffer(&self) -> usize {
        self.geo.payload
    }

    fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error> {
        let r = self.send_inner(endpoint, data.len(), false, &mut |w| {
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

/// `try_recv`'s callback: copies the payload into `buf` if it fits.
pub(crate) fn copy_out<M: SharedMemory>(
    endpoint: Endpoint,
    p: &Payload<'_, M>,
    buf: &mut [u8],
    out: &mut Result<Option<Received>, Error>,
) -> bool {
    let Some(dst) = buf.get_mut(..p.len) else {
        *out = Err(Error::BufferTooSmall { needed: p.len });
        return false;
    };
    *out = match p.read(0, dst) {
        Ok(()) => Ok(Some(Received {
            endpoint,
            len: p.len,
        })),
        Err(e) => Err(Error::Memory(e)),
    };
    true
}

fn zero<M: SharedMemory>(m: Io<'_, M>, mut off: usize, mut len: usize) {
    let z = [0u8; 64];
    while len > 0 {
        let n = len.min(z.len());
        m.write(off, &z[..n]);
        off += n;
        len -= n;
        if m.failed() {
            return;
        }
    }
}

/// The firmware address of ring `r`.
fn addr_of(g: &Geometry, r: usize) -> u32 {
    g.shm_base.wrapping_add(g.ring(r) as u32)
}
