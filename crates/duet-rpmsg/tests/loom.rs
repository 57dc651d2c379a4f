//! Model checking of the real `Host` and `Remote` with loom: each role runs on its own loom
//! thread over a `SharedMemory` whose words are loom atomics, accessed `Relaxed`, with the
//! transport's `fence` as a SeqCst fence. Loom then explores the interleavings of the two
//! roles' accesses *and* the values a relaxed load may return under the C11 memory model (a
//! load not ordered by fences may see an older store), which is what ARMv7-M allows between
//! two cores: the ring protocol is correct only if its fences order index publication.
//!
//! Checked under every explored execution:
//! - `handshake_while_laying_out`: the host lays out the region while the remote already polls it (the remote
//!   may see a half-written table); both sides end with both endpoints bound and no error.
//! - `exchange`: after the handshake, both sides send at once (a one-buffer and a three-buffer
//!   message each way) and receive; every payload arrives intact, in order, exactly once, no
//!   error but backpressure is reported, and both transmit pools are full at the end.
//! - `missing_fence_is_found`: the same two scenarios over a memory whose `fence` does
//!   nothing; loom must find a failing execution of each (the model can fail).
//!
//! Bounds: loom's preemption bound limits how often a thread may be switched away from while
//! it could still run; within it the search is exhaustive (loom's DPOR). Defaults (1 for the
//! handshake, 4 for the exchange) keep a debug `cargo test` at seconds; `DUET_LOOM_PREEMPTIONS`
//! sets all bounds for a deeper run. Each test prints the number of executions it explored.
//!
//! Modelling choices: a write of part of a word (a `u16` index, a byte range) is a
//! compare-and-swap on the word, so the bytes it leaves alone keep the value other stores gave
//! them; words are never torn. The doorbell is a flag (`wait` yields to the other thread).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;

use duet_rpmsg::{
    Endpoint, Error, Host, Instant, OutOfBounds, Platform, Remote, SharedMemory, Transport,
};

/// The region: one loom atomic per 4-byte word.
struct LoomMem {
    words: Vec<AtomicU32>,
    /// `false`: `fence` does nothing (the broken variant `missing_fence_is_found` checks).
    fences: bool,
}

impl LoomMem {
    fn new(size: usize, fences: bool) -> LoomMem {
        LoomMem {
            words: (0..size / 4).map(|_| AtomicU32::new(0)).collect(),
            fences,
        }
    }

    fn check(&self, offset: usize, len: usize, align: usize) -> Result<(), OutOfBounds> {
        let end = offset.checked_add(len);
        if offset.is_multiple_of(align) && end.is_some_and(|e| e <= self.words.len() * 4) {
            Ok(())
        } else {
            Err(OutOfBounds { offset, len })
        }
    }

    /// Replaces the bytes of word `w` selected by `mask` with those of `bits`.
    fn merge(&self, w: usize, mask: u32, bits: u32) {
        let word = &self.words[w];
        if mask == u32::MAX {
            word.store(bits, Ordering::Relaxed);
            return;
        }
        let mut old = word.load(Ordering::Relaxed);
        while let Err(now) = word.compare_exchange(
            old,
            (old & !mask) | (bits & mask),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            old = now;
        }
    }
}

impl SharedMemory for LoomMem {
    fn size(&self) -> usize {
        self.words.len() * 4
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, buf.len(), 1)?;
        let mut w = usize::MAX;
        let mut bytes = [0u8; 4];
        for (i, b) in buf.iter_mut().enumerate() {
            let a = offset + i;
            if a / 4 != w {
                w = a / 4;
                bytes = self.words[w].load(Ordering::Relaxed).to_le_bytes();
            }
            *b = bytes[a % 4];
        }
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, data.len(), 1)?;
        let mut i = 0;
        while i < data.len() {
            let a = offset + i;
            let (w, first) = (a / 4, a % 4);
            let n = (4 - first).min(data.len() - i);
            let mut bits = [0u8; 4];
            let mut mask = [0u8; 4];
            bits[first..first + n].copy_from_slice(&data[i..i + n]);
            mask[first..first + n].fill(0xff);
            self.merge(w, u32::from_le_bytes(mask), u32::from_le_bytes(bits));
            i += n;
        }
        Ok(())
    }
    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
        self.check(offset, 2, 2)?;
        let v = self.words[offset / 4].load(Ordering::Relaxed);
        Ok((v >> ((offset % 4) * 8)) as u16)
    }
    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
        self.check(offset, 2, 2)?;
        let shift = (offset % 4) * 8;
        self.merge(offset / 4, 0xffff << shift, (value as u32) << shift);
        Ok(())
    }
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        self.check(offset, 4, 4)?;
        Ok(self.words[offset / 4].load(Ordering::Relaxed))
    }
    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        self.check(offset, 4, 4)?;
        self.words[offset / 4].store(value, Ordering::Relaxed);
        Ok(())
    }
    fn fence(&self) {
        if self.fences {
            fence(Ordering::SeqCst);
        }
    }
}

/// One side: the shared region and the two doorbells (`bells[i]`: side `i` was rung).
#[derive(Clone)]
struct Side {
    mem: Arc<LoomMem>,
    bells: Arc<[AtomicBool; 2]>,
    id: usize,
}

impl Platform for Side {
    type Memory = LoomMem;
    fn memory(&self) -> &LoomMem {
        &self.mem
    }
    fn notify(&self) {
        self.bells[1 - self.id].store(true, Ordering::SeqCst);
    }
    /// A ring since the last call returns at once; otherwise the other thread runs first.
    fn wait(&self, _deadline: Instant) -> bool {
        if self.bells[self.id].swap(false, Ordering::SeqCst) {
            return true;
        }
        thread::yield_now();
        false
    }
    fn now(&self) -> Instant {
        Instant::from_micros(0)
    }
}

fn sides(fences: bool) -> (Side, Side) {
    let mem = Arc::new(LoomMem::new(common::small().region_size as usize, fences));
    let bells = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    let side = |id| Side {
        mem: mem.clone(),
        bells: bells.clone(),
        id,
    };
    (side(0), side(1))
}

fn bound(default: usize) -> Option<usize> {
    let n = std::env::var("DUET_LOOM_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Some(n)
}

/// Runs `f` under loom with preemption bound `preemptions`; returns the executions explored.
fn explore(preemptions: Option<usize>, f: impl Fn() + Sync + Send + 'static) -> usize {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = preemptions;
    b.max_branches = 100_000;
    b.check(move || {
        counter.fetch_add(1, StdOrdering::SeqCst);
        f()
    });
    runs.load(StdOrdering::SeqCst)
}

fn both_ready<T: Transport>(t: &T) -> bool {
    Endpoint::ALL.iter().all(|&e| t.is_ready(e))
}

/// Polls `t` until both endpoints are ready (at most `rounds` polls); every poll must succeed.
fn poll_until_ready<T: Transport>(t: &mut T, rounds: usize) {
    for _ in 0..rounds {
        t.poll().expect("no error during the handshake");
        if both_ready(t) {
            return;
        }
        t.platform().wait(Instant::MAX);
    }
    panic!("handshake did not finish in {rounds} polls");
}

/// The host lays out the region and handshakes while the remote polls from the start.
fn handshake(fences: bool) {
    let (h, r) = sides(fences);
    let remote = thread::spawn(move || {
        let mut remote = Remote::new(r, common::small());
        poll_until_ready(&mut remote, 40);
        remote
    });
    let mut host = Host::new(h, common::small()).unwrap();
    poll_until_ready(&mut host, 40);
    let remote = remote.join().unwrap();
    assert!(remote.is_running());
    assert_eq!(host.remote_address(Endpoint::Rpc), Some(0x401));
    assert_eq!(remote.remote_address(Endpoint::Rpc), Some(0x401));
    assert_eq!(host.remote_address(Endpoint::Raw), Some(0x400));
}

#[test]
fn handshake_while_laying_out() {
    let runs = explore(bound(1), || handshake(true));
    eprintln!("loom handshake: {runs} executions explored");
    assert!(runs > 1);
}

/// The payloads one side sends: a one-buffer and a three-buffer message.
fn messages(tag: u8) -> [(Endpoint, Vec<u8>); 2] {
    let m = |len: usize| (0..len).map(|i| (i as u8).wrapping_mul(7) ^ tag).collect();
    [(Endpoint::Rpc, m(10)), (Endpoint::Raw, m(100))]
}

/// Sends `out` and receives the peer's `incoming` (per buffer, in order); at most `rounds`
/// rounds. Returns the first failure as text.
fn run_side<T: Transport>(
    t: &mut T,
    out: [(Endpoint, Vec<u8>); 2],
    incoming: [(Endpoint, Vec<u8>); 2],
    rounds: usize,
) -> Result<(), String> {
    let per = t.payload_per_buffer();
    let mut expect: Vec<(Endpoint, Vec<u8>)> = Vec::new();
    for (ep, m) in incoming {
        expect.extend(m.chunks(per).map(|c| (ep, c.to_vec())));
    }
    expect.reverse();
    let mut out: Vec<_> = out.into_iter().rev().collect();
    let mut buf = [0u8; 64];
    for _ in 0..rounds {
        let mut progress = false;
        if let Some((ep, m)) = out.last() {
            match t.try_send(*ep, m) {
                Ok(()) => {
                    out.pop();
                    progress = true;
                }
                Err(Error::NoBuffer) => {}
                Err(e) => return Err(format!("send: {e:?}")),
            }
        }
        match t.try_recv(&mut buf) {
            Ok(Some(r)) => {
                let want = expect.pop();
                if want.as_ref() != Some(&(r.endpoint, buf[..r.len].to_vec())) {
                    return Err(format!(
                        "got {:?} {:?}, want {want:?}",
                        r.endpoint,
                        &buf[..r.len]
                    ));
                }
                progress = true;
            }
            Ok(None) => {}
            Err(e) => return Err(format!("recv: {e:?}")),
        }
        if out.is_empty() && expect.is_empty() {
            return Ok(());
        }
        if !progress {
            t.platform().wait(Instant::MAX);
        }
    }
    Err("no progress".into())
}

/// Handshake on one thread (no concurrency), then both sides exchange messages at once.
fn exchange(fences: bool) {
    let (h, r) = sides(fences);
    let mut host = Host::new(h, common::small()).unwrap();
    let mut remote = Remote::new(r, common::small());
    for _ in 0..4 {
        remote.poll().unwrap();
        host.poll().unwrap();
    }
    assert!(both_ready(&host) && both_ready(&remote));
    let rt = thread::spawn(move || {
        let r = run_side(&mut remote, messages(0x20), messages(0x10), 60);
        (remote, r)
    });
    let h = run_side(&mut host, messages(0x10), messages(0x20), 60);
    let (mut remote, r) = rt.join().unwrap();
    h.expect("host side");
    r.expect("remote side");
    assert_eq!(host.free_tx_buffers(), Ok(4));
    assert_eq!(remote.free_tx_buffers(), Ok(4));
    assert_eq!(host.rx_buffers_posted(), 4);
}

#[test]
fn exchange_both_ways() {
    let runs = explore(bound(4), || exchange(true));
    eprintln!("loom exchange: {runs} executions explored");
    assert!(runs > 1);
}

#[test]
fn missing_fence_is_found() {
    for (name, f) in [("exchange", exchange as fn(bool)), ("handshake", handshake)] {
        let found = std::panic::catch_unwind(|| explore(bound(1), move || f(false)));
        assert!(
            found.is_err(),
            "loom found no failure of the {name} without fences"
        );
    }
}
