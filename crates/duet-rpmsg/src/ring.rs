//! The split-ring mechanics, once for both roles; the role is data.
//!
//! The host (virtio driver) fills the avail part of both rings and reads their used part; it
//! transmits on vring1 from its own pool and receives on vring0. The remote (device) reads the
//! avail part and fills the used part; it transmits on vring0 in buffers the host posted there
//! and receives on vring1. The part a side reads is `p = host` (0: avail, 1: used) and the part
//! it fills is `1 - p`; the transmit ring is `host` too.

use crate::common::{
    finish, ids, io, lowest, Bits, Fault, Io, Payload, Stats, Sticky, Writer, NO_FAULT,
};
use crate::config::sealed::Layout;
use crate::config::{layout as l, Geometry};

use crate::platform::{Platform, SharedMemory};
use crate::transport::{Corruption as C, Endpoint, Error, Received};

/// The binding of one endpoint.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ep {
    /// This side's address; 0 while unbound (host) or not announced (remote).
    pub local: u32,
    /// The peer's address; `ADDR_ANY` while the remote has not learned it.
    pub dest: u32,
    /// Host: the throw-away first byte is still to be sent (0 or 1; no `bool`, so no niche).
    pub hello: u32,
}

impl Ep {
    /// Whether data can flow: bound, first byte sent, peer address known.
    pub fn ready(&self) -> bool {
        self.local != 0 && self.hello == 0 && self.dest != l::ADDR_ANY
    }
}

/// The state both roles keep. `u32` flags (no `bool`): no niche, so it moves as plain words.
pub(crate) struct Core<P: Platform, G: Layout> {
    pub platform: P,
    /// The layout (`num == 0` if the config was invalid; only the remote can hold one).
    pub geo: G,
    /// 1 for the host, 0 for the remote.
    pub host: u32,
    /// 1 while the rings are in use: host outside `begin_reset`..`reinit`, remote running.
    pub up: u32,
    pub eps: [Ep; 2],
    /// Per ring: next entry to read in the part the peer fills.
    pub seen: [u16; 2],
    /// Per ring: next entry to fill in this side's part.
    pub next: [u16; 2],
    /// Per ring: descriptors this side holds (its free transmit buffers on the transmit ring).
    pub own: [Bits; 2],
    pub stats: Stats,
    /// The last refused shared-memory access (for `Error::Memory`).
    pub oob: Sticky,
}

/// `*c += 1`, wrapping.
pub(crate) fn bump(c: &mut u32) {
    *c = c.wrapping_add(1);
}

/// The flags of every descriptor of ring `r`: device-writable on vring0, read-only on vring1.
fn desc_flags(r: usize) -> u16 {
    if r & 1 == 0 {
        l::VRING_DESC_F_WRITE
    } else {
        0
    }
}

/// Writes descriptor `id` of ring `r` as the host's fresh buffer and puts it in avail slot `at`
/// (the caller publishes the index).
#[inline(always)]
pub(crate) fn put_desc<M: SharedMemory>(m: Io<'_, M>, g: &Geometry, r: usize, id: u16, at: u16) {
    let d = g.desc(r, id);
    m.write_u32(d + l::DESC_ADDR, (g.host_buf(r, id) - g.da) as u32);
    m.write_u32(d + l::DESC_ADDR + 4, 0);
    m.write_u32(d + l::DESC_LEN, g.buf as u32);
    m.write_u16(d + l::DESC_FLAGS, desc_flags(r));
    m.write_u16(g.slot(r, 0, at), id);
}

impl<P: Platform, G: Layout> Core<P, G> {
    /// A core in its initial state: the host's (`host == 1`: rings laid out, every receive
    /// buffer posted, the transmit pool free) or the remote's (nothing seen yet). Inlined, so
    /// that the geometry is written straight into its final place (no `memcpy`).
    #[inline(always)]
    pub fn new(platform: P, geo: G, host: u32, oob: Sticky) -> Self {
        let num = geo.get().num;
        let tx = geo.get().tx_count;
        Core {
            platform,
            geo,
            host,
            up: host,
            eps: [Ep::default(); 2],
            seen: [0; 2],
            next: [num & (0u16.wrapping_sub(host as u16)), 0],
            own: [
                Bits::default(),
                Bits::first(tx & (0u16.wrapping_sub(host as u16))),
            ],
            stats: Stats::default(),
            oob,
        }
    }

    /// The public result of an operation (`len`: the length of the message being sent, if any).
    pub fn done(&self, r: Result<(), Fault>, len: usize) -> Result<(), Error> {
        finish(&self.oob, r, len, self.geo.get().max_msg)
    }

    /// Bumps the corrupt counter and builds the error.
    pub fn bad(&mut self, c: C) -> Fault {
        bump(&mut self.stats.corrupt);
        Fault::Corrupt(c)
    }

    /// The transmit ring (host: vring1, remote: vring0).
    fn tx(&self) -> usize {
        self.host as usize & 1
    }

    /// Free transmit buffers this side holds.
    pub fn free_tx(&self) -> usize {
        self.own[self.tx()].count()
    }

    /// The next entry the peer put in ring `r`, not consumed: `RingIndex` if the index moved
    /// by more than the ring size; `DescriptorIndex` for an id outside the table and
    /// `DescriptorState` for one this side holds or never hands out (both consumed).
    fn peek(&mut self, r: usize) -> Result<Option<u16>, Fault> {
        if self.up == 0 {
            return Ok(None);
        }
        let g = self.geo.get();
        let m = io!(self);
        let p = self.host as usize;
        let last = self.seen[r & 1];
        let n = m.read_u16(g.idx(r, p)).wrapping_sub(last);
        // The entries are read after the index.
        m.fence();
        if m.failed() || n == 0 {
            return Ok(None);
        }
        if n > g.num {
            return Err(self.bad(C::RingIndex));
        }
        let e = g.slot(r, p, last);
        let id = if p != 0 {
            m.read_u32(e)
        } else {
            m.read_u16(e) as u32
        };
        // Only the host's transmit pool is smaller than the ring.
        let limit = if r & p != 0 { g.tx_count } else { g.num };
        let c = if id >= g.num as u32 {
            C::DescriptorIndex
        } else if id >= limit as u32 || self.own[r & 1].has(id as u16) {
            C::DescriptorState
        } else {
            return Ok(Some(id as u16));
        };
        self.seen[r & 1] = last.wrapping_add(1);
        Err(self.bad(c))
    }

    /// The buffer and valid length of descriptor `id` of ring `r` (the entry just peeked).
    /// Host: its own buffer and `used.len`; remote: the descriptor the host wrote, with its
    /// address inside the pool (`DescriptorAddress`) and the ring's flags (`DescriptorFlags`).
    /// `DescriptorLength` unless `min <= len <= buffer size`.
    #[inline(never)]
    fn resolve(&mut self, r: usize, id: u16, min: usize) -> Result<(usize, usize), Fault> {
        let g = self.geo.get();
        let m = io!(self);
        let (buf, len, flags) = if self.host != 0 {
            let e = g.slot(r, 1, self.seen[r & 1]);
            (Some(g.host_buf(r, id)), m.read_u32(e + 4), desc_flags(r))
        } else {
            let d = g.desc(r, id);
            let lo = m.read_u32(d + l::DESC_ADDR);
            let hi = m.read_u32(d + l::DESC_ADDR + 4);
            let len = m.read_u32(d + l::DESC_LEN);
            (g.buffer_at(lo, hi), len, m.read_u16(d + l::DESC_FLAGS))
        };
        let len = len as usize;
        let c = match buf {
            None => C::DescriptorAddress,
            Some(_) if len > g.buf || len < min => C::DescriptorLength,
            Some(_) if flags != desc_flags(r) => C::DescriptorFlags,
            Some(b) => return Ok((b, len)),
        };
        Err(self.bad(c))
    }

    /// Hands descriptor `id` of ring `r` to the peer in this side's part (host: a fresh
    /// descriptor and an avail slot; remote: a used element with `len` = the buffer size).
    /// The caller publishes.
    fn put(&mut self, r: usize, id: u16) {
        let g = self.geo.get();
        let m = io!(self);
        let n = &mut self.next[r & 1];
        if self.host != 0 {
            put_desc(m, g, r, id, *n);
        } else {
            let e = g.slot(r, 1, *n);
            m.write_u32(e, id as u32);
            m.write_u32(e + 4, g.buf as u32);
        }
        *n = n.wrapping_add(1);
        self.own[r & 1].put(id, false);
    }

    /// Publishes this side's index of ring `r`: fence (the entries first), then the index.
    fn publish(&self, r: usize) {
        let m = io!(self);
        m.fence();
        m.write_u16(
            self.geo.get().idx(r, 1 - self.host as usize),
            self.next[r & 1],
        );
    }

    /// Consumes the peeked entry `id` of the receive ring `r` and gives the buffer back
    /// (silently: neither side asks for notifications of returned buffers).
    fn release(&mut self, r: usize, id: u16) {
        let s = &mut self.seen[r & 1];
        *s = s.wrapping_add(1);
        self.put(r, id);
        self.publish(r);
    }

    /// Takes the transmit buffers the peer handed over (host: returned on vring1's used ring,
    /// kept even with a bad length; remote: posted on vring0's avail ring, dropped if bad).
    #[inline(never)]
    pub fn refill(&mut self) -> Result<(), Fault> {
        let r = self.tx();
        let min = if self.host != 0 {
            0
        } else {
            self.geo.get().buf
        };
        while let Some(id) = self.peek(r)? {
            let res = self.resolve(r, id, min);
            let s = &mut self.seen[r];
            *s = s.wrapping_add(1);
            if self.host != 0 || res.is_ok() {
                self.own[r].put(id, true);
            }
            res?;
        }
        Ok(())
    }

    /// Sends a message of `len` bytes from `src` to `dst` in the lowest free transmit buffers;
    /// `NoBuffer` if there are not enough.
    #[inline(never)]
    fn send(
        &mut self,
        src: u32,
        dst: u32,
        len: usize,
        fill: &mut dyn FnMut(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Fault> {
        let g = self.geo.get();
        // Callers keep `len <= max(max_msg, payload)`: one buffer unless the profile allows
        // more (a constant for a compile-time profile).
        let k = if g.max_msg <= g.payload() {
            1
        } else {
            g.chunks(len)
        };
        self.refill()?;
        let r = self.tx();
        let Some(set) = lowest(self.own[r].get(), k) else {
            bump(&mut self.stats.no_buffer);
            return Err(Fault::NoBuffer);
        };
        let mut w = Writer {
            io: io!(self),
            geo: self.geo.get(),
            ids: set,
            host: self.host != 0,
            len,
        };
        // Every chunk's header, then the caller's bytes.
        let per = w.geo.payload();
        let mut left = len;
        for i in 0..k {
            let Some(h) = w.chunk(i) else { break };
            let n = left.min(per);
            w.io.write_u32(h + l::HDR_SRC, src);
            w.io.write_u32(h + l::HDR_DST, dst);
            w.io.write_u32(h + l::HDR_RESERVED, 0);
            // n < 2^15 by Config limits; flags (the upper half) = 0.
            w.io.write_u32(h + l::HDR_LEN, n as u32);
            left -= n;
        }
        fill(&mut w);
        for id in ids(set) {
            self.put(r, id);
        }
        self.publish(r);
        io!(self).fence();
        self.platform.notify();
        bump(&mut self.stats.messages_sent);
        self.stats.buffers_sent = self.stats.buffers_sent.wrapping_add(k as u32);
        Ok(())
    }

    /// Sends data on `endpoint` (checks in the order: config, length, binding, peer).
    pub fn send_data(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        fill: &mut dyn FnMut(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Fault> {
        if self.geo.get().num == 0 {
            return Err(Fault::InvalidConfig);
        }
        if len > self.geo.get().max_msg {
            return Err(Fault::TooLarge);
        }
        let e = self.eps[endpoint as usize & 1];
        if !e.ready() || (self.host == 0 && !self.check_host()?) {
            return Err(Fault::NotReady);
        }
        self.send(e.local, e.dest, len, fill)
    }

    /// The handshake messages still due, in endpoint order; stops quietly on `NoBuffer`.
    /// Host: the throw-away byte on every bound endpoint; remote: the name-service
    /// announcement of every endpoint not announced yet.
    pub(crate) fn greet(&mut self) -> Result<(), Fault> {
        for (i, ep) in Endpoint::ALL.iter().enumerate() {
            let e = self.eps[i];
            let host = self.host != 0;
            let (src, dst, len, name) = if host {
                if e.local == 0 || e.hello == 0 {
                    continue;
                }
                (e.local, e.dest, 1, 0)
            } else {
                if e.local != 0 {
                    continue;
                }
                let a = l::EPT_ADDR_FIRST + i as u32;
                (
                    a,
                    l::NS_ADDR,
                    l::NS_RECORD_SIZE,
                    ns_word(ep.name().as_bytes()),
                )
            };
            // Word by word: the record (name, addr, flags 0), or the byte 0.
            match self.send(src, dst, len, &mut |w| {
                for j in 0..len.div_ceil(4) {
                    let v = match j {
                        0 => name,
                        8 => src,
                        _ => 0,
                    };
                    w.put_u32(4 * j, v);
                }
            }) {
                Ok(()) => {
                    self.eps[i] = Ep {
                        local: src,
                        dest: if host { dst } else { l::ADDR_ANY },
                        hello: 0,
                    }
                }
                Err(Fault::NoBuffer) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Checks the buffer of receive entry `id` and its header; `Some((endpoint, payload
    /// offset, length))` for data, `None` for a control message (handled here).
    fn classify(&mut self, r: usize, id: u16) -> Result<Option<(Endpoint, usize, usize)>, Fault> {
        let (buf, len) = self.resolve(r, id, l::HDR_SIZE)?;
        let m = io!(self);
        let src = m.read_u32(buf + l::HDR_SRC);
        let dst = m.read_u32(buf + l::HDR_DST);
        let hlen = m.read_u16(buf + l::HDR_LEN) as usize;
        if hlen + l::HDR_SIZE > len {
            return Err(self.bad(C::HeaderLength));
        }
        let body = buf + l::HDR_SIZE;
        if self.host != 0 && dst == l::NS_ADDR {
            self.name_service(body, hlen)?;
            return Ok(None);
        }
        for (e, &ep) in self.eps.iter_mut().zip(Endpoint::ALL.iter()) {
            if e.local != 0 && e.local == dst {
                // The remote learns the host's address from the first message.
                if e.dest == l::ADDR_ANY && src != l::ADDR_ANY {
                    e.dest = src;
                    bump(&mut self.stats.control_received);
                    return Ok(None);
                }
                if e.dest == src {
                    return Ok(Some((ep, body, hlen)));
                }
            }
        }
        Err(self.bad(C::HeaderAddress))
    }

    /// The receive loop: handles control messages, hands the first data payload to `f`
    /// (consumed if `f` returns true). `Ok(true)` if a payload was consumed.
    #[inline(never)]
    pub fn recv(
        &mut self,
        f: &mut dyn FnMut(Endpoint, Payload<'_, P::Memory>) -> bool,
    ) -> Result<bool, Fault> {
        if self.host == 0 && !self.check_host()? {
            return Ok(false);
        }
        let r = 1 - self.tx();
        while let Some(id) = self.peek(r)? {
            match self.classify(r, id) {
                Ok(Some((ep, offset, len))) => {
                    let p = Payload {
                        mem: self.platform.memory(),
                        offset,
                        len,
                    };
                    if !f(ep, p) {
                        return Ok(false);
                    }
                    bump(&mut self.stats.buffers_received);
                    self.release(r, id);
                    return Ok(true);
                }
                Ok(None) => self.release(r, id),
                Err(e) => {
                    self.release(r, id);
                    return Err(e);
                }
            }
        }
        Ok(false)
    }

    /// `Transport::poll` of both roles: take returned buffers (host) or look at the table
    /// (remote), send the handshake messages due, handle control messages.
    #[inline(never)]
    pub fn poll(&mut self) -> Result<(), Error> {
        let r = if self.host != 0 {
            self.refill().map(|_| true)
        } else {
            self.check_host()
        };
        let r = r.and_then(|up| if up { self.greet() } else { Ok(()) });
        let r = r.and_then(|_| self.recv(&mut |_, _| false));
        self.done(r.map(|_| ()), 0)
    }

    /// `Transport::try_send` of both roles.
    #[inline(never)]
    pub fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error> {
        let r = self.send_data(endpoint, data.len(), &mut |w| {
            let _ = w.write(0, data);
        });
        self.done(r, data.len())
    }

    /// `Transport::try_recv` of both roles.
    #[inline(never)]
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error> {
        let mut got = None;
        // The payload length if it did not fit (then it stays queued).
        let mut need = 0;
        let mut fail = NO_FAULT;
        let r = self.recv(&mut |endpoint, p| {
            let Some(dst) = buf.get_mut(..p.len) else {
                need = p.len;
                return false;
            };
            if let Err(e) = p.read(0, dst) {
                fail = e;
            }
            got = Some(Received {
                endpoint,
                len: p.len,
            });
            true
        });
        // A refused payload read is reported as `Memory` (the first refused access wins).
        if self.oob.get().len == 0 {
            self.oob.set(fail);
        }
        let r = match r {
            Ok(_) if need != 0 => Err(Fault::TooSmall),
            r => r.map(|_| got),
        };
        finish(&self.oob, r, need, 0)
    }

    /// `recv_with` of both roles.
    pub fn recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, Payload<'_, P::Memory>) -> R,
    ) -> Result<Option<R>, Error> {
        let mut f = Some(f);
        let mut out = None;
        let r = self.recv(&mut |ep, p| {
            if let Some(f) = f.take() {
                out = Some(f(ep, p));
            }
            true
        });
        self.done(r.map(|_| ()), 0)?;
        Ok(out)
    }

    /// `send_with` of both roles.
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
}

/// The first word of a NUL-terminated three-letter name.
pub(crate) const fn ns_word(name: &[u8]) -> u32 {
    u32::from_le_bytes([name[0], name[1], name[2], 0])
}
