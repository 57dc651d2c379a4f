//! The RPC engine (`duet::Rpc`) fed fuzzer-chosen traffic from a scripted peer through an
//! in-memory transport with a fake clock: raw bytes, well-formed requests and notifications to
//! bound and unknown names, replies to the engine's own calls, backpressure, resets, time.
//!
//! Checked: no panic; every message the engine sends on `"rpc"` parses as one whole
//! MessagePack-RPC message; and while the peer sends only well-formed messages (no raw bytes
//! on `"rpc"`), every response answers an outstanding request of the peer, at most once, with
//! the right content (`add` gives the wrapping sum, `echo` the same bytes, an unknown name an
//! error text), and a completed call returns a value the peer sent for its msgid.
#![no_main]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use arbitrary::Arbitrary;
use duet::error::text;
use duet::{Bin, Context, Deferred, Pending, Request, Rpc};
use duet_codec::rpc::{self, Message, MsgId};
use duet_codec::Encoder;
use duet_rpmsg::{
    Endpoint, Error, Instant, OutOfBounds, PayloadRead, Platform, Received, SharedMemory,
    Transport,
};
use libfuzzer_sys::fuzz_target;

/// Payload bytes per transport buffer (the Arduino profile's).
const PPB: usize = 496;

/// The peer's side of the wire, and the fake clock.
#[derive(Default)]
struct Wire {
    /// Payloads travelling to the engine.
    to_engine: VecDeque<(Endpoint, Vec<u8>)>,
    /// Whole messages the engine sent, not yet looked at by the peer.
    from_engine: VecDeque<(Endpoint, Vec<u8>)>,
    /// Messages the engine may have outstanding (not yet taken by the peer).
    capacity: usize,
    /// Both endpoints bound.
    ready: bool,
    /// The next `poll` reports `PeerReset`.
    reset: bool,
    /// Fake clock, microseconds.
    now: u64,
}

struct NoMemory;

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

struct Plat {
    wire: Rc<RefCell<Wire>>,
    mem: NoMemory,
}

impl Platform for Plat {
    type Memory = NoMemory;
    fn memory(&self) -> &NoMemory {
        &self.mem
    }
    fn notify(&self) {}
    /// Nobody else runs: the clock jumps to the deadline (at most 1 s, at least 1 us).
    fn wait(&self, deadline: Instant) -> bool {
        let mut w = self.wire.borrow_mut();
        let to = deadline.as_micros().min(w.now + 1_000_000);
        w.now = to.max(w.now + 1);
        false
    }
    fn now(&self) -> Instant {
        Instant::from_micros(self.wire.borrow().now)
    }
}

struct FuzzTransport {
    plat: Plat,
    max: usize,
}

impl Transport for FuzzTransport {
    type Platform = Plat;
    fn platform(&self) -> &Plat {
        &self.plat
    }
    fn poll(&mut self) -> Result<(), Error> {
        let mut w = self.plat.wire.borrow_mut();
        if std::mem::take(&mut w.reset) {
            return Err(Error::PeerReset);
        }
        Ok(())
    }
    fn is_ready(&self, _: Endpoint) -> bool {
        self.plat.wire.borrow().ready
    }
    fn max_message_len(&self) -> usize {
        self.max
    }
    fn payload_per_buffer(&self) -> usize {
        PPB
    }
    fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error> {
        let mut w = self.plat.wire.borrow_mut();
        if !w.ready {
            return Err(Error::NotReady);
        }
        if data.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: self.max,
            });
        }
        if w.from_engine.len() >= w.capacity {
            return Err(Error::NoBuffer);
        }
        w.from_engine.push_back((endpoint, data.to_vec()));
        Ok(())
    }
    fn send(&mut self, endpoint: Endpoint, data: &[u8], deadline: Instant) -> Result<(), Error> {
        loop {
            match self.try_send(endpoint, data) {
                Err(Error::NoBuffer) => {}
                r => return r,
            }
            if self.plat.now() >= deadline {
                return Err(Error::Timeout);
            }
            self.plat.wait(deadline);
        }
    }
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error> {
        let mut w = self.plat.wire.borrow_mut();
        let Some((endpoint, data)) = w.to_engine.front() else {
            return Ok(None);
        };
        let (endpoint, len) = (*endpoint, data.len());
        let Some(dst) = buf.get_mut(..len) else {
            return Err(Error::BufferTooSmall { needed: len });
        };
        dst.copy_from_slice(data);
        w.to_engine.pop_front();
        Ok(Some(Received { endpoint, len }))
    }
    fn try_send_parts(&mut self, endpoint: Endpoint, head: &[u8], tail: &[u8]) -> Result<(), Error> {
        self.try_send(endpoint, &[head, tail].concat())
    }
    fn try_recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, &dyn PayloadRead) -> (bool, R),
    ) -> Result<Option<R>, Error> {
        let mut w = self.plat.wire.borrow_mut();
        let Some((endpoint, data)) = w.to_engine.front() else {
            return Ok(None);
        };
        let (consume, out) = f(*endpoint, &data.as_slice());
        if consume {
            w.to_engine.pop_front();
        }
        Ok(Some(out))
    }
}

/// Names the peer calls; the last two are not bound.
const METHODS: [&str; 6] = ["add", "echo", "later", "obj.add", "nope", ""];

#[derive(Arbitrary, Debug)]
enum Params {
    Ints(i32, i32),
    Bytes(Vec<u8>),
    /// Any MessagePack bytes after an array header of `n` elements.
    Raw(u8, Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes on an endpoint, cut into buffers.
    Bytes {
        rpc: bool,
        data: Vec<u8>,
    },
    /// A well-formed request (`notify`: a notification).
    Request {
        msgid: u32,
        method: u8,
        params: Params,
        notify: bool,
    },
    /// A reply to the engine's `which`-th request seen (or to `which` itself if there is none).
    Reply {
        which: u8,
        error: bool,
        value: i32,
    },
    Poll,
    /// The engine calls the peer.
    Call {
        method: u8,
        arg: i32,
    },
    Notify {
        arg: i32,
    },
    /// Takes the result of the engine's `which`-th pending call.
    Take {
        which: u8,
    },
    /// Answers the `which`-th deferred request.
    Respond {
        which: u8,
        value: i32,
    },
    /// The peer reads everything the engine sent.
    Drain,
    Capacity(u8),
    Advance(u16),
    Reset,
    Ready(bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    big: bool,
    ops: Vec<Op>,
}

fn enc(f: impl FnOnce(&mut Encoder<'_>) -> duet_codec::Result<()>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut e = Encoder::new(&mut buf);
    if f(&mut e).is_err() {
        return Vec::new();
    }
    let n = e.position();
    buf.truncate(n);
    buf
}

/// What the peer expects as the answer to one of its requests.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Sum(i32),
    Echo(Vec<u8>),
    /// An error text (unknown name, wrong arguments).
    Error,
    /// Anything (deferred, or arguments the handler may or may not accept).
    Any,
}

/// The peer's requests with one msgid, and the engine's answers to it so far.
#[derive(Default)]
struct Slot {
    requests: Vec<Expect>,
    /// Per answer: which requests it fits.
    answers: Vec<Vec<bool>>,
}

impl Slot {
    /// Whether every answer can be given to a distinct request it fits (Kuhn's algorithm).
    fn matching(&self) -> bool {
        fn augment(s: &Slot, a: usize, seen: &mut [bool], owner: &mut [Option<usize>]) -> bool {
            for r in 0..s.requests.len() {
                // An answer never fits a request sent after it (its list is shorter).
                if s.answers[a].get(r) == Some(&true) && !seen[r] {
                    seen[r] = true;
                    if owner[r].is_none_or(|o| augment(s, o, seen, owner)) {
                        owner[r] = Some(a);
                        return true;
                    }
                }
            }
            false
        }
        let mut owner = vec![None; self.requests.len()];
        (0..self.answers.len()).all(|a| {
            let mut seen = vec![false; self.requests.len()];
            augment(self, a, &mut seen, &mut owner)
        })
    }
}

/// The peer's bookkeeping.
#[derive(Default)]
struct Peer {
    /// Raw bytes were sent on `"rpc"`: content checks are off.
    raw: bool,
    /// msgid -> what the answer must be, one entry per request still unanswered.
    outstanding: HashMap<u32, Slot>,
    /// msgids of the engine's requests, in order.
    engine_calls: Vec<MsgId>,
    /// msgid -> values the peer replied with.
    replied: HashMap<u32, Vec<i32>>,
}

impl Peer {
    fn check(&mut self, ep: Endpoint, msg: &[u8]) {
        if ep != Endpoint::Rpc {
            return;
        }
        let (m, used) = rpc::parse(msg).expect("the engine sends well-formed messages");
        assert_eq!(used, msg.len(), "one message per send");
        match m {
            Message::Request { msgid, .. } => self.engine_calls.push(msgid),
            Message::Notification { .. } => {}
            Message::Response {
                msgid,
                error,
                result,
            } => {
                if self.raw {
                    return;
                }
                let id = msgid.as_u32().expect("msgids echoed as sent");
                let slot = self.outstanding.get_mut(&id).expect("answers a request");
                // Any request may be refused for nesting or space (handlers that call back).
                let refused = [text::NESTING, text::TOO_LARGE, text::RESULT_TOO_LARGE]
                    .iter()
                    .any(|t| error.decode::<&str>() == Ok(t));
                let fits: Vec<bool> = slot
                    .requests
                    .iter()
                    .map(|e| match e {
                        Expect::Any => true,
                        Expect::Error => !error.is_nil() && result.is_nil(),
                        Expect::Sum(s) => {
                            refused || error.is_nil() && result.decode::<i32>() == Ok(*s)
                        }
                        Expect::Echo(b) => {
                            refused || error.is_nil() && result.decode::<&[u8]>() == Ok(&b[..])
                        }
                    })
                    .collect();
                slot.answers.push(fits);
                // Requests may share a msgid: the answers so far must go to distinct requests
                // that each answer fits (a bipartite matching), so none is answered twice.
                assert!(
                    slot.matching(),
                    "wrong or extra answer {error:?} {result:?} for {:?}",
                    slot.requests
                );
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let wire = Rc::new(RefCell::new(Wire {
        capacity: 8,
        ready: true,
        ..Wire::default()
    }));
    let max = if input.big { 4 * PPB } else { PPB };
    let transport = FuzzTransport {
        plat: Plat {
            wire: wire.clone(),
            mem: NoMemory,
        },
        max,
    };
    let deferred: RefCell<Vec<Deferred>> = RefCell::new(Vec::new());
    let nested = Cell::new(0u32);
    let add = |a: i32, b: i32| a.wrapping_add(b);
    let echo = |ctx: &mut Context<'_>, req: Request<'_>| match req.args::<(&[u8],)>() {
        Ok((b,)) => ctx.respond(&Bin(b)),
        Err(e) => ctx.respond_error(&e),
    };
    let later = |ctx: &mut Context<'_>, _req: Request<'_>| {
        if let Some(d) = ctx.defer() {
            let mut v = deferred.borrow_mut();
            if v.len() < 8 {
                v.push(d);
            }
        }
    };
    // A handler that calls back into the peer (nested call) before answering.
    let obj_add = |ctx: &mut Context<'_>, a: i32, b: i32| {
        nested.set(nested.get() + 1);
        let r: Result<i32, _> = ctx.call_with_timeout("peer.get", (a,), Duration::from_millis(5));
        r.map(|v| v.wrapping_add(b))
            .map_err(|_| "nested call failed")
    };
    let mut engine: Rpc<'_, FuzzTransport, 8, 4, 2048, 512, 1024> = Rpc::new(transport);
    engine.set_timeout(Duration::from_millis(20));
    engine.bind("add", &add).unwrap();
    engine.bind_handler("echo", &echo).unwrap();
    engine.bind_handler("later", &later).unwrap();
    engine.bind("obj.add", &obj_add).unwrap();

    let mut peer = Peer::default();
    let mut pending: Vec<Pending<i32>> = Vec::new();
    for op in input.ops.into_iter().take(64) {
        match op {
            Op::Bytes { rpc, data } => {
                let ep = if rpc { Endpoint::Rpc } else { Endpoint::Raw };
                peer.raw |= rpc;
                let mut w = wire.borrow_mut();
                for c in data.chunks(PPB).take(16) {
                    w.to_engine.push_back((ep, c.to_vec()));
                }
            }
            Op::Request {
                msgid,
                method,
                params,
                notify,
            } => {
                let name = METHODS[method as usize % METHODS.len()];
                let args = match &params {
                    Params::Ints(a, b) => enc(|e| {
                        e.write_array_len(2)?;
                        e.write_i64(*a as i64)?;
                        e.write_i64(*b as i64)
                    }),
                    Params::Bytes(b) => enc(|e| {
                        e.write_array_len(1)?;
                        e.write_bin(b)
                    }),
                    Params::Raw(n, b) => enc(|e| {
                        e.write_array_len(*n as u32 % 4)?;
                        e.write_raw(b)
                    }),
                };
                let msg = enc(|e| {
                    e.write_array_len(if notify { 3 } else { 4 })?;
                    e.write_u64(if notify { 2 } else { 0 })?;
                    if !notify {
                        e.write_u64(msgid as u64)?;
                    }
                    e.write_str(name)?;
                    e.write_raw(&args)
                });
                if msg.is_empty() || msg.len() > PPB * 4 {
                    continue;
                }
                // Raw params may hold anything (even more messages): content checks off.
                if matches!(params, Params::Raw(..)) {
                    peer.raw = true;
                }
                if !notify {
                    let expect = match (name, &params) {
                        (_, Params::Raw(..)) => Expect::Any,
                        ("add", Params::Ints(a, b)) => Expect::Sum(a.wrapping_add(*b)),
                        ("echo", Params::Bytes(b)) => Expect::Echo(b.clone()),
                        ("nope" | "", _) => Expect::Error,
                        ("add" | "echo", _) => Expect::Error,
                        _ => Expect::Any,
                    };
                    // Too long for the engine's buffers: refused with an error text or dropped.
                    let expect = if msg.len() > PPB { Expect::Any } else { expect };
                    peer.outstanding
                        .entry(msgid)
                        .or_default()
                        .requests
                        .push(expect);
                }
                let mut w = wire.borrow_mut();
                for c in msg.chunks(PPB) {
                    w.to_engine.push_back((Endpoint::Rpc, c.to_vec()));
                }
                // A message of whole buffers ends with an empty one (the framing's end).
                if msg.len() % PPB == 0 {
                    w.to_engine.push_back((Endpoint::Rpc, Vec::new()));
                }
            }
            Op::Reply {
                which,
                error,
                value,
            } => {
                let msgid = peer
                    .engine_calls
                    .get(which as usize)
                    .copied()
                    .unwrap_or(MsgId::new(which as i64));
                let mut out = [0u8; 64];
                let n = if error {
                    rpc::encode_response::<_, ()>(&mut out, msgid, Some("boom"), &())
                } else {
                    if let Some(id) = msgid.as_u32() {
                        peer.replied.entry(id).or_default().push(value);
                    }
                    rpc::encode_response::<(), _>(&mut out, msgid, None, &value)
                }
                .unwrap();
                wire.borrow_mut()
                    .to_engine
                    .push_back((Endpoint::Rpc, out[..n].to_vec()));
            }
            Op::Poll => {
                let _ = engine.poll();
            }
            Op::Call { method, arg } => {
                let name = ["peer.get", "peer.x"][method as usize & 1];
                if let Ok(p) = engine.call_async::<i32, _>(name, (arg,)) {
                    if pending.len() < 8 {
                        pending.push(p);
                    } else {
                        let _ = engine.join(p, Instant::from_micros(0));
                    }
                }
            }
            Op::Notify { arg } => {
                let _ = engine.notify("peer.log", (arg,));
            }
            Op::Take { which } => {
                if pending.is_empty() {
                    continue;
                }
                let i = which as usize % pending.len();
                if let Poll::Ready(r) = engine.poll_pending(&pending[i]) {
                    let p = pending.swap_remove(i);
                    if let (Ok(v), false) = (r, peer.raw) {
                        let sent = peer.replied.get(&p.msgid()).map(|v| &v[..]);
                        assert!(
                            sent.unwrap_or(&[]).contains(&v),
                            "call {} returned {v}, never sent",
                            p.msgid()
                        );
                    }
                }
            }
            Op::Respond { which, value } => {
                let d = {
                    let mut v = deferred.borrow_mut();
                    if v.is_empty() {
                        continue;
                    }
                    let i = which as usize % v.len();
                    v.swap_remove(i)
                };
                let _ = engine.respond(d, &value);
            }
            Op::Drain => {
                let msgs: Vec<_> = wire.borrow_mut().from_engine.drain(..).collect();
                for (ep, m) in msgs {
                    peer.check(ep, &m);
                }
            }
            Op::Capacity(c) => wire.borrow_mut().capacity = c as usize % 16,
            Op::Advance(ms) => wire.borrow_mut().now += ms as u64 * 1000,
            Op::Reset => {
                wire.borrow_mut().reset = true;
                // Answers to requests from before a reset are not owed any more.
                peer.raw = true;
            }
            Op::Ready(r) => wire.borrow_mut().ready = r,
        }
    }
    // Everything the engine sent and the peer has not read yet is checked here.
    let _ = engine.poll();
    let msgs: Vec<_> = wire.borrow_mut().from_engine.drain(..).collect();
    for (ep, m) in msgs {
        peer.check(ep, &m);
    }
    // Take every pending result, so no slot stays held.
    for p in pending {
        let _ = engine.join(p, Instant::from_micros(0));
    }
});
