//! The split-ring mechanics, once for both roles; the role is data.
//!
//! The host (virtio driver) fills the avail part of both rings and reads their used part; it
//! transmits on vring1 from its own pool and receives on vring0. The remote (device) reads the
//! avail part and fills the used part; it transmits on vring0 in buffers the host posted there
//! and receives on vring1. The part a side reads is `p = host` (0: avail, 1: used) and the part
//! it fills is `1 - p`; the transmit ring is `host` too.

use crate::common::{
    desc_buf, finish, ids, io, lowest, tx_buf, Bits, Fault, Io, Payload, Posted, Stats, Writer,
    NO_STATS,
};
use crate::config::sealed::Layout;
use crate::config::{layout as l, Geometry, MAX_DESCRIPTORS};

use crate::platform::{Platform, SharedMemory};
use crate::transport::{Corruption as C, Endpoint, Error, PayloadRead, Received};

/// The binding of one endpoint.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ep {
    /// This side's address; 0 while unbound (host) or not announced (remote). The host adds
    /// [`HELLO`] while the throw-away first byte is still to be sent.
    pub local: u32,
    /// The peer's address; `ADDR_ANY` while the remote has not learned it.
    pub dest: u32,
}

/// Host: in [`Ep::local`] while the endpoint's first byte is due (local addresses are 0x400
/// and 0x401, so the bit is free).
pub(crate) const HELLO: u32 = 1 << 31;

/// Both endpoints unbound (a constant, so clearing them is plain stores).
pub(crate) const NO_EPS: [Ep; 2] = [Ep { local: 0, dest: 0 }; 2];

impl Ep {
    /// Whether data can flow: bound, first byte sent (no [`HELLO`]), peer address known.
    pub fn ready(&self) -> bool {
        (self.local as i32) > 0 && self.dest != l::ADDR_ANY
    }
}

/// A data entry [`Core::recv`] found: payload length, descriptor id, endpoint; its buffer is
/// [`Core::at`]. Kept in [`Core::got`] (not in the result, which stays a flag).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Got {
    pub ep: Endpoint,
    pub id: u8,
    pub len: u16,
}

/// The state both roles keep. `u32` flags (no `bool`): no niche, so it moves as plain words.
/// In declaration order (`repr(C)`): the fields both roles start at zero first, so creating a
/// role clears one block and stores the host's few non-zero values after it; `eps` to `next`
/// are adjacent, so the remote's `forget` is one clear too. `got` (half-words and a byte) comes
/// after the word fields, so that the clears stay word-aligned (`memclr4`, not `memclr`).
#[repr(C)]
pub(crate) struct Core<P: Platform, G: Layout> {
    pub stats: Stats,
    /// The buffer of the entry [`Core::resolve`] accepted last (kept here, not in its result,
    /// so that the result fits a register). From `entry` to `resolve`: the word after the
    /// entry (host: the used element's `len`; remote: unused).
    pub at: usize,
    pub eps: [Ep; 2],
    /// Per ring: next entry to read in the part the peer fills.
    pub seen: [u16; 2],
    /// Per ring: descriptors this side holds (its free transmit buffers on the transmit ring).
    pub own: [Bits; 2],
    /// Per ring: next entry to fill in this side's part.
    pub next: [u16; 2],
    /// 1 for the host, 0 for the remote.
    pub host: u32,
    /// 1 while the rings are in use: host outside `begin_reset`..`reinit`, remote running.
    pub up: u32,
    /// Remote: the buffers of the transmit descriptors it took (see [`tx_buf`]).
    pub posted: Posted,
    /// The data entry [`Core::recv`] found last.
    pub got: Got,
    pub platform: P,
    /// The layout (`num == 0` if the config was invalid; only the remote can hold one).
    pub geo: G,
}

/// `*c += 1`, wrapping.
pub(crate) fn bump(c: &mut u32) {
    *c = c.wrapping_add(1);
}

/// The flags of every descriptor of ring `r`: device-writable on vring0, read-only on vring1.
pub(crate) fn desc_flags(r: usize) -> u16 {
    if r & 1 == 0 {
        l::VRING_DESC_F_WRITE
    } else {
        0
    }
}

/// Writes descriptor `id` of ring `r` as the host's fresh buffer (`next` as the layout chains
/// it) and puts it in avail slot `at` (the caller publishes the index). Shared by re-posting and
/// the layout; the link half of the last word (`next << 16`) is the result.
#[inline]
pub(crate) fn put_desc<M: SharedMemory>(
    m: Io<'_, M>,
    g: &Geometry,
    r: usize,
    id: u16,
    at: u16,
) -> u32 {
    let d = g.desc(r, id);
    let next = if id + 1 < g.num {
        id + 1
    } else {
        l::DESC_CHAIN_END
    };
    let link = (next as u32) << 16;
    m.write_pair(d + l::DESC_ADDR, (g.host_buf(r, id) - g.da) as u32, 0);
    m.write_pair(d + l::DESC_LEN, g.buf as u32, desc_flags(r) as u32 | link);
    m.write_u16(g.slot(r, 0, at), id);
    link
}

// A ring part starts with the word (flags, idx), read as one word.
const _: () =
    assert!(l::AVAIL_FLAGS == 0 && l::AVAIL_IDX == 2 && l::USED_FLAGS == 0 && l::USED_IDX == 2);

// The length and the flags/next word are adjacent.
const _: () = assert!(l::DESC_FLAGS == l::DESC_LEN + 4);

impl<P: Platform, G: Layout> Core<P, G> {
    /// A core in its initial state: the host's (`host == 1`: rings laid out, every receive
    /// buffer posted, the transmit pool free) or the remote's (nothing seen yet). Inlined, so
    /// that the geometry is written straight into its final place (no `memcpy`).
    #[inline(always)]
    pub fn new(platform: P, geo: G, host: u32) -> Self {
        let num = geo.get().num;
        let tx = geo.get().tx_count;
        Core {
            platform,
            geo,
            host,
            up: host,
            eps: NO_EPS,
            seen: [0; 2],
            next: [num & (0u16.wrapping_sub(host as u16)), 0],
            own: [
                Bits::NONE,
                Bits::first(tx & (0u16.wrapping_sub(host as u16))),
            ],
            stats: NO_STATS,
            at: 0,
            posted: [0; MAX_DESCRIPTORS as usize],
            got: Got {
                ep: Endpoint::Raw,
                id: 0,
                len: 0,
            },
        }
    }

    /// The public result of an operation (`len`: the length of the message being sent, if any).
    pub fn done<T>(&self, r: Result<T, Fault>, len: usize) -> Result<T, Error> {
        finish(r, len, self.geo.get().max_msg)
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

    /// How many entries the peer put in ring `r` that this side has not read (the index is
    /// read once; a loop takes them with [`Core::entry`]): `RingIndex` if the index moved by
    /// more than the ring size.
    fn pending(&mut self, r: usize) -> Result<u16, Fault> {
        if self.up == 0 {
            return Ok(0);
        }
        let g = self.geo.get();
        let m = io!(self);
        // `idx` is the high half of the part's first word (flags, idx).
        let n = ((m.read_u32(g.part(r, self.host as usize)) >> 16) as u16)
            .wrapping_sub(self.seen[r & 1]);
        if n == 0 {
            return Ok(0);
        }
        if n > g.num {
            return Err(self.bad(C::RingIndex));
        }
        // The entries are read after the index.
        m.fence();
        Ok(n)
    }

    /// The next entry of ring `r` (one [`Core::pending`] counted), not consumed:
    /// `DescriptorIndex` for an id outside the table and `DescriptorState` for one this side
    /// holds or never hands out (both consumed).
    fn entry(&mut self, r: usize) -> Result<u16, Fault> {
        let g = self.geo.get();
        let m = io!(self);
        let p = self.host as usize;
        let last = self.seen[r & 1];
        let e = g.slot(r, p, last);
        // Host: the used element, id then `len` (kept for `resolve`; `e` is 4-aligned). Remote:
        // the avail entry is a half of a 4-aligned word (the part is 4-aligned); the word after
        // it is still inside the avail part (`used_event` follows the entries), and the
        // remote's `resolve` sets `at` itself.
        let w = m.read_pair(e & !3);
        self.at = (w >> 32) as usize;
        let id = (w as u32) >> ((e & 2) * 8);
        let id = if p != 0 { id } else { id as u16 as u32 };
        // Only the host's transmit pool is smaller than the ring.
        let limit = if r & p != 0 { g.tx_count } else { g.num };
        let c = if id >= g.num as u32 {
            C::DescriptorIndex
        } else if id >= limit as u32 || self.own[r & 1].has(id as u16) {
            C::DescriptorState
        } else {
            return Ok(id as u16);
        };
        self.seen[r & 1] = last.wrapping_add(1);
        Err(self.bad(c))
    }

    /// The buffer and valid length of descriptor `id` of ring `r` (the entry just read).
    /// Host: its own buffer and `used.len`; remote: the descriptor the host wrote, with its
    /// address inside the pool (`DescriptorAddress`) and the ring's flags (`DescriptorFlags`).
    /// `DescriptorLength` unless `min <= len <= buffer size`. The buffer goes to [`Core::at`].
    #[inline(never)]
    fn resolve(&mut self, r: usize, id: u16, min: usize) -> Result<u16, Fault> {
        let g = self.geo.get();
        let m = io!(self);
        let (buf, len, flags) = if self.host != 0 {
            // `used.len`, read by `entry`.
            (Some(g.host_buf(r, id)), self.at as u32, desc_flags(r))
        } else {
            let d = g.desc(r, id);
            let b = desc_buf(m, g, d);
            // The length, then flags in the low half of the next word.
            let w = m.read_pair(d + l::DESC_LEN);
            (b, w as u32, (w >> 32) as u16)
        };
        let len = len as usize;
        let c = match buf {
            None => C::DescriptorAddress,
            Some(_) if len > g.buf || len < min => C::DescriptorLength,
            Some(_) if flags != desc_flags(r) => C::DescriptorFlags,
            Some(b) => {
                self.at = b;
                // At most the buffer size, below 32 KiB.
                return Ok(len as u16);
            }
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
            m.write_pair(g.slot(r, 1, *n), id as u32, g.buf as u32);
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

    /// Consumes the entry `id` of the receive ring `r` and gives the buffer back
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
        let mut n = self.pending(r)?;
        while n != 0 {
            n -= 1;
            let id = self.entry(r)?;
            let res = self.resolve(r, id, min);
            let s = &mut self.seen[r];
            *s = s.wrapping_add(1);
            if self.host != 0 || res.is_ok() {
                self.own[r].put(id, true);
                // Remote: the buffer `resolve` validated (the host keeps its own buffers).
                self.posted[id as usize % MAX_DESCRIPTORS as usize] = self.at as u32;
            }
            res?;
        }
        Ok(())
    }

    /// Buffers a message of `len` bytes needs: one unless the profile allows more (a constant
    /// for a compile-time profile). Callers keep `len <= max(max_msg, payload)`.
    #[inline(always)]
    fn needs(&self, len: usize) -> usize {
        let g = self.geo.get();
        if g.max_msg <= g.payload() {
            1
        } else {
            g.chunks(len)
        }
    }

    /// Takes the lowest free transmit buffers for a message of `len` bytes; the caller writes
    /// the headers and payload through [`Core::writer`], then calls [`Core::commit`].
    /// `NoBuffer` if there are not enough.
    #[inline]
    fn reserve(&mut self, len: usize) -> Result<u64, Fault> {
        let k = self.needs(len);
        self.refill()?;
        let Some(set) = lowest(self.own[self.tx()].get(), k) else {
            bump(&mut self.stats.no_buffer);
            return Err(Fault::NoBuffer);
        };
        Ok(set)
    }

    /// The writer of a message reserved with [`Core::reserve`].
    fn writer(&self, set: u64, len: usize) -> Writer<'_, P::Memory> {
        Writer {
            io: io!(self),
            geo: self.geo.get(),
            ids: set,
            host: self.host != 0,
            posted: &self.posted,
            len,
        }
    }

    /// Hands the buffers of a reserved message to the peer, publishes and rings.
    #[inline]
    fn commit(&mut self, set: u64, len: usize) {
        for id in ids(set) {
            self.put(self.tx(), id);
        }
        self.ship(len);
    }

    /// Publishes the transmit ring, rings and counts a message of `len` bytes.
    #[inline]
    fn ship(&mut self, len: usize) {
        let r = self.tx();
        self.publish(r);
        io!(self).fence();
        self.platform.notify();
        bump(&mut self.stats.messages_sent);
        let k = self.needs(len);
        self.stats.buffers_sent = self.stats.buffers_sent.wrapping_add(k as u32);
    }

    /// Sends `data` followed by `tail` from `src` to `dst` (see [`Core::reserve`]).
    #[inline(never)]
    fn send(&mut self, src: u32, dst: u32, data: &[u8], tail: &[u8]) -> Result<(), Fault> {
        let len = data.len() + tail.len();
        if self.needs(len) == 1 {
            // One buffer (the lowest free one): its header and payload, straight.
            self.refill()?;
            let r = self.tx();
            let Some(id) = self.own[r].lowest() else {
                bump(&mut self.stats.no_buffer);
                return Err(Fault::NoBuffer);
            };
            let m = io!(self);
            let b = tx_buf(self.geo.get(), self.host != 0, &self.posted, id);
            header(m, b, src, dst, len);
            m.write(b + l::HDR_SIZE, data);
            if !tail.is_empty() {
                m.write(b + l::HDR_SIZE + data.len(), tail);
            }
            self.put(r, id);
            self.ship(len);
        } else {
            let set = self.reserve(len)?;
            let mut w = self.writer(set, len);
            headers(&w, src, dst);
            // The offsets are inside the message.
            let _ = w.write(0, data).and_then(|()| w.write(data.len(), tail));
            self.commit(set, len);
        }
        Ok(())
    }

    /// Checks that data can go out on `endpoint` (in the order: config, length, binding,
    /// peer); the addresses to send from and to.
    pub fn send_data(&mut self, endpoint: Endpoint, len: usize) -> Result<(u32, u32), Fault> {
        if self.geo.get().num == 0 {
            return Err(Fault::InvalidConfig);
        }
        if len > self.geo.get().max_msg {
            return Err(Fault::TooLarge);
        }
        let e = self.eps[endpoint as usize & 1];
        if !e.ready() {
            return Err(Fault::NotReady);
        }
        self.check_host()?;
        Ok((e.local, e.dest))
    }

    /// The handshake messages still due, in endpoint order; stops quietly on `NoBuffer`.
    /// Host: the throw-away byte on every bound endpoint; remote: the name-service
    /// announcement of every endpoint not announced yet.
    pub(crate) fn greet(&mut self) -> Result<(), Fault> {
        for i in 0..Endpoint::ALL.len() {
            let e = self.eps[i];
            let host = self.host != 0;
            let (src, dst, len, name) = if host {
                // No byte due (this includes unbound).
                if e.local & HELLO == 0 {
                    continue;
                }
                (e.local & !HELLO, e.dest, 1, 0)
            } else {
                if e.local != 0 {
                    continue;
                }
                let a = l::EPT_ADDR_FIRST + i as u32;
                (a, l::NS_ADDR, l::NS_RECORD_SIZE, NAMES[i & 1])
            };
            // The record (name, addr, flags 0), or the byte 0.
            let mut rec = [0u8; l::NS_RECORD_SIZE];
            rec[..4].copy_from_slice(&name.to_le_bytes());
            rec[l::NS_REC_ADDR..l::NS_REC_ADDR + 4].copy_from_slice(&src.to_le_bytes());
            match self.send(src, dst, &rec[..len], &[]) {
                Ok(()) => {}
                Err(Fault::NoBuffer) => return Ok(()),
                Err(e) => return Err(e),
            }
            self.eps[i] = Ep {
                local: src,
                dest: if host { dst } else { l::ADDR_ANY },
            };
        }
        Ok(())
    }

    /// Checks the buffer of receive entry `id` and its header; `Ok` for a data entry (in
    /// [`Core::got`]), `NotReady` for a control message (handled here).
    fn classify(&mut self, r: usize, id: u16) -> Result<(), Fault> {
        let len = self.resolve(r, id, l::HDR_SIZE)? as usize;
        let buf = self.at;
        let m = io!(self);
        let a = m.read_pair(buf + l::HDR_SRC);
        let (src, dst) = (a as u32, (a >> 32) as u32);
        // `len` is the low half of the header's last word (flags in the high half).
        let hlen = m.read_u32(buf + l::HDR_LEN) as u16 as usize;
        if hlen + l::HDR_SIZE > len {
            return Err(self.bad(C::HeaderLength));
        }
        let body = buf + l::HDR_SIZE;
        if self.host != 0 && dst == l::NS_ADDR {
            self.name_service(body, hlen)?;
            return Err(Fault::NotReady);
        }
        for (i, e) in self.eps.iter_mut().enumerate() {
            let ep = if i == 0 { Endpoint::Raw } else { Endpoint::Rpc };
            if e.local != 0 && e.local & !HELLO == dst {
                // The remote learns the host's address from the first message.
                if e.dest == l::ADDR_ANY && src != l::ADDR_ANY {
                    e.dest = src;
                    bump(&mut self.stats.control_received);
                    return Err(Fault::NotReady);
                }
                if e.dest == src {
                    // `hlen` fits a buffer (at most 32 KiB), `id` the ring (at most 64).
                    self.got = Got {
                        len: hlen as u16,
                        id: id as u8,
                        ep,
                    };
                    return Ok(());
                }
            }
        }
        Err(self.bad(C::HeaderAddress))
    }

    /// The receive ring (host: vring0, remote: vring1).
    fn rx(&self) -> usize {
        1 - self.tx()
    }

    /// The receive loop: handles control messages and stops at the first data payload, left
    /// in place ([`Core::got`]; [`Core::take`] consumes it). `NotReady` when there is none
    /// (nothing pending, or the remote still waits for the table).
    #[inline(never)]
    pub fn recv(&mut self) -> Result<(), Fault> {
        self.check_host()?;
        let r = self.rx();
        let mut n = self.pending(r)?;
        while n != 0 {
            n -= 1;
            let id = self.entry(r)?;
            let c = self.classify(r, id);
            if c.is_ok() {
                return c;
            }
            self.release(r, id);
            match c {
                Err(Fault::NotReady) => {}
                c => return c,
            }
        }
        Err(Fault::NotReady)
    }

    /// Consumes the data entry `id` that [`Core::recv`] returned.
    fn take(&mut self, id: u16) {
        bump(&mut self.stats.buffers_received);
        self.release(self.rx(), id);
    }

    /// The payload view of a data entry.
    fn payload(&self, offset: usize, len: usize) -> Payload<'_, P::Memory> {
        Payload {
            mem: self.platform.memory(),
            offset,
            len,
        }
    }

    /// `Transport::poll` of both roles: take returned buffers (host) or look at the table
    /// (remote), send the handshake messages due, handle control messages.
    #[inline(never)]
    pub fn poll(&mut self) -> Result<(), Error> {
        let r = if self.host != 0 {
            self.refill()
        } else {
            self.check_host()
        };
        let r = r.and_then(|()| self.greet()).and_then(|()| self.recv());
        // `NotReady`: the remote waits for the table, or nothing came in (see `recv`).
        let r = match r {
            Err(Fault::NotReady) => Ok(()),
            r => r,
        };
        self.done(r, 0)
    }

    /// `Transport::try_send` of both roles.
    #[inline]
    pub fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error> {
        self.try_send_parts(endpoint, data, &[])
    }

    /// `Transport::try_send_parts` of both roles.
    #[inline(never)]
    pub fn try_send_parts(
        &mut self,
        endpoint: Endpoint,
        data: &[u8],
        tail: &[u8],
    ) -> Result<(), Error> {
        let len = data.len() + tail.len();
        let r = self
            .send_data(endpoint, len)
            .and_then(|(src, dst)| self.send(src, dst, data, tail));
        self.done(r, len)
    }

    /// `Transport::try_recv` of both roles.
    #[inline(never)]
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error> {
        let mut out = None;
        let r = match self.recv() {
            Ok(()) => {
                let got = self.got;
                match buf.get_mut(..got.len as usize) {
                    Some(dst) => {
                        io!(self).read(self.at + l::HDR_SIZE, dst);
                        self.take(got.id as u16);
                        out = Some(Received {
                            endpoint: got.ep,
                            len: dst.len(),
                        });
                        Ok(())
                    }
                    // It stays queued.
                    None => Err(Fault::TooSmall),
                }
            }
            Err(Fault::NotReady) => Ok(()),
            r => r,
        };
        // One instance of `done` for every entry point; the length is the one `TooSmall`
        // reports (no other fault here uses it).
        self.done(r, self.got.len as usize).map(|()| out)
    }

    /// `Transport::try_recv_with` of both roles.
    pub fn try_recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, &dyn PayloadRead) -> (bool, R),
    ) -> Result<Option<R>, Error> {
        let r = match self.recv() {
            Ok(()) => {
                let g = self.got;
                let (consume, out) = f(g.ep, &self.payload(self.at + l::HDR_SIZE, g.len as usize));
                if consume {
                    self.take(g.id as u16);
                }
                Ok(Some(out))
            }
            Err(Fault::NotReady) => Ok(None),
            Err(e) => Err(e),
        };
        self.done(r, 0)
    }

    /// `recv_with` of both roles.
    pub fn recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, Payload<'_, P::Memory>) -> R,
    ) -> Result<Option<R>, Error> {
        let r = match self.recv() {
            Ok(()) => {
                let g = self.got;
                let out = f(g.ep, self.payload(self.at + l::HDR_SIZE, g.len as usize));
                self.take(g.id as u16);
                Ok(Some(out))
            }
            Err(Fault::NotReady) => Ok(None),
            Err(e) => Err(e),
        };
        self.done(r, 0)
    }

    /// `send_with` of both roles.
    pub fn send_with(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        f: impl FnOnce(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Error> {
        let r = self
            .send_data(endpoint, len)
            .and_then(|(src, dst)| self.reserve(len).map(|set| (src, dst, set)))
            .map(|(src, dst, set)| {
                let mut w = self.writer(set, len);
                headers(&w, src, dst);
                f(&mut w);
                self.commit(set, len);
            });
        self.done(r, len)
    }
}

/// Writes the RPMsg header of a buffer at `h` carrying `n` payload bytes (`n < 2^15` by
/// `Config` limits; flags, the upper half of the last word, are 0) as two word pairs.
fn header<M: SharedMemory>(io: Io<'_, M>, h: usize, src: u32, dst: u32, n: usize) {
    io.write_pair(h + l::HDR_SRC, src, dst);
    io.write_pair(h + l::HDR_RESERVED, 0, n as u32);
}

// The header is four adjacent words: src, dst, reserved, len (with flags).
const _: () = assert!(
    l::HDR_DST == l::HDR_SRC + 4
        && l::HDR_RESERVED == l::HDR_SRC + 8
        && l::HDR_LEN == l::HDR_SRC + 12
);

/// Writes the header of every chunk of the message `w` writes.
fn headers<M: SharedMemory>(w: &Writer<'_, M>, src: u32, dst: u32) {
    let per = w.geo.payload();
    let mut left = w.len;
    let mut i = 0;
    while let Some(h) = w.chunk(i) {
        let n = left.min(per);
        header(w.io, h, src, dst, n);
        left -= n;
        i += 1;
    }
}

/// The first word of `"raw"`'s name-service name.
pub(crate) const RAW: u32 = ns_word(Endpoint::Raw.name().as_bytes());
/// The first word of `"rpc"`'s name-service name.
pub(crate) const RPC: u32 = ns_word(Endpoint::Rpc.name().as_bytes());

/// The first name-service word of each endpoint, in [`Endpoint::ALL`] order.
const NAMES: [u32; 2] = [
    ns_word(Endpoint::ALL[0].name().as_bytes()),
    ns_word(Endpoint::ALL[1].name().as_bytes()),
];

/// The first word of a NUL-terminated three-letter name.
pub(crate) const fn ns_word(name: &[u8]) -> u32 {
    u32::from_le_bytes([name[0], name[1], name[2], 0])
}

/// Implements [`Transport`](crate::Transport) for a role type (`Host` or `Remote`) whose field
/// `core` is the shared [`Core`]: both roles forward every method the same way.
macro_rules! transport_via_core {
    ($role:ident) => {
        impl<P: $crate::Platform, C: $crate::Profile> $crate::Transport for $role<P, C> {
            type Platform = P;

            fn platform(&self) -> &P {
                &self.core.platform
            }

            fn poll(&mut self) -> Result<(), $crate::Error> {
                self.core.poll()
            }

            fn is_ready(&self, endpoint: $crate::Endpoint) -> bool {
                self.core.eps[endpoint as usize & 1].ready()
            }

            fn max_message_len(&self) -> usize {
                self.core.geo.get().max_msg
            }

            fn payload_per_buffer(&self) -> usize {
                self.core.geo.get().payload()
            }

            fn try_send(
                &mut self,
                endpoint: $crate::Endpoint,
                data: &[u8],
            ) -> Result<(), $crate::Error> {
                self.core.try_send(endpoint, data)
            }

            fn send(
                &mut self,
                endpoint: $crate::Endpoint,
                data: &[u8],
                deadline: $crate::Instant,
            ) -> Result<(), $crate::Error> {
                $crate::common::send_until(self, endpoint, data, deadline)
            }

            fn try_recv(
                &mut self,
                buf: &mut [u8],
            ) -> Result<Option<$crate::Received>, $crate::Error> {
                self.core.try_recv(buf)
            }

            fn try_send_parts(
                &mut self,
                endpoint: $crate::Endpoint,
                head: &[u8],
                tail: &[u8],
            ) -> Result<(), $crate::Error> {
                self.core.try_send_parts(endpoint, head, tail)
            }

            fn try_recv_with<R>(
                &mut self,
                f: impl FnOnce($crate::Endpoint, &dyn $crate::PayloadRead) -> (bool, R),
            ) -> Result<Option<R>, $crate::Error> {
                self.core.try_recv_with(f)
            }
        }
    };
}
pub(crate) use transport_via_core;
