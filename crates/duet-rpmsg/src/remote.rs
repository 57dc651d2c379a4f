//! The remote role: the virtio device (the M4 in the Arduino profile).

use core::cell::Cell;

use crate::common::{
    check_header, corrupt, fill_chunks, finish, ids, io, lowest, pending, publish, send_until,
    sent, Bits, Fault, Payload, Stats, Sticky, Writer, NO_FAULT,
};
use crate::config::{layout as l, Config, Geometry};
use crate::host::{copy_out, ns_word};
use crate::platform::{Instant, Platform};
use crate::transport::{Corruption as C, Endpoint, Error, Received, Transport};

/// The remote side (virtio device, the M4): waits for the host's table, announces `"raw"`
/// (0x400) and `"rpc"` (0x401), learns the host's addresses from the first message on each.
///
/// [`Remote::new`] touches nothing; [`Transport::poll`] (or [`connect`](crate::connect)) does
/// the handshake once the table's vring1 `da` matches the config and `DRIVER_OK` is set.
///
/// Reset: every `poll`, `try_send`/`send_with` and `try_recv`/`recv_with` first checks the
/// table. If `DRIVER_OK` is clear, vring1's `da` changed, or vring0's `used.flags` lost the
/// `VRING_USED_F_NO_NOTIFY` bit this side set when it started (the host's layout zeroes the
/// rings, so this marks a re-initialisation that completed between two calls), the call
/// returns `PeerReset` once, forgets the rings and endpoints, and the handshake starts over
/// when the table is back (announce, learn the host's addresses). Nothing is written to shared
/// memory from the detection until the table is ready again.
///
/// Limit: the host must not re-lay the rings while this side is inside a call (its late ring
/// writes would land in the fresh rings); a host on another core therefore uses
/// [`Host::begin_reset`](crate::Host::begin_reset), waits at least one poll period of this side,
/// then [`Host::reinit`](crate::Host::reinit).
pub struct Remote<P: Platform> {
    platform: P,
    /// The validated config (`num == 0` if it was invalid).
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
    /// Descriptors of vring0 the host posted, validated and not used yet (their buffer
    /// addresses are read again, and re-validated, when used).
    held: Bits,
    stats: Stats,
    /// The last refused shared-memory access (for `Error::Memory`).
    oob: Sticky,
}

impl<P: Platform> Remote<P> {
    /// A remote that has not looked at shared memory yet. An invalid `config` makes every
    /// later call fail with `InvalidConfig`.
    pub fn new(platform: P, config: Config) -> Self {
        Remote {
            platform,
            geo: config.geometry(),
            running: false,
            announced: 0,
            dest: [l::ADDR_ANY; 2],
            last_avail: [0; 2],
            used: [0; 2],
            held: Bits::default(),
            stats: Stats::default(),
            oob: Cell::new(NO_FAULT),
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
        Ok(self.held.count())
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
        self.held = Bits::default();
    }

    /// Looks at the resource table: starts when it is ready, reports `PeerReset` when it went
    /// away. `Ok(true)` while running.
    fn check_host(&mut self) -> Result<bool, Fault> {
        let g = &self.geo;
        if g.num == 0 {
            return Err(Fault::InvalidConfig);
        }
        let m = io!(self);
        let da = m.read_u32(g.rsc + l::VRING1_DA);
        // The status byte is the low byte of its (4-aligned) little-endian word.
        let status = m.read_u32(g.rsc + l::VDEV_STATUS);
        let ok =
            da == g.shm_base.wrapping_add(g.ring(1) as u32) && status & l::DRIVER_OK as u32 != 0;
        if self.running {
            // Re-laid rings: the host zeroed the flag this side set when it started.
            let flags = m.read_u16(g.used(0) + l::USED_FLAGS);
            if !ok || flags & l::VRING_USED_F_NO_NOTIFY == 0 {
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
        if m.read_u32(v0 + l::VRING_INFO_DA) != g.shm_base.wrapping_add(g.ring(0) as u32)
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
            let name = ns_word(ep.name().as_bytes());
            match self.send_inner(addr, l::NS_ADDR, l::NS_RECORD_SIZE, &mut |w| {
                for i in 0..l::NS_RECORD_SIZE / 4 {
                    let v = match i {
                        0 => name,
                        8 => addr,
                        _ => 0,
                    };
                    w.put_u32(4 * i, v);
                }
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
            if self.held.has(head) {
                return Err(corrupt(&mut self.stats, C::DescriptorState));
            }
            self.read_desc(0, head, l::VRING_DESC_F_WRITE, self.geo.buf)?;
            self.held.put(head, true);
        }
        Ok(())
    }

    fn send_data(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        fill: &mut dyn FnMut(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Fault> {
        if self.geo.num == 0 {
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
        let Some(set) = lowest(self.held.get(), k) else {
            self.stats.no_buffer = self.stats.no_buffer.wrapping_add(1);
            return Err(Fault::NoBuffer);
        };
        let mut w = Writer {
            io: io!(self),
            geo: &self.geo,
            ids: set,
            host: false,
            len,
        };
        fill_chunks(&mut w, src, dst, fill);
        for id in ids(set) {
            self.give(0, id);
            self.held.put(id, false);
        }
        let idx = self.geo.used(0) + l::USED_IDX;
        sent(
            &self.platform,
            &self.oob,
            &mut self.stats,
            idx,
            self.used[0],
            k,
        );
        Ok(())
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
        self.geo.payload()
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
