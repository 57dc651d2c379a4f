//! Ordering of the ring protocol under many interleavings and a weak memory model.
//!
//! Our own bounded-exhaustive scheduler: the host and the remote run in two threads, but only
//! one moves at a time; every shared-memory access (and every `fence`) is one step, and at each
//! step the scheduler makes choices from a script:
//! - whether the running side is preempted here (default: it runs until it waits);
//! - for a store: commit it now, or hold it in the writer's store buffer until the writer's next
//!   `fence` (stores may be reordered, as on ARMv7-M's weak model / PSO);
//! - for a load of bytes not accessed since the reader's last `fence`: read the current value,
//!   or the value as of that fence (loads may be satisfied early).
//!
//! Doorbells are sticky (a ring since the last wait makes the next wait return at once), and a
//! side that waits while its peer is asleep gets a timed wake-up (the transport's poll slice).
//!
//! `exhaustive_single_deviation` runs the default schedule (each side runs until it waits) and
//! then every schedule that deviates from it at exactly one choice point (all of them);
//! `random_schedules` runs 1500 seeded schedules with many deviations each. Every run checks
//! that each message arrives intact, in order, exactly once, with no transport error and no
//! side stuck, and that both pools return to full.
//!
//! Mutation check, done by hand when this test was written (edit, run, revert). Caught:
//! - fence removed before `avail.idx` in `Host::send_inner` (random: a side stuck);
//! - fence removed before `used.idx` in `Remote::send_inner` (random: wrong payload);
//! - fence removed after reading `avail.idx` in `Remote::recv_inner` (random: wrong payload);
//! - fence removed after reading `used.idx` in `Host::recv_inner` (exhaustive and random);
//! - fence removed before `used.idx` in `Remote::release_rx` (random: DescriptorState);
//! - fence removed after reading `used.idx` in `Host::reclaim` (random: DescriptorState);
//! - `avail.idx` published before the payload in `Host::send_inner` (exhaustive and random).
//!
//! Not caught: the fence before the receive-buffer re-post index in `Host::release_rx` and the
//! one after reading vring0's `avail.idx` in `Remote::refill`. In this scenario the re-posted
//! descriptor and ring slot hold the same values as before, so no reordering is observable.

mod common;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use duet_rpmsg::{
    Endpoint, Error, Host, Instant, OutOfBounds, Platform, Remote, SharedMemory, Transport,
};

/// Random-mode probabilities (per 256) of holding a store / reading stale, and of switching.
const HOLD: u64 = 96;
const SWITCH: u64 = 24;

#[derive(Default)]
struct World {
    mem: Vec<u8>,
    scheduled: bool,
    held: [Vec<(usize, Vec<u8>)>; 2],
    snap: [Vec<u8>; 2],
    touched: [HashSet<usize>; 2],
    turn: usize,
    waiting: [bool; 2],
    /// A doorbell rang since the side last waited (sticky, like the WFE event register).
    rung: [bool; 2],
    /// Timed wake-ups in a row without progress.
    idle: [u32; 2],
    done: [bool; 2],
    stuck: bool,
    script: Vec<u8>,
    trace: Vec<u8>,
    /// Random mode: a xorshift state instead of the script.
    rng: Option<u64>,
}

impl World {
    /// A two-way choice: the script's entry (default 0), recorded in the trace; in random mode
    /// 1 with probability `p`/256.
    fn choose(&mut self, p: u64) -> bool {
        if let Some(x) = &mut self.rng {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            return *x % 256 < p;
        }
        let c = self.script.get(self.trace.len()).copied().unwrap_or(0);
        self.trace.push(2);
        c == 1
    }
    fn commit(&mut self, off: usize, data: &[u8], tid: usize) {
        self.mem[off..off + data.len()].copy_from_slice(data);
        self.waiting[1 - tid] = false;
    }
    fn flush(&mut self, tid: usize) {
        for (off, data) in std::mem::take(&mut self.held[tid]) {
            self.commit(off, &data, tid);
        }
    }
    fn load(&mut self, tid: usize, off: usize, buf: &mut [u8]) {
        let len = buf.len();
        buf.copy_from_slice(&self.mem[off..off + len]);
        if self.scheduled
            && (off..off + len).all(|i| !self.touched[tid].contains(&i))
            && self.snap[tid][off..off + len] != *buf
            && self.choose(HOLD)
        {
            buf.copy_from_slice(&self.snap[tid][off..off + len]);
        }
        for (hoff, data) in &self.held[tid] {
            for (i, b) in buf.iter_mut().enumerate() {
                if let Some(&v) = (off + i).checked_sub(*hoff).and_then(|j| data.get(j)) {
                    *b = v;
                }
            }
        }
        self.touched[tid].extend(off..off + len);
    }
    fn store(&mut self, tid: usize, off: usize, data: &[u8]) {
        self.touched[tid].extend(off..off + data.len());
        if self.scheduled && self.choose(HOLD) {
            self.held[tid].push((off, data.to_vec()));
        } else if self.held[tid]
            .iter()
            .any(|(h, d)| *h < off + data.len() && off < h + d.len())
        {
            // Same-address order is kept: an overlapping held store must not be overtaken.
            self.held[tid].push((off, data.to_vec()));
        } else {
            self.commit(off, data, tid);
        }
    }
    fn fence(&mut self, tid: usize) {
        self.flush(tid);
        self.snap[tid] = self.mem.clone();
        self.touched[tid].clear();
    }
}

struct Model {
    w: Mutex<World>,
    cv: Condvar,
}

impl Model {
    /// Runs one step of thread `tid` once it has the turn, then picks who moves next.
    fn step<R>(&self, tid: usize, op: impl FnOnce(&mut World) -> R) -> R {
        let mut w = self.w.lock().unwrap();
        if !w.scheduled {
            return op(&mut w);
        }
        while w.turn != tid && !w.stuck {
            w = self.cv.wait(w).unwrap();
        }
        let r = op(&mut w);
        let other = 1 - tid;
        if !w.done[other] && !w.waiting[other] && w.choose(SWITCH) {
            w.turn = other;
        }
        self.cv.notify_all();
        r
    }
    /// The side found nothing to do: return at once if the peer rang since the last wait;
    /// otherwise sleep until the peer commits a store. If the peer is itself asleep or done,
    /// this is a timed wake-up (the transport's poll slice); many in a row mean stuck.
    fn wait(&self, tid: usize) {
        let mut w = self.w.lock().unwrap();
        if !w.scheduled {
            return;
        }
        w.flush(tid);
        if std::mem::take(&mut w.rung[tid]) {
            return;
        }
        let other = 1 - tid;
        if w.done[other] || w.waiting[other] {
            w.idle[tid] += 1;
            if w.idle[tid] > 5 {
                w.stuck = true;
                self.cv.notify_all();
            }
            return;
        }
        w.waiting[tid] = true;
        w.turn = other;
        self.cv.notify_all();
        while (w.waiting[tid] || w.turn != tid) && !w.stuck {
            w = self.cv.wait(w).unwrap();
        }
    }
    fn notify(&self, tid: usize) {
        let mut w = self.w.lock().unwrap();
        w.rung[1 - tid] = true;
        w.waiting[1 - tid] = false;
    }
    fn progress(&self, tid: usize) {
        self.w.lock().unwrap().idle[tid] = 0;
    }
    fn finish(&self, tid: usize) {
        let mut w = self.w.lock().unwrap();
        w.flush(tid);
        w.done[tid] = true;
        w.turn = 1 - tid;
        w.waiting[1 - tid] = false;
        self.cv.notify_all();
    }
    fn lock(&self) -> MutexGuard<'_, World> {
        self.w.lock().unwrap()
    }
}

struct Side {
    model: Arc<Model>,
    tid: usize,
}

fn check(mem: &[u8], off: usize, len: usize, align: usize) -> Result<(), OutOfBounds> {
    if off.is_multiple_of(align) && off.checked_add(len).is_some_and(|e| e <= mem.len()) {
        Ok(())
    } else {
        Err(OutOfBounds { offset: off, len })
    }
}

impl SharedMemory for Side {
    fn size(&self) -> usize {
        self.model.lock().mem.len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.model.step(self.tid, |w| {
            check(&w.mem, offset, buf.len(), 1)?;
            w.load(self.tid, offset, buf);
            Ok(())
        })
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.model.step(self.tid, |w| {
            check(&w.mem, offset, data.len(), 1)?;
            w.store(self.tid, offset, data);
            Ok(())
        })
    }
    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
        let mut b = [0; 2];
        self.model.step(self.tid, |w| {
            check(&w.mem, offset, 2, 2)?;
            w.load(self.tid, offset, &mut b);
            Ok(u16::from_le_bytes(b))
        })
    }
    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
        self.write_checked(offset, &value.to_le_bytes(), 2)
    }
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        let mut b = [0; 4];
        self.model.step(self.tid, |w| {
            check(&w.mem, offset, 4, 4)?;
            w.load(self.tid, offset, &mut b);
            Ok(u32::from_le_bytes(b))
        })
    }
    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        self.write_checked(offset, &value.to_le_bytes(), 4)
    }
    fn fence(&self) {
        self.model.step(self.tid, |w| w.fence(self.tid))
    }
}

impl Side {
    fn write_checked(&self, offset: usize, data: &[u8], align: usize) -> Result<(), OutOfBounds> {
        self.model.step(self.tid, |w| {
            check(&w.mem, offset, data.len(), align)?;
            w.store(self.tid, offset, data);
            Ok(())
        })
    }
}

impl Platform for Side {
    type Memory = Side;
    fn memory(&self) -> &Side {
        self
    }
    fn notify(&self) {
        self.model.notify(self.tid)
    }
    fn wait(&self, _deadline: Instant) -> bool {
        self.model.wait(self.tid);
        true
    }
    fn now(&self) -> Instant {
        Instant::from_micros(0)
    }
}

fn msgs(tag: u8) -> Vec<(Endpoint, Vec<u8>)> {
    let m = |len: usize, s: u8| (0..len).map(|i| (i as u8).wrapping_mul(s) ^ tag).collect();
    vec![
        (Endpoint::Rpc, m(10, 3)),
        (Endpoint::Raw, m(70, 5)),
        (Endpoint::Rpc, m(1, 7)),
    ]
}

/// One side's scenario: send `out` in order, receive the peer's `expect` buffers in order.
fn run_side<T: Transport>(
    t: &mut T,
    model: &Model,
    tid: usize,
    mut out: VecDeque<(Endpoint, Vec<u8>)>,
    per: usize,
    incoming: Vec<(Endpoint, Vec<u8>)>,
) -> Result<(), String> {
    let mut expect: [VecDeque<Vec<u8>>; 2] = Default::default();
    for (ep, m) in incoming {
        expect[ep as usize].extend(m.chunks(per).map(|c| c.to_vec()));
    }
    let mut buf = [0u8; 64];
    loop {
        let mut progress = false;
        if let Some((ep, m)) = out.front() {
            match t.try_send(*ep, m) {
                Ok(()) => {
                    out.pop_front();
                    progress = true;
                }
                Err(Error::NoBuffer) => {}
                Err(e) => return Err(format!("side {tid} send: {e:?}")),
            }
        }
        match t.try_recv(&mut buf) {
            Ok(Some(r)) => {
                let want = expect[r.endpoint as usize].pop_front();
                if want.as_deref() != Some(&buf[..r.len]) {
                    return Err(format!("side {tid} got {:?}, want {want:?}", &buf[..r.len]));
                }
                progress = true;
            }
            Ok(None) => {}
            Err(e) => return Err(format!("side {tid} recv: {e:?}")),
        }
        if out.is_empty() && expect.iter().all(|q| q.is_empty()) {
            return Ok(());
        }
        if progress {
            model.progress(tid);
        } else {
            t.platform().wait(Instant::MAX);
            if model.lock().stuck {
                return Err(format!("side {tid} stuck"));
            }
        }
    }
}

/// Runs the scenario under `script`; returns the trace of choice points and the outcome.
fn run(script: Vec<u8>, rng: Option<u64>) -> (Vec<u8>, Result<(), String>) {
    let cfg = common::small();
    let model = Arc::new(Model {
        w: Mutex::new(World {
            mem: vec![0; cfg.region_size as usize],
            snap: [
                vec![0; cfg.region_size as usize],
                vec![0; cfg.region_size as usize],
            ],
            script,
            rng,
            ..World::default()
        }),
        cv: Condvar::new(),
    });
    let side = |tid| Side {
        model: model.clone(),
        tid,
    };
    let mut host = Host::new(side(0), cfg).unwrap();
    let mut remote = Remote::new(side(1), cfg);
    for _ in 0..10 {
        remote.poll().unwrap();
        host.poll().unwrap();
    }
    assert!(Endpoint::ALL
        .iter()
        .all(|&e| host.is_ready(e) && remote.is_ready(e)));
    {
        let mut w = model.lock();
        let mem = w.mem.clone();
        w.snap = [mem.clone(), mem];
        w.scheduled = true;
    }
    let per = cfg.payload_per_buffer();
    let (h, r) = std::thread::scope(|s| {
        let m = &model;
        let hh = s.spawn(|| {
            let r = run_side(&mut host, m, 0, msgs(0x10).into(), per, msgs(0x20));
            m.finish(0);
            r
        });
        let rr = s.spawn(|| {
            let r = run_side(&mut remote, m, 1, msgs(0x20).into(), per, msgs(0x10));
            m.finish(1);
            r
        });
        (hh.join().unwrap(), rr.join().unwrap())
    });
    let trace = std::mem::take(&mut model.lock().trace);
    model.lock().scheduled = false;
    let outcome = h.and(r).and_then(|()| {
        let free = (host.free_tx_buffers(), remote.free_tx_buffers());
        if free == (Ok(4), Ok(4)) && host.rx_buffers_posted() == 4 {
            Ok(())
        } else {
            Err(format!("pools not full: {free:?}"))
        }
    });
    (trace, outcome)
}

#[test]
fn exhaustive_single_deviation() {
    let (trace, r) = run(Vec::new(), None);
    r.expect("default schedule");
    let mut runs = 1;
    for i in 0..trace.len() {
        let mut script = vec![0; i];
        script.push(1);
        let (_, r) = run(script, None);
        runs += 1;
        if let Err(e) = r {
            panic!("deviation at choice {i}: {e}");
        }
    }
    eprintln!(
        "{runs} schedules, {} choice points on the default one",
        trace.len()
    );
    assert!(runs > 100);
}

#[test]
fn random_schedules() {
    for seed in 1..=1500u64 {
        let (_, r) = run(Vec::new(), Some(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        if let Err(e) = r {
            panic!("random schedule {seed} failed: {e}");
        }
    }
}
