//! The transport's receive (and send) path fed a fuzzer-chosen shared-memory image and
//! fuzzer-chosen peer writes: duet-rpmsg's `Host` and `Remote` over an in-memory region whose
//! initial contents the input gives, with their calls interleaved with arbitrary writes and
//! bit flips anywhere in the region.
//!
//! Checked: no panic (every refusal is an `Error` value), no access outside the region (the
//! test double refuses it and the run fails), received lengths within the caller's buffer and
//! one buffer's payload. While the region starts zeroed and nobody but the two roles writes it
//! (no peer writes, no reset), every payload arrives intact, in order and exactly once, no
//! error other than backpressure is reported, and after a final drain everything sent has
//! arrived and both transmit pools are full again.
#![no_main]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use arbitrary::Arbitrary;
use duet_rpmsg::{
    Config, Endpoint, Error, Host, Instant, OutOfBounds, Platform, Remote, SharedMemory, Transport,
};
use libfuzzer_sys::fuzz_target;

/// The shared region: bounds- and alignment-checked; any refused access fails the run, since
/// the transport must never compute an offset outside the region.
struct Mem {
    bytes: RefCell<Vec<u8>>,
}

impl Mem {
    fn check(&self, offset: usize, len: usize, align: usize) -> Result<(), OutOfBounds> {
        let size = self.bytes.borrow().len();
        let ok = offset.is_multiple_of(align) && offset.checked_add(len).is_some_and(|e| e <= size);
        assert!(
            ok,
            "access outside the region: {offset:#x}+{len} (align {align})"
        );
        Ok(())
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
        let mut b = [0; 2];
        self.check(offset, 2, 2)?;
        self.read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
        self.check(offset, 2, 2)?;
        self.write(offset, &value.to_le_bytes())
    }
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        let mut b = [0; 4];
        self.check(offset, 4, 4)?;
        self.read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        self.check(offset, 4, 4)?;
        self.write(offset, &value.to_le_bytes())
    }
    fn fence(&self) {}
}

#[derive(Clone)]
struct Plat {
    mem: Rc<Mem>,
    clock: Rc<Cell<u64>>,
}

impl Platform for Plat {
    type Memory = Mem;
    fn memory(&self) -> &Mem {
        &self.mem
    }
    fn notify(&self) {}
    fn wait(&self, deadline: Instant) -> bool {
        let now = self.clock.get();
        self.clock
            .set(deadline.as_micros().min(now + 1_000_000).max(now + 1));
        false
    }
    fn now(&self) -> Instant {
        Instant::from_micros(self.clock.get())
    }
}

/// The reduced rings the transport tests use (4 descriptors of 64 bytes, 3-buffer messages),
/// and a variant with 8 descriptors, a smaller host transmit pool and one-buffer messages.
fn config(variant: bool) -> Config {
    let small = Config {
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
    };
    if !variant {
        return small;
    }
    Config {
        shm_base: 0x3000_0000,
        region_size: 0xC00,
        da_base: 0x3000_0000,
        vring1_addr: 0x3000_0400,
        vring0_addr: 0x3000_0500,
        num_descriptors: 8,
        vring_align: 16,
        pool_addr: 0x3000_0600,
        host_tx_pool_addr: 0x3000_0800,
        host_tx_buffers: 3,
        max_message_len: 48,
        ..small
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Side {
    Host,
    Remote,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Poll(Side),
    /// `try_send` of `len` bytes (a unique pattern).
    Send {
        side: Side,
        rpc: bool,
        len: u8,
    },
    /// `send_with`: the writer gets `writes` (message-relative offsets, may be out of range).
    SendWith {
        side: Side,
        rpc: bool,
        len: u8,
        writes: Vec<(u8, u8)>,
    },
    /// `try_recv` into a buffer of `buf` bytes.
    Recv {
        side: Side,
        buf: u8,
    },
    /// `recv_with`, reading `len` bytes at `at` of the payload.
    RecvWith {
        side: Side,
        at: u8,
        len: u8,
    },
    FreeTx(Side),
    /// The peer (or a stray core) writes bytes anywhere.
    Write {
        off: u16,
        data: Vec<u8>,
    },
    /// A single-copy write of an aligned word (a ring index, a flag, an address).
    Word {
        off: u16,
        value: u32,
        half: bool,
    },
    Flip {
        off: u16,
        bit: u8,
    },
    /// The host re-initialises (`begin_reset`, optionally a remote call, then `reinit`).
    Reset {
        remote_in_between: bool,
    },
    /// The host is created now (lays out the region); until then only the remote runs.
    StartHost,
}

#[derive(Arbitrary, Debug)]
struct Input {
    variant: bool,
    /// The region's initial contents (repeated to its size); empty: zeroed.
    image: Vec<u8>,
    /// Create the host before the first op.
    host_first: bool,
    ops: Vec<Op>,
}

/// Payloads in flight on one direction and endpoint, as the receiver must see them.
#[derive(Default)]
struct Expect {
    q: [VecDeque<Vec<u8>>; 2],
}

impl Expect {
    fn sent(&mut self, ep: Endpoint, data: &[u8], per: usize) {
        let q = &mut self.q[ep as usize];
        if data.is_empty() {
            q.push_back(Vec::new());
        }
        q.extend(data.chunks(per).map(<[u8]>::to_vec));
    }
    fn got(&mut self, ep: Endpoint, data: &[u8]) {
        let want = self.q[ep as usize].pop_front();
        assert_eq!(
            want.as_deref(),
            Some(data),
            "payload lost, duplicated or changed"
        );
    }
}

struct Run {
    clean: bool,
    per: usize,
    /// `expect[s]`: payloads travelling to side `s` (0 host, 1 remote).
    expect: [Expect; 2],
    counter: u8,
}

impl Run {
    fn result<T>(&self, r: Result<T, Error>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Error::NoBuffer | Error::NotReady | Error::BufferTooSmall { .. }) => None,
            Err(Error::MessageTooLarge { len, max }) => {
                assert!(len > max);
                None
            }
            Err(e) => {
                assert!(!self.clean, "error {e:?} without any corruption");
                None
            }
        }
    }
    fn pattern(&mut self, len: usize) -> Vec<u8> {
        self.counter = self.counter.wrapping_add(1);
        let c = self.counter;
        (0..len).map(|i| (i as u8).wrapping_mul(31) ^ c).collect()
    }
}

/// Calls `f` on the transport of `side`, if it exists.
fn with<R>(
    host: &mut Option<Host<Plat>>,
    remote: &mut Remote<Plat>,
    side: Side,
    f: impl FnOnce(&mut dyn Role) -> R,
) -> Option<R> {
    match side {
        Side::Host => host.as_mut().map(|h| f(h as &mut dyn Role)),
        Side::Remote => Some(f(remote as &mut dyn Role)),
    }
}

/// What both roles offer beyond `Transport` (object-safe, for `with`).
trait Role {
    fn t(&mut self) -> &mut dyn Transport<Platform = Plat>;
    fn free(&mut self) -> Result<usize, Error>;
    /// `strict`: nothing corrupted, so every in-range write must succeed.
    fn send_with(
        &mut self,
        ep: Endpoint,
        len: usize,
        writes: &[(u8, u8)],
        strict: bool,
    ) -> Result<(), Error>;
    fn recv_with(&mut self, at: usize, len: usize) -> Result<Option<(Endpoint, Vec<u8>)>, Error>;
}

macro_rules! role {
    ($t:ty) => {
        impl Role for $t {
            fn t(&mut self) -> &mut dyn Transport<Platform = Plat> {
                self
            }
            fn free(&mut self) -> Result<usize, Error> {
                self.free_tx_buffers()
            }
            fn send_with(
                &mut self,
                ep: Endpoint,
                len: usize,
                writes: &[(u8, u8)],
                strict: bool,
            ) -> Result<(), Error> {
                self.send_with(ep, len, |w| {
                    assert_eq!(w.len(), len);
                    for &(off, v) in writes {
                        let data = [v; 5];
                        let r = w.write(off as usize, &data);
                        let fits = off as usize + data.len() <= len;
                        assert!(!(r.is_ok() && !fits), "a write past the message's end");
                        assert!(!(strict && fits && r.is_err()), "an in-range write refused");
                    }
                })
            }
            fn recv_with(
                &mut self,
                at: usize,
                len: usize,
            ) -> Result<Option<(Endpoint, Vec<u8>)>, Error> {
                self.recv_with(|ep, p| {
                    let mut part = vec![0; len];
                    let r = p.read(at, &mut part);
                    assert_eq!(r.is_ok(), at + len <= p.len());
                    let mut all = vec![0; p.len()];
                    p.read(0, &mut all).expect("the whole payload reads");
                    (ep, all)
                })
            }
        }
    };
}
role!(Host<Plat>);
role!(Remote<Plat>);

fuzz_target!(|input: Input| {
    let cfg = config(input.variant);
    let size = cfg.region_size as usize;
    let mut bytes = vec![0u8; size];
    if !input.image.is_empty() {
        for (b, v) in bytes.iter_mut().zip(input.image.iter().cycle()) {
            *b = *v;
        }
    }
    let mem = Rc::new(Mem {
        bytes: RefCell::new(bytes),
    });
    let clock = Rc::new(Cell::new(0));
    let plat = Plat { mem, clock };
    let mut run = Run {
        clean: input.image.iter().all(|&b| b == 0),
        per: cfg.payload_per_buffer(),
        expect: Default::default(),
        counter: 0,
    };
    let mut host: Option<Host<Plat>> = None;
    if input.host_first {
        host = Some(Host::new(plat.clone(), cfg).expect("valid config"));
    }
    let mut remote = Remote::new(plat.clone(), cfg);
    for op in input.ops.into_iter().take(200) {
        match op {
            Op::Poll(side) => {
                if let Some(r) = with(&mut host, &mut remote, side, |t| t.t().poll()) {
                    let _ = run.result(r);
                }
            }
            Op::Send { side, rpc, len } => {
                let ep = if rpc { Endpoint::Rpc } else { Endpoint::Raw };
                let data = run.pattern(len as usize);
                if let Some(r) = with(&mut host, &mut remote, side, |t| t.t().try_send(ep, &data)) {
                    if run.result(r).is_some() {
                        let to = 1 - side as usize;
                        run.expect[to].sent(ep, &data, run.per);
                    }
                }
            }
            Op::SendWith {
                side,
                rpc,
                len,
                writes,
            } => {
                let ep = if rpc { Endpoint::Rpc } else { Endpoint::Raw };
                let len = len as usize % 112;
                // Bytes the writer leaves alone are stale: content checks stop here.
                if let Some(r) = with(&mut host, &mut remote, side, |t| {
                    t.send_with(ep, len, &writes, run.clean)
                }) {
                    if run.result(r).is_some() {
                        run.clean = false;
                    }
                }
            }
            Op::Recv { side, buf } => {
                let mut b = vec![0u8; buf as usize];
                if let Some(r) = with(&mut host, &mut remote, side, |t| t.t().try_recv(&mut b)) {
                    let per = run.per;
                    if let Some(Some(got)) = run.result(r) {
                        assert!(got.len <= b.len() && got.len <= per);
                        if run.clean {
                            run.expect[side as usize].got(got.endpoint, &b[..got.len]);
                        }
                    }
                }
            }
            Op::RecvWith { side, at, len } => {
                let (at, len) = (at as usize % 64, len as usize % 64);
                if let Some(r) = with(&mut host, &mut remote, side, |t| t.recv_with(at, len)) {
                    if let Some(Some((ep, data))) = run.result(r) {
                        assert!(data.len() <= run.per);
                        if run.clean {
                            run.expect[side as usize].got(ep, &data);
                        }
                    }
                }
            }
            Op::FreeTx(side) => {
                if let Some(r) = with(&mut host, &mut remote, side, |t| t.free()) {
                    if let Some(n) = run.result(r) {
                        assert!(n <= cfg.num_descriptors as usize);
                    }
                }
            }
            Op::Write { off, data } => {
                let off = off as usize % size;
                let n = data.len().min(size - off);
                plat.mem.bytes.borrow_mut()[off..off + n].copy_from_slice(&data[..n]);
                run.clean &= n == 0;
            }
            Op::Word { off, value, half } => {
                let m = &plat.mem;
                if half {
                    m.write_u16(off as usize % size & !1, value as u16).unwrap();
                } else {
                    m.write_u32(off as usize % size & !3, value).unwrap();
                }
                run.clean = false;
            }
            Op::Flip { off, bit } => {
                let off = off as usize % size;
                plat.mem.bytes.borrow_mut()[off] ^= 1 << (bit & 7);
                run.clean = false;
            }
            Op::Reset { remote_in_between } => {
                if let Some(h) = host.as_mut() {
                    let _ = h.begin_reset();
                    if remote_in_between {
                        let _ = remote.poll();
                    }
                    let _ = h.reinit();
                    // Payloads in flight are gone.
                    run.clean = false;
                }
            }
            Op::StartHost => {
                if host.is_none() {
                    host = Some(Host::new(plat.clone(), cfg).expect("valid config"));
                }
            }
        }
    }
    // Drain: with nothing corrupted, everything sent arrives and both pools fill up again.
    let Some(host) = host.as_mut() else {
        return;
    };
    let mut buf = [0u8; 64];
    for _ in 0..64 {
        let h = host.try_recv(&mut buf);
        if let Some(Some(got)) = run.result(h) {
            if run.clean {
                run.expect[0].got(got.endpoint, &buf[..got.len]);
            }
        }
        let r = remote.try_recv(&mut buf);
        if let Some(Some(got)) = run.result(r) {
            if run.clean {
                run.expect[1].got(got.endpoint, &buf[..got.len]);
            }
        }
        let _ = run.result(host.poll());
        let _ = run.result(remote.poll());
    }
    if run.clean {
        for e in &run.expect {
            assert!(e.q.iter().all(VecDeque::is_empty), "payloads never arrived");
        }
        if remote.is_running() {
            assert_eq!(host.free_tx_buffers(), Ok(cfg.host_tx_buffers as usize));
            assert_eq!(remote.free_tx_buffers(), Ok(cfg.num_descriptors as usize));
            assert_eq!(host.rx_buffers_posted(), cfg.num_descriptors as usize);
        }
    }
});
