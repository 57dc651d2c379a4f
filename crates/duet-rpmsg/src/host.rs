//! The host role: the virtio driver (the M7 in the Arduino profile).

use crate::common::{covers, Fault};
use crate::common::{Bits, Io, Payload, Stats, Writer};
use crate::config::sealed::Layout;
use crate::config::{layout as l, Config, Profile};
use crate::platform::{Platform, SharedMemory};
use crate::ring::{bump, desc_flags, put_desc, Core, Ep, HELLO, NO_EPS, RAW, RPC};
use crate::transport::{Corruption as C, Endpoint, Error};

/// The host side (virtio driver, the M7): owns the resource table and the rings' driver halves.
///
/// Created with [`Host::new`], which lays out the shared memory; then [`Transport::poll`](crate::Transport::poll) binds
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
///
/// The profile `C` is a runtime [`Config`] (the default) or a compile-time one such as
/// [`Arduino`](crate::Arduino), whose offsets the compiler folds into the code (smaller).
pub struct Host<P: Platform, C: Profile = Config> {
    core: Core<P, C::Layout>,
}

impl<P: Platform, C: Profile> Host<P, C> {
    /// Validates `profile` (a [`Config`] at run time; [`Arduino`](crate::Arduino) at compile
    /// time), then zeroes and writes the resource table and both rings, pre-posts the receive
    /// buffers and sets `DRIVER_OK` last. `InvalidConfig` or `Memory` on failure.
    pub fn new(platform: P, profile: C) -> Result<Self, Error> {
        let geo = profile.layout();
        if geo.get().num == 0 {
            return Err(Error::InvalidConfig);
        }
        // Once here: the region then holds every offset the roles use (see `Io`).
        covers(platform.memory(), geo.get())?;
        lay_out(
            Io {
                m: platform.memory(),
            },
            &geo,
        );
        // Built as the result directly (no move of the whole struct afterwards).
        Ok(Host {
            core: Core::new(platform, geo.copy(), 1),
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
        let c = &mut self.core;
        let m = Io {
            m: c.platform.memory(),
        };
        m.write(c.geo.get().rsc + l::VDEV_STATUS, &[0]);
        m.fence();
        c.eps = NO_EPS;
        c.up = 0;
        c.done(Ok(()), 0)
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
        self.core.reinit();
        self.core.done(Ok(()), 0)
    }

    /// Counters of this side.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Transmit buffers free right now (after reclaiming returned ones); the pool is full when
    /// this equals `host_tx_buffers` (46).
    pub fn free_tx_buffers(&mut self) -> Result<usize, Error> {
        let r = self.core.refill();
        self.core.done(r, 0)?;
        Ok(self.core.free_tx())
    }

    /// Receive buffers currently posted to the remote (`num_descriptors` when none is held).
    pub fn rx_buffers_posted(&self) -> usize {
        self.core.geo.get().num as usize - self.core.own[0].count()
    }

    /// The local address of `endpoint` (0x400 or 0x401 in announcement order), if bound.
    pub fn local_address(&self, endpoint: Endpoint) -> Option<u32> {
        self.ep(endpoint).map(|e| e.local & !HELLO)
    }

    /// The remote's address of `endpoint`, if bound.
    pub fn remote_address(&self, endpoint: Endpoint) -> Option<u32> {
        self.ep(endpoint).map(|e| e.dest)
    }

    /// Zero-copy receive: calls `f` with the next payload while it is still in its shared
    /// buffer, then re-posts the buffer. `Ok(None)` when nothing is pending.
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

    /// The binding of `endpoint`, if bound.
    fn ep(&self, endpoint: Endpoint) -> Option<&Ep> {
        self.core
            .eps
            .get(endpoint as usize)
            .filter(|e| e.local != 0)
    }
}

impl<P: Platform, G: Layout> Core<P, G> {
    /// Lays everything out and resets the host's state (see [`Host::reinit`]).
    fn reinit(&mut self) {
        let m = Io {
            m: self.platform.memory(),
        };
        lay_out(m, &self.geo);
        self.eps = NO_EPS;
        self.seen = [0; 2];
        self.next = [self.geo.get().num, 0];
        self.own = [Bits::NONE, Bits::first(self.geo.get().tx_count)];
        self.up = 1;
    }

    /// Handles a name-service record of `len` bytes at `off`.
    #[inline(never)]
    pub(crate) fn name_service(&mut self, off: usize, len: usize) -> Result<(), Fault> {
        let m = Io {
            m: self.platform.memory(),
        };
        // The first word identifies the name: "raw\0" and "rpc\0" carry their NUL, so any
        // other first word (an unterminated name included) is an unknown service, ignored.
        let name = m.read_u32(off);
        let a = m.read_pair(off + l::NS_REC_ADDR);
        let (addr, flags) = (a as u32, (a >> 32) as u32);
        if len != l::NS_RECORD_SIZE
            || flags > l::NS_DESTROY
            || addr < l::RESERVED_ADDRESSES
            || addr == l::ADDR_ANY
        {
            return Err(self.bad(C::NameService));
        }
        let ep = if name == RAW {
            Endpoint::Raw
        } else if name == RPC {
            Endpoint::Rpc
        } else {
            bump(&mut self.stats.ns_ignored);
            return Ok(());
        };
        bump(&mut self.stats.control_received);
        let other = self
            .eps
            .get(1 - ep as usize)
            .map_or(0, |e| e.local & !HELLO);
        let Some(e) = self.eps.get_mut(ep as usize) else {
            return Ok(());
        };
        if flags == l::NS_DESTROY {
            // A bound endpoint's `dest` is a valid address (never 0, unlike an unbound one's).
            if e.dest == addr {
                *e = Ep::default();
            } else {
                bump(&mut self.stats.ns_ignored);
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
        e.local |= HELLO;
        e.dest = addr;
        self.greet()?;
        if rebound {
            bump(&mut self.stats.peer_resets);
            return Err(Fault::PeerReset);
        }
        Ok(())
    }
}

crate::ring::transport_via_core!(Host);

/// Lays out the resource table and both rings: clears `DRIVER_OK` first, posts every receive
/// buffer, sets `DRIVER_OK` last.
#[inline(never)]
fn lay_out<M: SharedMemory, G: Layout>(m: Io<'_, M>, geo: &G) {
    let g = geo.get();
    // The status byte shares its word with `num_of_vrings` (constant) and two reserved bytes.
    let status = g.rsc + l::VDEV_STATUS;
    m.write_u32(status, STATUS_WORD);
    m.fence();
    zero(m, g.rsc, l::RSC_TABLE_AREA);
    // Fields not listed stay 0 (notifyid of vdev and vring0, config_len, offset[1]).
    for &(off, v) in RSC_WORDS.iter() {
        m.write_u32(g.rsc + off as usize, v as u32);
    }
    for r in 0..2 {
        let info = g.rsc + l::VRING0_INFO + r * (l::VRING1_INFO - l::VRING0_INFO);
        m.write_pair(
            info + l::VRING_INFO_DA,
            g.shm_base.wrapping_add(g.ring(r) as u32),
            g.align,
        );
        m.write_u32(info + l::VRING_INFO_NUM, g.num as u32);
        zero(m, g.ring(r), g.ring_len);
    }
    // vring0's descriptors are posted as a re-post does (buffer, flags and next, avail slot);
    // vring1's get their flags and next (one word).
    for i in 0..g.num {
        let link = put_desc(m, g, 0, i, i);
        m.write_u32(g.desc(1, i) + l::DESC_FLAGS, desc_flags(1) as u32 | link);
    }
    m.write_u16(g.part(1, 0) + l::AVAIL_FLAGS, l::VRING_AVAIL_F_NO_INTERRUPT);
    m.fence();
    m.write_u16(g.idx(0, 0), g.num);
    m.fence();
    m.write_u32(status, STATUS_WORD | l::DRIVER_OK as u32);
    m.fence();
}

// Flags and next of a descriptor form its last word.
const _: () = assert!(l::DESC_NEXT == l::DESC_FLAGS + 2 && l::DESC_FLAGS.is_multiple_of(4));
// A name-service record's address and flags are adjacent words.
const _: () = assert!(l::NS_REC_FLAGS == l::NS_REC_ADDR + 4);
// A vring's `da` and `align` are adjacent words.
const _: () = assert!(l::VRING_INFO_ALIGN == l::VRING_INFO_DA + 4);
// The status byte is the low byte of a word.
const _: () = assert!(l::VDEV_NUM_VRINGS == l::VDEV_STATUS + 1 && l::VDEV_STATUS.is_multiple_of(4));

/// The vdev word holding `status` (0 here) and `num_of_vrings`.
const STATUS_WORD: u32 = (l::NUM_VRINGS as u32) << 8;

/// Zeroes `len` bytes at `off` (both 2-aligned), half-word by half-word (only at layout time;
/// one store width keeps the loop small).
fn zero<M: SharedMemory>(m: Io<'_, M>, off: usize, len: usize) {
    // An end address rather than a count: one register less in the loop.
    let (mut a, end) = (off, off.saturating_add(len));
    while a < end {
        m.write_u16(a, 0);
        a += 2;
    }
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
