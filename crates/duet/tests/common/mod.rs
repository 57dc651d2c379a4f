//! An in-memory transport pair for tests: two `MemTransport`s that honour the `Transport`
//! contract (496-byte payload per buffer, configurable max message length, a bounded queue per
//! direction with `NoBuffer` backpressure, a real clock, a doorbell/wait per side).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use duet::{BootError, BootRemote, Core, CpuId, Doorbell};
use duet_rpmsg::{
    Endpoint, Error, Instant, OutOfBounds, PayloadRead, Platform, Received, SharedMemory, Transport,
};

pub const PPB: usize = 496;

type Queue = Mutex<VecDeque<(Endpoint, Vec<u8>)>>;

struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
    doorbell: Mutex<Option<Arc<Doorbell>>>,
}

pub struct Shared {
    epoch: std::time::Instant,
    /// `queues[i]`: payloads travelling to side `i`.
    queues: [Queue; 2],
    bells: [Bell; 2],
    /// Per endpoint: bound on both sides.
    pub ready: [AtomicBool; 2],
    /// Max buffers queued per direction.
    pub capacity: AtomicUsize,
    /// Payloads sent by side `i` on endpoint `e`: `sent[i][e]`.
    pub sent: [[AtomicUsize; 2]; 2],
    /// Makes side `i`'s next poll or try_recv report `PeerReset` (as duet-rpmsg's roles do).
    pub reset: [AtomicBool; 2],
}

pub struct MemTransport {
    pub side: usize,
    pub shared: Arc<Shared>,
    pub max_message_len: usize,
    platform: MemPlatform,
}

pub struct MemPlatform {
    side: usize,
    shared: Arc<Shared>,
    mem: NoMemory,
}

pub struct NoMemory;

impl SharedMemory for NoMemory {
    fn size(&self) -> usize {
        0
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        Err(OutOfBounds {
            offset,
            len: buf.len(),
        })
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        Err(OutOfBounds {
            offset,
            len: data.len(),
        })
    }
    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
        Err(OutOfBounds { offset, len: 2 })
    }
    fn write_u16(&self, offset: usize, _: u16) -> Result<(), OutOfBounds> {
        Err(OutOfBounds { offset, len: 2 })
    }
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        Err(OutOfBounds { offset, len: 4 })
    }
    fn write_u32(&self, offset: usize, _: u32) -> Result<(), OutOfBounds> {
        Err(OutOfBounds { offset, len: 4 })
    }
    fn fence(&self) {}
}

impl Platform for MemPlatform {
    type Memory = NoMemory;
    fn memory(&self) -> &NoMemory {
        &self.mem
    }
    fn notify(&self) {
        let bell = &self.shared.bells[1 - self.side];
        *bell.rung.lock().unwrap() = true;
        bell.cv.notify_all();
        if let Some(d) = bell.doorbell.lock().unwrap().as_ref() {
            d.ring();
        }
    }
    fn wait(&self, deadline: Instant) -> bool {
        let bell = &self.shared.bells[self.side];
        let mut rung = bell.rung.lock().unwrap();
        loop {
            if *rung {
                *rung = false;
                return true;
            }
            let now = self.now();
            if now >= deadline {
                return false;
            }
            let left = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(50));
            rung = bell.cv.wait_timeout(rung, left).unwrap().0;
        }
    }
    fn now(&self) -> Instant {
        Instant::from_micros(self.shared.epoch.elapsed().as_micros() as u64)
    }
}

impl Core for MemPlatform {
    fn cpu_id(&self) -> CpuId {
        if self.side == 0 {
            CpuId::Cm7
        } else {
            CpuId::Cm4
        }
    }
}

/// A connected pair: side 0 (the "M7") and side 1 (the "M4"). `capacity` buffers may be queued
/// per direction; `max_message_len` applies to both sides.
pub fn pair_with(capacity: usize, max_message_len: usize) -> (MemTransport, MemTransport) {
    let bell = || Bell {
        rung: Mutex::new(false),
        cv: Condvar::new(),
        doorbell: Mutex::new(None),
    };
    let shared = Arc::new(Shared {
        epoch: std::time::Instant::now(),
        queues: [Mutex::new(VecDeque::new()), Mutex::new(VecDeque::new())],
        bells: [bell(), bell()],
        ready: [AtomicBool::new(true), AtomicBool::new(true)],
        capacity: AtomicUsize::new(capacity),
        sent: Default::default(),
        reset: [AtomicBool::new(false), AtomicBool::new(false)],
    });
    let mk = |side| MemTransport {
        side,
        shared: shared.clone(),
        max_message_len,
        platform: MemPlatform {
            side,
            shared: shared.clone(),
            mem: NoMemory,
        },
    };
    (mk(0), mk(1))
}

/// The default pair: 64 buffers per direction, one-buffer messages (like Arduino).
pub fn pair() -> (MemTransport, MemTransport) {
    pair_with(64, PPB)
}

impl MemTransport {
    /// Payloads queued toward this side.
    pub fn queued(&self) -> usize {
        self.shared.queues[self.side].lock().unwrap().len()
    }

    /// Number of payloads this side has sent on `ep`.
    pub fn sent(&self, ep: Endpoint) -> usize {
        self.shared.sent[self.side][ep as usize].load(Ordering::SeqCst)
    }

    /// Receives one payload, waiting up to `timeout` (for raw-peer tests).
    pub fn recv_wait(&mut self, timeout: Duration) -> Option<(Endpoint, Vec<u8>)> {
        let deadline = self.platform.now().saturating_add(timeout);
        loop {
            let mut buf = [0u8; PPB];
            if let Some(r) = self.try_recv(&mut buf).unwrap() {
                return Some((r.endpoint, buf[..r.len].to_vec()));
            }
            if self.platform.now() >= deadline {
                return None;
            }
            self.platform.wait(deadline);
        }
    }
}

impl Transport for MemTransport {
    type Platform = MemPlatform;

    fn platform(&self) -> &MemPlatform {
        &self.platform
    }

    fn poll(&mut self) -> Result<(), Error> {
        if self.shared.reset[self.side].swap(false, Ordering::SeqCst) {
            return Err(Error::PeerReset);
        }
        Ok(())
    }

    fn is_ready(&self, endpoint: Endpoint) -> bool {
        self.shared.ready[endpoint as usize].load(Ordering::SeqCst)
    }

    fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    fn payload_per_buffer(&self) -> usize {
        PPB
    }

    fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error> {
        if !self.is_ready(endpoint) {
            return Err(Error::NotReady);
        }
        if data.len() > self.max_message_len {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: self.max_message_len,
            });
        }
        let chunks = data.len().div_ceil(PPB).max(1);
        {
            let mut q = self.shared.queues[1 - self.side].lock().unwrap();
            if q.len() + chunks > self.shared.capacity.load(Ordering::SeqCst) {
                return Err(Error::NoBuffer);
            }
            if data.is_empty() {
                q.push_back((endpoint, Vec::new()));
            }
            for c in data.chunks(PPB) {
                q.push_back((endpoint, c.to_vec()));
            }
        }
        self.shared.sent[self.side][endpoint as usize].fetch_add(chunks, Ordering::SeqCst);
        self.platform.notify();
        Ok(())
    }

    fn send(&mut self, endpoint: Endpoint, data: &[u8], deadline: Instant) -> Result<(), Error> {
        loop {
            match self.try_send(endpoint, data) {
                Err(Error::NoBuffer) => {}
                r => return r,
            }
            if self.platform.now() >= deadline {
                return Err(Error::Timeout);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error> {
        if self.shared.reset[self.side].swap(false, Ordering::SeqCst) {
            return Err(Error::PeerReset);
        }
        let mut q = self.shared.queues[self.side].lock().unwrap();
        let Some((ep, data)) = q.front() else {
            return Ok(None);
        };
        if buf.len() < data.len() {
            return Err(Error::BufferTooSmall { needed: data.len() });
        }
        let (ep, len) = (*ep, data.len());
        buf[..len].copy_from_slice(data);
        q.pop_front();
        Ok(Some(Received { endpoint: ep, len }))
    }

    fn try_send_parts(
        &mut self,
        endpoint: Endpoint,
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), Error> {
        self.try_send(endpoint, &[head, tail].concat())
    }

    fn try_recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, &dyn PayloadRead) -> (bool, R),
    ) -> Result<Option<R>, Error> {
        if self.shared.reset[self.side].swap(false, Ordering::SeqCst) {
            return Err(Error::PeerReset);
        }
        let mut q = self.shared.queues[self.side].lock().unwrap();
        let Some((ep, data)) = q.front() else {
            return Ok(None);
        };
        let (consume, out) = f(*ep, &data.as_slice());
        if consume {
            q.pop_front();
        }
        Ok(Some(out))
    }
}

/// Boots "the remote" by marking both endpoints ready after a short delay, or never.
pub struct MemBoot {
    pub shared: Arc<Shared>,
    pub comes_up: bool,
    pub booted_at: Option<u32>,
}

impl BootRemote for MemBoot {
    fn boot(&mut self, address: u32) -> Result<(), BootError> {
        if !address.is_multiple_of(0x1_0000) {
            return Err(BootError::BadAddress);
        }
        if self.booted_at.is_some() {
            return Err(BootError::AlreadyRunning);
        }
        self.booted_at = Some(address);
        if self.comes_up {
            let shared = self.shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                for r in &shared.ready {
                    r.store(true, Ordering::SeqCst);
                }
            });
        }
        Ok(())
    }
}

/// The in-memory pair as a `suite::Harness` (connected from the start).
pub struct Mem;

impl crate::suite::Link for MemTransport {
    fn buffers_sent(&self) -> usize {
        self.sent(Endpoint::Raw) + self.sent(Endpoint::Rpc)
    }
    fn buffers_sent_on(&self, ep: Endpoint) -> Option<usize> {
        Some(self.sent(ep))
    }
    fn doorbell(&self) -> Option<Arc<Doorbell>> {
        let mut slot = self.shared.bells[self.side].doorbell.lock().unwrap();
        Some(
            slot.get_or_insert_with(|| Arc::new(Doorbell::new()))
                .clone(),
        )
    }
}

impl crate::suite::Harness for Mem {
    type A = MemTransport;
    type B = MemTransport;
    fn pair(opts: crate::suite::Opts) -> (MemTransport, MemTransport) {
        pair_with(opts.queue, opts.max_message_len)
    }
}
