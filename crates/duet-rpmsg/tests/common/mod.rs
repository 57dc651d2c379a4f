//! Test doubles: a single-threaded shared region and platform with a fake clock.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use duet_rpmsg::{
    Config, Endpoint, Error, Host, Instant, OutOfBounds, Platform, Profile, Remote, SharedMemory,
    Transport,
};

/// A region of `size` bytes behind a `RefCell` (one thread; both roles share it via `Rc`).
pub struct Mem {
    bytes: RefCell<Vec<u8>>,
}

impl Mem {
    pub fn new(size: usize) -> Rc<Mem> {
        Rc::new(Mem {
            bytes: RefCell::new(vec![0; size]),
        })
    }
    fn check(&self, offset: usize, len: usize, align: usize) -> Result<(), OutOfBounds> {
        let ok = offset.is_multiple_of(align)
            && offset
                .checked_add(len)
                .is_some_and(|e| e <= self.bytes.borrow().len());
        if ok {
            Ok(())
        } else {
            Err(OutOfBounds { offset, len })
        }
    }
    /// Test helpers (panic on bad offsets: these are the test's own accesses).
    pub fn u8(&self, off: usize) -> u8 {
        self.bytes.borrow()[off]
    }
    pub fn u16(&self, off: usize) -> u16 {
        self.read_u16(off).unwrap()
    }
    pub fn u32(&self, off: usize) -> u32 {
        self.read_u32(off).unwrap()
    }
    pub fn u64(&self, off: usize) -> u64 {
        self.u32(off) as u64 | (self.u32(off + 4) as u64) << 32
    }
    pub fn set8(&self, off: usize, v: u8) {
        self.bytes.borrow_mut()[off] = v;
    }
    pub fn set16(&self, off: usize, v: u16) {
        self.write_u16(off, v).unwrap()
    }
    pub fn set32(&self, off: usize, v: u32) {
        self.write_u32(off, v).unwrap()
    }
    pub fn bytes(&self, off: usize, len: usize) -> Vec<u8> {
        self.bytes.borrow()[off..off + len].to_vec()
    }
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }
}

impl SharedMemory for Mem {
    fn size(&self) -> usize {
        self.bytes.borrow().len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, buf.len(), 1)?;
        buf.copy_from_slice(&self.bytes.borrow()[offset..offset + buf.len()]);
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, data.len(), 1)?;
        self.bytes.borrow_mut()[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
        self.check(offset, 2, 2)?;
        let b = self.bytes.borrow();
        Ok(u16::from_le_bytes([b[offset], b[offset + 1]]))
    }
    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
        self.check(offset, 2, 2)?;
        self.bytes.borrow_mut()[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        self.check(offset, 4, 4)?;
        let b = self.bytes.borrow();
        Ok(u32::from_le_bytes(
            b[offset..offset + 4].try_into().unwrap(),
        ))
    }
    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        self.check(offset, 4, 4)?;
        self.bytes.borrow_mut()[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn fence(&self) {}
}

/// One side's platform: the shared region, a doorbell counter and a fake clock shared by both.
#[derive(Clone)]
pub struct Plat {
    pub mem: Rc<Mem>,
    pub clock: Rc<Cell<u64>>,
    /// Rings of this side's doorbell (to the peer).
    pub rings: Rc<Cell<u32>>,
}

impl Plat {
    pub fn new(mem: &Rc<Mem>, clock: &Rc<Cell<u64>>) -> Plat {
        Plat {
            mem: mem.clone(),
            clock: clock.clone(),
            rings: Rc::new(Cell::new(0)),
        }
    }
}

impl Platform for Plat {
    type Memory = Mem;
    fn memory(&self) -> &Mem {
        &self.mem
    }
    fn notify(&self) {
        self.rings.set(self.rings.get() + 1);
    }
    /// Nobody else runs in this thread: jump the fake clock to the deadline.
    fn wait(&self, deadline: Instant) -> bool {
        let now = self
            .clock
            .get()
            .max(deadline.as_micros().min(self.clock.get() + 1_000_000));
        self.clock.set(now.max(self.clock.get() + 1));
        false
    }
    fn now(&self) -> Instant {
        Instant::from_micros(self.clock.get())
    }
}

/// A host and a remote on one region (offset 0 = 0x3800_0000), both endpoints bound.
/// The profile is a runtime `Config` unless named (`Pair<Arduino>`: the compile-time profile).
pub struct Pair<C: Profile = Config> {
    pub mem: Rc<Mem>,
    pub host: Host<Plat, C>,
    pub remote: Remote<Plat, C>,
}

pub fn pair(config: Config) -> Pair {
    pair_with(config, config.region_size as usize)
}

/// A bound pair with profile `profile` on a region of `size` bytes.
pub fn pair_with<C: Profile + Copy>(profile: C, size: usize) -> Pair<C> {
    let mem = Mem::new(size);
    let clock = Rc::new(Cell::new(0));
    let host = Host::new(Plat::new(&mem, &clock), profile).unwrap();
    let remote = Remote::new(Plat::new(&mem, &clock), profile);
    let mut p = Pair { mem, host, remote };
    handshake(&mut p);
    p
}

/// Interleaves polls until both sides have both endpoints.
pub fn handshake<C: Profile>(p: &mut Pair<C>) {
    for _ in 0..10 {
        p.remote.poll().unwrap();
        p.host.poll().unwrap();
        if Endpoint::ALL
            .iter()
            .all(|&e| p.host.is_ready(e) && p.remote.is_ready(e))
        {
            return;
        }
    }
    panic!("handshake did not finish");
}

pub fn recv_all<T: Transport>(t: &mut T) -> Vec<(Endpoint, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match t.try_recv(&mut buf) {
            Ok(Some(r)) => out.push((r.endpoint, buf[..r.len].to_vec())),
            Ok(None) => return out,
            Err(e) => panic!("recv error {e:?}"),
        }
    }
}

pub fn is_err<T>(r: Result<T, Error>, e: Error) -> bool {
    matches!(r, Err(x) if x == e)
}

/// Small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A reduced ring for exhaustive and multi-buffer tests: 4 descriptors of 64-byte buffers in a
/// 2 KiB region, messages up to 100 bytes (3 buffers).
pub fn small() -> Config {
    Config {
        shm_base: 0,
        region_size: 0x800,
        rsc_table_offset: 0,
        da_base: 0x400,
        vring1_addr: 0x400,
        vring0_addr: 0x500,
        num_descriptors: 4,
        vring_align: 32,
        buffer_size: 64,
        pool_addr: 0x600,
        host_tx_pool_addr: 0x700,
        host_tx_buffers: 4,
        max_message_len: 100,
    }
}
