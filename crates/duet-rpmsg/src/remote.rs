//! The remote role: the virtio device (the M4 in the Arduino profile).

use crate::common::{covers, Bits, Fault, Io, Payload, Stats, Writer};
use crate::config::sealed::Layout;
use crate::config::{layout as l, Config, Profile};
use crate::platform::Platform;
use crate::ring::{bump, Core, NO_EPS};
use crate::transport::{Corruption as C, Endpoint, Error};

/// The remote side (virtio device, the M4): waits for the host's table, announces `"raw"`
/// (0x400) and `"rpc"` (0x401), learns the host's addresses from the first message on each.
///
/// [`Remote::new`] touches nothing; [`Transport::poll`](crate::Transport::poll) (or [`connect`](crate::connect)) does
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
///
/// The profile `C` is a runtime [`Config`] (the default) or a compile-time one such as
/// [`Arduino`](crate::Arduino), whose offsets the compiler folds into the code (smaller).
pub struct Remote<P: Platform, C: Profile = Config> {
    core: Core<P, C::Layout>,
}

impl<P: Platform, C: Profile> Remote<P, C> {
    /// A remote that has not looked at shared memory yet. An invalid `profile` (only a runtime
    /// [`Config`] can be one), or a platform memory smaller than its region, makes every later
    /// call fail with `InvalidConfig`.
    pub fn new(platform: P, profile: C) -> Self {
        Remote {
            core: Core::new(platform, profile.layout().copy(), 0),
        }
    }

    /// Counters of this side.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Whether the host's table was found and the rings are in use.
    pub fn is_running(&self) -> bool {
        self.core.up != 0
    }

    /// Transmit buffers the host has posted and this side has not used (64 when all are back).
    pub fn free_tx_buffers(&mut self) -> Result<usize, Error> {
        let r = self.core.refill();
        self.core.done(r, 0)?;
        Ok(self.core.free_tx())
    }

    /// The host's address for `endpoint`, once learned from its first message.
    pub fn remote_address(&self, endpoint: Endpoint) -> Option<u32> {
        self.core
            .eps
            .get(endpoint as usize)
            .filter(|e| e.local != 0 && e.dest != l::ADDR_ANY)
            .map(|e| e.dest)
    }

    /// Zero-copy receive: calls `f` with the next payload while it is still in its shared
    /// buffer, then returns the buffer to the host. `Ok(None)` when nothing is pending.
    pub fn recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, Payload<'_, P::Memory>) -> R,
    ) -> Result<Option<R>, Error> {
        self.core.recv_with(f)
    }

    /// Sends a message of `len` bytes that `f` writes straight into the shared buffers (the
    /// only copy). Same rules and errors as `try_send`; bytes `f` leaves unwritten are stale.
    pub fn send_with(
        &mut self,
        endpoint: Endpoint,
        len: usize,
        f: impl FnOnce(&mut Writer<'_, P::Memory>),
    ) -> Result<(), Error> {
        self.core.send_with(endpoint, len, f)
    }
}

impl<P: Platform, G: Layout> Core<P, G> {
    /// Forgets the rings and endpoints (the host went away).
    fn forget(&mut self) {
        self.up = 0;
        self.eps = NO_EPS;
        self.seen = [0; 2];
        self.next = [0; 2];
        self.own = [Bits::NONE, Bits::NONE];
    }

    /// Looks at the resource table: starts when it is ready, reports `PeerReset` when it went
    /// away. `Ok` while running (and always for the host), `NotReady` while the table is not
    /// ready yet. Inlined, so that the host's calls are one test.
    #[inline(always)]
    pub(crate) fn check_host(&mut self) -> Result<(), Fault> {
        if self.host != 0 {
            return Ok(());
        }
        self.check_table()
    }

    /// [`Core::check_host`] of the remote.
    #[inline(never)]
    fn check_table(&mut self) -> Result<(), Fault> {
        let g = self.geo.get();
        let m = Io {
            m: self.platform.memory(),
        };
        // A region too small for the layout counts as an invalid config (see `Io`).
        if g.num == 0 || covers(m.m, g).is_err() {
            return Err(Fault::InvalidConfig);
        }
        let da = m.read_u32(g.rsc + l::VRING1_DA);
        // The status byte is the low byte of its (4-aligned) little-endian word.
        let status = m.read_u32(g.rsc + l::VDEV_STATUS);
        let ok =
            da == g.shm_base.wrapping_add(g.ring(1) as u32) && status & l::DRIVER_OK as u32 != 0;
        if self.up != 0 {
            // Re-laid rings: the host zeroed the flag this side set when it started.
            // The low half of the used part's first word (flags, idx).
            let flags = m.read_u32(g.part(0, 1) + l::USED_FLAGS) as u16;
            if !ok || flags & l::VRING_USED_F_NO_NOTIFY == 0 {
                self.forget();
                bump(&mut self.stats.peer_resets);
                return Err(Fault::PeerReset);
            }
            return Ok(());
        }
        if !ok {
            return Err(Fault::NotReady);
        }
        m.fence();
        let v0 = g.rsc + l::VRING0_INFO;
        if m.read_u32(v0 + l::VRING_INFO_DA) != g.shm_base.wrapping_add(g.ring(0) as u32)
            || m.read_u32(v0 + l::VRING_INFO_NUM) != g.num as u32
            || m.read_u32(g.rsc + l::VRING1_INFO + l::VRING_INFO_NUM) != g.num as u32
        {
            return Err(self.bad(C::ResourceTable));
        }
        m.write_u16(g.part(0, 1) + l::USED_FLAGS, l::VRING_USED_F_NO_NOTIFY);
        self.up = 1;
        Ok(())
    }
}

crate::ring::transport_via_core!(Remote);
