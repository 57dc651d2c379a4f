//! The host role: the virtio driver (the M7 in the Arduino profile).

use core::cell::Cell;

use crate::common::{
    check_header, corrupt, fill_chunks, finish, ids, io, lowest, pending, publish, send_until,
    sent, Bits, Fault, Io, Payload, Stats, Sticky, Writer, NO_FAULT,
};
use crate::config::{layout as l, Config, Geometry};
use crate::platform::{Instant, Platform, SharedMemory};
use crate::transport::{Corruption as C, Endpoint, Error, Received, Transport};

#[derive(Clone, Copy, Default)]
struct HostEp {
    /// Local address (0x400 or 0x401); 0 while unbound.
    local: u32,
    /// The remote's announced address.
    dest: u32,
    /// The throw-away first byte is still to be sent (0 or 1; no `bool`, so no niche).
    hello: u32,
}

/// The host side (virtio driver, the M7): owns the resource table and the rings' driver halves.
///
/// Created with [`Host::new`], which lays out the shared memory; then [`Transport::poll`] binds
/// the endpoints the remote announces (or use [`connect`](crate::connect)).
///
/// Reset (host side), two steps: [`Host::begin_reset`] clears `DRIVER_OK` and parks the host;
/// hold that for at least one remote poll period (the remote reads the status in every
/// `poll`, `try_send` and `try_recv`), then [`Host::reinit`] lays everything out again. The
/// remote reports `PeerReset` once and handshakes again (see [`Remote`](crate::Remote)).
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
    /// Per ring: descriptors handed to the remote and not yet returned.
    out: [Bits; 2],
    stats: Stats,
    /// 1 between [`Host::begin_reset`] and [`Host::reinit`]: the rings are not touched.
    /// (A `u32`, not a `bool`: no niche, so the struct moves as plain words.)
    resetting: u32,
    /// The last refused shared-memory access (for `Error::Memory`).
    oob: Sticky,
}

impl<P: Platform> Host<P> {
    /// Validates `config`, then zeroes and writes the resource table and both rings, pre-posts
    /// the receive buffers and sets `DRIVER_OK` last. `InvalidConfig` or `Memory` on failure.
    pub fn new(platform: P, config: Config) -> Result<Self, Error> {
        let geo = config.geometry();
        if geo.num == 0 {
            return Err(Error::InvalidConfig);
        }
        let oob = Cell::new(NO_FAULT);
        lay_out(
            Io {
                m: platform.memory(),
                oob: &oob,
            },
            &geo,
        );
        finish(&oob, Ok(()), 0, 0)?;
        // Built as the result directly (no move of the whole struct afterwards).
        Ok(Host {
            platform,
            eps: [HostEp::default(); 2],
            last_used: [0; 2],
            avail: [geo.num, 0],
            out: [Bits::of(Bits::first(geo.num)), Bits::default()],
            geo: geo.copy_words(),
            stats: Stats::default(),
            resetting: 0,
            oob,
        })
    }

    /// First step of a host-side reset: writes 0 to the vdev status byte (`DRIVER_OK` cleared;
    /// nothing else in shared memory is touched) and forgets both endpoints. Until
    /// [`Host::reinit`], sends fail with `NotReady`, receives and `poll` find nothing and no
    /// ring is read or written (the remote may still be finishing an operation on them).
    ///
    /// Hold this state for at least one poll period of the remote: its next `poll` (or send or
    /// receive) sees the status drop, returns `PeerReset` once, stops using the rings and waits
    /// for `DRIVER_OK`. Calling it again while resetting only rewrites the status byte.
    pub fn begin_reset(&mut self) -> Result<(), Error> {
        let m = io!(self);
        m.write(self.geo.rsc + l::VDEV_STATUS, &[0]);
        m.fence();
        self.eps = [HostEp::default(); 2];
        self.resetting = 1;
        self.done(Ok(()), 0)
    }

    /// Re-initialises the shared memory: clears `DRIVER_OK` first, rewrites everything as
    /// [`Host::new`] does (`DRIVER_OK` last), forgets all endpoints and ends a reset begun with
    /// [`Host::begin_reset`]. The remote handshakes again after reporting `PeerReset` once.
    ///
    /// Without `begin_reset` first (a quick reset), the remote still notices at its next call:
    /// re-laying the rings zeroes vring0's `used.flags`, where the running remote keeps
    /// `VRING_USED_F_NO_NOTIFY` set. That is only sound if the remote is not in the middle of an
    /// operation while this runs (one core, or a remote known to be idle); otherwise its late
    /// ring writes can land in the fresh rings. On two running cores use `begin_reset`, wait
    /// at least one remote poll period, then call this.
    pub fn reinit(&mut self) -> Result<(), Error> {
        let r = self.reinit_inner();
        self.done(r, 0)
    }

    fn reinit_inner(&mut self) -> Result<(), Fault> {
        lay_out(io!(self), &self.geo);
        self.eps = [HostEp::default(); 2];
        self.last_used = [0; 2];
        self.avail = [self.geo.num, 0];
        self.out = [Bits::of(Bits::first(self.geo.num)), Bits::default()];
        self.resetting = 0;
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
        self.out[0].count()
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
        self.geo.tx_count as usize - self.out[1].count()
    }

    /// Writes descriptor `id` of ring `r` as a fresh buffer (write-only on the receive ring)
    /// and adds it to the avail ring (the caller publishes the index).
    fn post(&mut self, r: usize, id: u16) {
        let a = &mut self.avail[r & 1];
        put_desc(io!(self), &self.geo, r, id, *a);
        *a = a.wrapping_add(1);
        self.out[r & 1].put(id, true);
    }

    /// The next used entry of ring `r`, validated: `(id, used.len)`, not consumed (see
    /// [`Host::consume`]). A bad id is skipped and reported.
    fn peek_used(&mut self, r: usize) -> Result<Option<(u16, u32)>, Fault> {
        if self.resetting != 0 {
            return Ok(None);
        }
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
        } else if !self.out[r & 1].has(id as u16) {
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
        self.out[r & 1].put(id, false);
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
        if e.local == 0 || (e.hello != 0 && !control) {
            return Err(Fault::NotReady);
        }
        let k = self.geo.chunks(len);
        self.reclaim()?;
        // The k lowest free transmit descriptors.
        let all = Bits::first(self.geo.tx_count);
        let Some(set) = lowest(all & !self.out[1].get(), k) else {
            self.stats.no_buffer = self.stats.no_buffer.wrapping_add(1);
            return Err(Fault::NoBuffer);
        };
        let mut w = Writer {
            io: io!(self),
            geo: &self.geo,
            ids: set,
            host: true,
            len,
        };
        fill_chunks(&mut w, e.local, e.dest, fill);
        for id in ids(set) {
            self.post(1, id);
        }
        let idx = self.geo.avail(1) + l::AVAIL_IDX;
        sent(
            &self.platform,
            &self.oob,
            &mut self.stats,
            idx,
            self.avail[1],
            k,
        );
        Ok(())
    }

    /// Sends the throw-away byte on every endpoint that still needs it.
    fn send_hellos(&mut self) -> Result<(), Fault> {
        for ep in Endpoint::ALL {
            if self.ep(ep).is_some_and(|e| e.local != 0 && e.hello != 0) {
                match self.send_inner(ep, 1, true, &mut |w| {
                    let _ = w.write(0, &[0]);
                }) {
                    Ok(()) => {
                        if let Some(e) = self.eps.get_mut(ep as usize) {
                            e.hello = 0;
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
    #[inline(never)]
    fn name_service(&mut self, off: usize, len: usize) -> Result<(), Fault> {
        let m = io!(self);
        let word = |i: usize| m.read_u32(off + 4 * i);
        // The name needs a NUL within its 32 bytes.
        let nul = (0..l::NS_NAME_LEN / 4)
            .any(|i| word(i).wrapping_sub(0x0101_0101) & !word(i) & 0x8080_8080 != 0);
        let addr = word(l::NS_REC_ADDR / 4);
        let flags = word(l::NS_REC_FLAGS / 4);
        if len != l::NS_RECORD_SIZE
            || !nul
            || flags > l::NS_DESTROY
            || addr < l::RESERVED_ADDRESSES
            || addr == l::ADDR_ANY
        {
            return Err(corrupt(&mut self.stats, C::NameService));
        }
        let name = word(0);
        let Some(&ep) = Endpoint::ALL
            .iter()
            .find(|e| name == ns_word(e.name().as_bytes()))
        else {
            self.stats.ns_ignored = self.stats.ns_ignored.wrapping_add(1);
            return Ok(());
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
        e.hello = 1;
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
        self.ep(endpoint)
            .is_some_and(|e| e.local != 0 && e.hello == 0)
    }

    fn max_message_len(&self) -> usize {
        self.geo.max_msg
    }

    fn payload_per_buffer(&self) -> usize {
        self.geo.payload()
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

/// Lays out the resource table and both rings: clears `DRIVER_OK` first, posts every receive
/// buffer, sets `DRIVER_OK` last.
#[inline(never)]
fn lay_out<M: SharedMemory>(m: Io<'_, M>, g: &Geometry) {
    m.write(g.rsc + l::VDEV_STATUS, &[0]);
    m.fence();
    zero(m, g.rsc, l::RSC_TABLE_AREA);
    // Fields not listed stay 0 (notifyid of vdev and vring0, config_len, offset[1]).
    for (off, v) in RSC_WORDS {
        m.write_u32(g.rsc + off as usize, v as u32);
    }
    m.write(g.rsc + l::VDEV_NUM_VRINGS, &[l::NUM_VRINGS]);
    for r in 0..2 {
        let info = g.rsc + l::VRING0_INFO + r * (l::VRING1_INFO - l::VRING0_INFO);
        m.write_u32(
            info + l::VRING_INFO_DA,
            g.shm_base.wrapping_add(g.ring(r) as u32),
        );
        m.write_u32(info + l::VRING_INFO_ALIGN, g.align);
        m.write_u32(info + l::VRING_INFO_NUM, g.num as u32);
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
    for i in 0..g.num {
        put_desc(m, g, 0, i, i);
    }
    m.write_u16(g.avail(1) + l::AVAIL_FLAGS, l::VRING_AVAIL_F_NO_INTERRUPT);
    publish(m, g.avail(0) + l::AVAIL_IDX, g.num);
    m.fence();
    m.write(g.rsc + l::VDEV_STATUS, &[l::DRIVER_OK]);
    m.fence();
}

/// Writes descriptor `id` of ring `r` as a fresh buffer (write-only on the receive ring) and
/// puts it in avail slot `at` (the caller publishes the index).
fn put_desc<M: SharedMemory>(m: Io<'_, M>, g: &Geometry, r: usize, id: u16, at: u16) {
    let d = g.desc(r, id);
    m.write_u32(d + l::DESC_ADDR, (g.host_buf(r, id) - g.da) as u32);
    m.write_u32(d + l::DESC_ADDR + 4, 0);
    m.write_u32(d + l::DESC_LEN, g.buf as u32);
    let flags = if r == 0 { l::VRING_DESC_F_WRITE } else { 0 };
    m.write_u16(d + l::DESC_FLAGS, flags);
    m.write_u16(g.avail_slot(r, at), id);
}

/// Zeroes `len` bytes at `off` (both 2-aligned) word by word.
fn zero<M: SharedMemory>(m: Io<'_, M>, off: usize, len: usize) {
    let mut i = 0;
    while i < len && !m.failed() {
        if len - i >= 4 {
            m.write_u32(off + i, 0);
            i += 4;
        } else {
            m.write_u16(off + i, 0);
            i += 2;
        }
    }
}

/// The first word of a NUL-terminated three-letter name.
pub(crate) const fn ns_word(name: &[u8]) -> u32 {
    u32::from_le_bytes([name[0], name[1], name[2], 0])
}

/// Constant resource-table words: (offset, value).
const RSC_WORDS: [(u8, u8); 8] = [
    (l::RSC_VERSION as u8, l::RSC_TABLE_VERSION as u8),
    (l::RSC_NUM as u8, 1),
    (l::RSC_OFFSET0 as u8, l::VDEV_TYPE as u8),
    (l::VDEV_TYPE as u8, l::RSC_VDEV as u8),
    (l::VDEV_ID as u8, l::VIRTIO_ID_RPMSG as u8),
    (l::VDEV_DFEATURES as u8, l::FEATURES as u8),
    (l::VDEV_GFEATURES as u8, l::FEATURES as u8),
    ((l::VRING1_INFO + l::VRING_INFO_NOTIFYID) as u8, 1),
];
