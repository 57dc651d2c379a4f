//! The wire profile ([`Config`]) and the named offsets and values of the layout ([`layout`]).

use crate::transport::Error;

/// Named offsets and values of the shared-memory layout (spec `arduino-rpc-wire.md` §1).
///
/// Offsets of resource-table fields are relative to the table's start; ring offsets are relative
/// to the ring's start; header offsets are relative to the buffer's start. All fields are
/// little-endian.
pub mod layout {
    /// Address of the shared region (SRAM4) as the firmware sees it.
    pub const SHM_BASE: u32 = 0x3800_0000;
    /// Size of the shared region in bytes (64 KiB).
    pub const SHM_SIZE: u32 = 0x1_0000;
    /// Resource table address (`SHM_RSC_ADDR`).
    pub const RSC_TABLE_ADDR: u32 = 0x3800_0000;
    /// Bytes the host zeroes at the resource table before writing it.
    pub const RSC_TABLE_AREA: usize = 1024;
    /// Start of the OpenAMP region; `desc.addr` is an offset from this address.
    pub const DA_BASE: u32 = 0x3800_0400;
    /// vring0 (M4 -> M7, the host's receive ring).
    pub const VRING0_ADDR: u32 = 0x3800_1400;
    /// vring1 (M7 -> M4, the host's transmit ring).
    pub const VRING1_ADDR: u32 = 0x3800_0400;
    /// Buffer pool start; the host's 64 receive buffers come first.
    pub const POOL_ADDR: u32 = 0x3800_2400;
    /// First host transmit buffer.
    pub const HOST_TX_POOL_ADDR: u32 = 0x3800_A400;
    /// Host transmit buffers at most.
    pub const HOST_TX_BUFFERS: u16 = 46;
    /// Descriptors per ring.
    pub const NUM_DESCRIPTORS: u16 = 64;
    /// Ring alignment (the used ring starts at the next multiple).
    pub const VRING_ALIGN: u32 = 32;
    /// Size of one buffer (`RPMSG_BUFFER_SIZE`).
    pub const BUFFER_SIZE: u32 = 512;
    /// Payload bytes per buffer (buffer minus header).
    pub const PAYLOAD_PER_BUFFER: usize = 496;

    /// Resource table: `version` (u32, value 1).
    pub const RSC_VERSION: usize = 0;
    /// Resource table: `num` entries (u32, value 1).
    pub const RSC_NUM: usize = 4;
    /// Resource table: `reserved[2]` (u32 each, 0).
    pub const RSC_RESERVED: usize = 8;
    /// Resource table: `offset[0]` (u32, value 24), then `offset[1]` (0) at 20.
    pub const RSC_OFFSET0: usize = 16;
    /// Resource table: `offset[1]` (u32, 0).
    pub const RSC_OFFSET1: usize = 20;
    /// Resource table: the vdev entry's `type` (u32, [`RSC_VDEV`]).
    pub const VDEV_TYPE: usize = 24;
    /// Resource table: vdev `id` (u32, [`VIRTIO_ID_RPMSG`]).
    pub const VDEV_ID: usize = 28;
    /// Resource table: vdev `notifyid` (u32, 0).
    pub const VDEV_NOTIFYID: usize = 32;
    /// Resource table: vdev `dfeatures` (u32, [`FEATURES`]).
    pub const VDEV_DFEATURES: usize = 36;
    /// Resource table: vdev `gfeatures` (u32, [`FEATURES`]).
    pub const VDEV_GFEATURES: usize = 40;
    /// Resource table: vdev `config_len` (u32, 0).
    pub const VDEV_CONFIG_LEN: usize = 44;
    /// Resource table: vdev `status` (u8; [`DRIVER_OK`] written last).
    pub const VDEV_STATUS: usize = 48;
    /// Resource table: vdev `num_of_vrings` (u8, 2).
    pub const VDEV_NUM_VRINGS: usize = 49;
    /// Resource table: vring0 descriptor {da, align, num, notifyid, reserved} (5 x u32).
    pub const VRING0_INFO: usize = 52;
    /// Resource table: vring1 descriptor {da, align, num, notifyid, reserved} (5 x u32).
    pub const VRING1_INFO: usize = 72;
    /// Within a vring descriptor of the table: `da`.
    pub const VRING_INFO_DA: usize = 0;
    /// Within a vring descriptor of the table: `align`.
    pub const VRING_INFO_ALIGN: usize = 4;
    /// Within a vring descriptor of the table: `num`.
    pub const VRING_INFO_NUM: usize = 8;
    /// Within a vring descriptor of the table: `notifyid`.
    pub const VRING_INFO_NOTIFYID: usize = 12;
    /// Table offset of the vring1 `da` the M4 spins on (0x38000048).
    pub const VRING1_DA: usize = VRING1_INFO + VRING_INFO_DA;

    /// Resource table version.
    pub const RSC_TABLE_VERSION: u32 = 1;
    /// Resource type of a virtio device entry.
    pub const RSC_VDEV: u32 = 3;
    /// Virtio device id of RPMsg.
    pub const VIRTIO_ID_RPMSG: u32 = 7;
    /// Feature word: only `1 << VIRTIO_RPMSG_F_NS` (name service).
    pub const FEATURES: u32 = 1;
    /// Virtio status bit `DRIVER_OK`.
    pub const DRIVER_OK: u8 = 4;
    /// Number of vrings.
    pub const NUM_VRINGS: u8 = 2;

    /// Size of a descriptor {u64 addr, u32 len, u16 flags, u16 next}.
    pub const DESC_SIZE: usize = 16;
    /// Descriptor: `addr` (u64).
    pub const DESC_ADDR: usize = 0;
    /// Descriptor: `len` (u32).
    pub const DESC_LEN: usize = 8;
    /// Descriptor: `flags` (u16).
    pub const DESC_FLAGS: usize = 12;
    /// Descriptor: `next` (u16).
    pub const DESC_NEXT: usize = 14;
    /// Descriptor flag: chained to `next`.
    pub const VRING_DESC_F_NEXT: u16 = 1;
    /// Descriptor flag: device writes the buffer.
    pub const VRING_DESC_F_WRITE: u16 = 2;
    /// Descriptor flag: indirect table.
    pub const VRING_DESC_F_INDIRECT: u16 = 4;
    /// `next` of the last descriptor after the driver chains them (OpenAMP's chain end).
    pub const DESC_CHAIN_END: u16 = 0x8000;
    /// Avail ring: `flags` (u16).
    pub const AVAIL_FLAGS: usize = 0;
    /// Avail ring: `idx` (u16).
    pub const AVAIL_IDX: usize = 2;
    /// Avail ring: `ring[]` (u16 each).
    pub const AVAIL_RING: usize = 4;
    /// Used ring: `flags` (u16).
    pub const USED_FLAGS: usize = 0;
    /// Used ring: `idx` (u16).
    pub const USED_IDX: usize = 2;
    /// Used ring: `ring[]` of {u32 id, u32 len}.
    pub const USED_RING: usize = 4;
    /// Size of a used element.
    pub const USED_ELEM_SIZE: usize = 8;
    /// Avail flag set by the host on vring1: do not interrupt on used buffers.
    pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
    /// Used flag set by the remote on vring0: do not notify on avail buffers.
    pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
    /// Offset of the avail ring in a 64-entry ring.
    pub const AVAIL_OFFSET: usize = 0x400;
    /// Offset of the used ring in a 64-entry ring aligned to 32.
    pub const USED_OFFSET: usize = 0x4A0;
    /// Bytes of a 64-entry ring aligned to 32.
    pub const VRING_SIZE: usize = 1702;

    /// RPMsg header size {u32 src, u32 dst, u32 reserved, u16 len, u16 flags}.
    pub const HDR_SIZE: usize = 16;
    /// Header: `src`.
    pub const HDR_SRC: usize = 0;
    /// Header: `dst`.
    pub const HDR_DST: usize = 4;
    /// Header: `reserved` (0).
    pub const HDR_RESERVED: usize = 8;
    /// Header: `len` (u16).
    pub const HDR_LEN: usize = 12;
    /// Header: `flags` (u16, 0).
    pub const HDR_FLAGS: usize = 14;

    /// Name-service address.
    pub const NS_ADDR: u32 = 0x35;
    /// Name-service record size: `char name[32]`, u32 addr, u32 flags.
    pub const NS_RECORD_SIZE: usize = 40;
    /// Name field length (NUL-padded).
    pub const NS_NAME_LEN: usize = 32;
    /// Record: `addr`.
    pub const NS_REC_ADDR: usize = 32;
    /// Record: `flags`.
    pub const NS_REC_FLAGS: usize = 36;
    /// NS flag: endpoint created.
    pub const NS_CREATE: u32 = 0;
    /// NS flag: endpoint destroyed.
    pub const NS_DESTROY: u32 = 1;
    /// Address of the first endpoint (`"raw"` on the remote; first bound on the host).
    pub const EPT_ADDR_FIRST: u32 = 0x400;
    /// Addresses below this are reserved (RPMsg `RPMSG_RESERVED_ADDRESSES`).
    pub const RESERVED_ADDRESSES: u32 = 1024;
    /// `RPMSG_ADDR_ANY`.
    pub const ADDR_ANY: u32 = 0xFFFF_FFFF;

    /// Offset of the avail ring in a ring of `num` descriptors.
    pub const fn avail_offset(num: usize) -> usize {
        DESC_SIZE * num
    }

    /// Offset of the used ring in a ring of `num` descriptors with alignment `align` (a power of two).
    pub const fn used_offset(num: usize, align: usize) -> usize {
        (avail_offset(num) + AVAIL_RING + 2 * num + 2 + align - 1) & !(align - 1)
    }

    /// Bytes of a ring of `num` descriptors with alignment `align`.
    pub const fn vring_size(num: usize, align: usize) -> usize {
        used_offset(num, align) + USED_RING + USED_ELEM_SIZE * num + 2
    }
}

/// Largest ring size supported (descriptor sets are kept in `u64` bitmaps).
pub const MAX_DESCRIPTORS: u16 = 64;

/// The wire profile: where everything lives and how large it is.
///
/// Addresses are as the firmware sees them; the [`SharedMemory`](crate::SharedMemory) offset 0
/// corresponds to `shm_base`. Limits (checked by [`Host::new`](crate::Host::new), and by
/// [`Remote`](crate::Remote)'s first poll): `num_descriptors` a power of two up to 64,
/// `buffer_size` a power of two from 64 (a name-service record must fit) up to 32 KiB, `vring_align` a power of two from 4,
/// everything inside the region and 4-aligned, `host_tx_buffers <= num_descriptors`, and
/// `max_message_len` fitting in the buffers one side can have in flight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// Address of shared-memory offset 0 (0x3800_0000).
    pub shm_base: u32,
    /// Size of the shared region in bytes (0x10000).
    pub region_size: u32,
    /// Offset of the resource table in the region (0).
    pub rsc_table_offset: u32,
    /// `desc.addr` is `buffer address - da_base` (0x3800_0400).
    pub da_base: u32,
    /// vring0, remote -> host (0x3800_1400).
    pub vring0_addr: u32,
    /// vring1, host -> remote (0x3800_0400).
    pub vring1_addr: u32,
    /// Descriptors per ring (64).
    pub num_descriptors: u16,
    /// Ring alignment (32).
    pub vring_align: u32,
    /// Bytes per buffer, header included (512).
    pub buffer_size: u32,
    /// Buffer pool start; the host's receive buffers are the first `num_descriptors` (0x3800_2400).
    /// Every buffer the remote accepts must lie between here and the region's end.
    pub pool_addr: u32,
    /// First host transmit buffer (0x3800_A400).
    pub host_tx_pool_addr: u32,
    /// Host transmit buffers at most (46).
    pub host_tx_buffers: u16,
    /// Largest message accepted by `try_send` (496 = one buffer). Larger values make messages
    /// span consecutive buffers.
    pub max_message_len: usize,
}

impl Config {
    /// The Arduino / MicroPython profile of the spec (one buffer per message).
    pub const fn arduino() -> Self {
        Config {
            shm_base: layout::SHM_BASE,
            region_size: layout::SHM_SIZE,
            rsc_table_offset: 0,
            da_base: layout::DA_BASE,
            vring0_addr: layout::VRING0_ADDR,
            vring1_addr: layout::VRING1_ADDR,
            num_descriptors: layout::NUM_DESCRIPTORS,
            vring_align: layout::VRING_ALIGN,
            buffer_size: layout::BUFFER_SIZE,
            pool_addr: layout::POOL_ADDR,
            host_tx_pool_addr: layout::HOST_TX_POOL_ADDR,
            host_tx_buffers: layout::HOST_TX_BUFFERS,
            max_message_len: layout::PAYLOAD_PER_BUFFER,
        }
    }

    /// Payload bytes per buffer (`buffer_size - 16`).
    pub const fn payload_per_buffer(&self) -> usize {
        (self.buffer_size as usize).saturating_sub(layout::HDR_SIZE)
    }

    /// Checks the limits listed on [`Config`]; `Err(Error::InvalidConfig)` if one fails.
    pub fn validate(&self) -> Result<(), Error> {
        match self.geometry().num {
            0 => Err(Error::InvalidConfig),
            _ => Ok(()),
        }
    }

    /// The region offsets of this config; `num == 0` if it breaks a limit (then only `buf`
    /// and `max_msg` are meaningful). One pass with no early exit, so the result is written
    /// straight into the caller's slot. A `const fn`: the [`Arduino`] profile is computed at
    /// compile time; always inlined, so a constant runtime config folds too.
    #[inline(always)]
    pub(crate) const fn geometry(&self) -> Geometry {
        let num = self.num_descriptors;
        let tx = self.host_tx_buffers;
        let n = num as usize;
        let align = self.vring_align as usize;
        let buf = self.buffer_size as usize;
        // Powers of two (0 passes here; the ranges exclude it): num in 1..=64, align >= 4,
        // buf in 64..=0x8000; then `tx <= num`.
        let pow2 =
            (n & n.wrapping_sub(1)) | (align & align.wrapping_sub(1)) | (buf & buf.wrapping_sub(1));
        let mut ok = pow2 == 0
            && n.wrapping_sub(1) < MAX_DESCRIPTORS as usize
            && align >= 4
            && buf.wrapping_sub(64) <= 0x8000 - 64
            && tx <= num;
        let (used, ring_len) = if ok {
            (layout::used_offset(n, align), layout::vring_size(n, align))
        } else {
            (0, 0)
        };
        let size = self.region_size as usize;
        let base = self.shm_base;
        let rsc = base.checked_add(self.rsc_table_offset);
        ok &= rsc.is_some();
        let rsc_addr = match rsc {
            Some(a) => a,
            None => 0,
        };
        // Each area: region offset 4-aligned, `len` bytes inside the region.
        let areas = [
            (rsc_addr, layout::RSC_TABLE_AREA),
            (self.vring0_addr, ring_len),
            (self.vring1_addr, ring_len),
            (self.pool_addr, buf.wrapping_mul(n)),
            (self.host_tx_pool_addr, buf.wrapping_mul(tx as usize)),
        ];
        let mut o = [0usize; 5];
        let mut i = 0;
        while i < 5 {
            let (addr, len) = areas[i];
            let x = addr.wrapping_sub(base) as usize;
            ok &= addr >= base && x & 3 == 0 && x <= size && len <= size - x;
            o[i] = x;
            i += 1;
        }
        let [rsc, r0, r1, pool, txp] = o;
        let da = self.da_base.wrapping_sub(base) as usize;
        let tx_max = if tx > 1 { tx as usize } else { 1 };
        // The last: ceil(max / payload) <= max(tx, 1), as a product (exact when `ok`).
        ok &= self.da_base >= base
            && txp >= pool
            && txp.wrapping_sub(pool) & buf.wrapping_sub(1) == 0
            && da <= pool
            && self.max_message_len <= tx_max.wrapping_mul(buf.wrapping_sub(layout::HDR_SIZE));
        Geometry {
            num: if ok { num } else { 0 },
            tx_count: tx,
            shm_base: base,
            align: self.vring_align,
            rsc,
            ring: [r0, r1],
            used,
            ring_len,
            buf,
            pool,
            end: size,
            da,
            tx: txp,
            max_msg: self.max_message_len,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::arduino()
    }
}

/// How a role learns its layout: a profile fixed at compile time ([`Arduino`]: its offsets
/// become constants in the code and its validation happens in `const` evaluation) or a runtime
/// [`Config`] (validated when the role is created, kept in the role). Sealed: only these two.
pub trait Profile: sealed::Sealed {}

/// The Arduino / MicroPython profile as a compile-time constant (the same layout as
/// [`Config::arduino()`]); `Host::new(platform, Arduino)` gives a `Host<_, Arduino>`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Arduino;

impl Profile for Arduino {}
impl Profile for Config {}

pub(crate) use sealed::Geometry;

/// The Arduino layout, computed and checked at compile time.
const ARDUINO: Geometry = {
    let g = Config::arduino().geometry();
    assert!(g.num != 0, "the Arduino profile breaks a Config limit");
    g
};

pub(crate) mod sealed {
    use super::{div_ceil, layout, Arduino, Config, ARDUINO};

    /// A validated [`Config`] as region offsets. Ring `r` is vring`r` (0: remote -> host, 1: host
    /// -> remote); `num == 0` marks an invalid config.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Geometry {
        pub num: u16,
        pub tx_count: u16,
        pub shm_base: u32,
        pub align: u32,
        pub rsc: usize,
        /// Descriptor table offset of vring0 and vring1.
        pub ring: [usize; 2],
        /// Offset of the used ring within a ring.
        pub used: usize,
        pub ring_len: usize,
        pub buf: usize,
        /// Buffer pool start (the host's receive buffers) and the region's end.
        pub pool: usize,
        pub end: usize,
        pub da: usize,
        /// First buffer of the host's transmit pool.
        pub tx: usize,
        pub max_msg: usize,
    }

    impl Geometry {
        /// A copy made field by field (each a word move): a whole-struct copy becomes a call to
        /// `memcpy`, which would otherwise not be linked at all.
        pub fn copy_words(&self) -> Geometry {
            Geometry {
                num: self.num,
                tx_count: self.tx_count,
                shm_base: self.shm_base,
                align: self.align,
                rsc: self.rsc,
                ring: [self.ring[0], self.ring[1]],
                used: self.used,
                ring_len: self.ring_len,
                buf: self.buf,
                pool: self.pool,
                end: self.end,
                da: self.da,
                tx: self.tx,
                max_msg: self.max_msg,
            }
        }

        /// Offset of ring `r` (0 or 1; only the low bit counts).
        #[inline(always)]
        pub fn ring(&self, r: usize) -> usize {
            // Arithmetic, not an indexed load (no table for a compile-time profile).
            self.ring[1]
                .wrapping_add(((r & 1) ^ 1).wrapping_mul(self.ring[0].wrapping_sub(self.ring[1])))
        }

        /// Descriptor `i` of ring `r`.
        #[inline(always)]
        pub fn desc(&self, r: usize, i: u16) -> usize {
            self.ring(r) + layout::DESC_SIZE * i as usize
        }

        /// Part `p` of ring `r`: its avail ring (`p == 0`) or its used ring.
        #[inline(always)]
        pub fn part(&self, r: usize, p: usize) -> usize {
            self.ring(r)
                + if p != 0 {
                    self.used
                } else {
                    layout::DESC_SIZE * self.num as usize
                }
        }

        /// The `idx` field of part `p` of ring `r`.
        #[inline(always)]
        pub fn idx(&self, r: usize, p: usize) -> usize {
            self.part(r, p) + layout::AVAIL_IDX
        }

        /// The entry of free-running index `idx` in part `p` of ring `r` (2 bytes in the avail
        /// ring, 8 in the used ring).
        #[inline(always)]
        pub fn slot(&self, r: usize, p: usize, idx: u16) -> usize {
            self.part(r, p)
                + layout::AVAIL_RING
                + (((idx & self.num.wrapping_sub(1)) as usize) << (1 + 2 * (p & 1)))
        }

        /// The host buffer of descriptor `id` of ring `r` (receive pool for 0, transmit pool for 1).
        #[inline(always)]
        pub fn host_buf(&self, r: usize, id: u16) -> usize {
            (if r & 1 == 0 { self.pool } else { self.tx }) + id as usize * self.buf
        }

        /// Payload bytes per buffer.
        #[inline(always)]
        pub fn payload(&self) -> usize {
            self.buf.saturating_sub(layout::HDR_SIZE)
        }

        /// Region offset of a buffer from a descriptor address, if inside the pool and aligned.
        #[inline(always)]
        pub fn buffer_at(&self, lo: u32, hi: u32) -> Option<usize> {
            let o = self.da.checked_add(lo as usize)?;
            (hi == 0
                && o >= self.pool
                && (o - self.pool) & (self.buf - 1) == 0
                && o.checked_add(self.buf)? <= self.end)
                .then_some(o)
        }

        /// Number of buffers a message of `len` bytes needs (at least one).
        #[inline(always)]
        pub fn chunks(&self, len: usize) -> usize {
            div_ceil(len, self.payload()).unwrap_or(usize::MAX)
        }
    }

    /// The layout a role keeps: nothing for a compile-time profile, the offsets otherwise.
    pub trait Layout {
        /// The offsets (`num == 0` if the config was invalid).
        fn get(&self) -> &Geometry;
        /// A copy made word by word (a whole-struct copy would link `memcpy`).
        fn copy(&self) -> Self;
    }

    /// What a profile turns into when a role is created.
    pub trait Sealed {
        /// The layout the role keeps.
        type Layout: Layout;
        /// The layout of this profile.
        fn layout(&self) -> Self::Layout;
    }

    impl Layout for Geometry {
        #[inline(always)]
        fn get(&self) -> &Geometry {
            self
        }
        #[inline(always)]
        fn copy(&self) -> Self {
            self.copy_words()
        }
    }

    impl Layout for Arduino {
        #[inline(always)]
        fn get(&self) -> &Geometry {
            &ARDUINO
        }
        #[inline(always)]
        fn copy(&self) -> Self {
            Arduino
        }
    }

    impl Sealed for Config {
        type Layout = Geometry;
        #[inline(always)]
        fn layout(&self) -> Geometry {
            self.geometry()
        }
    }

    impl Sealed for Arduino {
        type Layout = Arduino;
        #[inline(always)]
        fn layout(&self) -> Arduino {
            Arduino
        }
    }
}

/// `ceil(len / per)`, at least 1; `None` if `per` is 0 (no panic path).
pub(crate) fn div_ceil(len: usize, per: usize) -> Option<usize> {
    let q = len.checked_div(per)?;
    Some(if q.checked_mul(per)? < len || q == 0 {
        q + 1
    } else {
        q
    })
}
