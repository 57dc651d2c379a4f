//! Adversarial tests: a raw peer (the other end of the in-memory pair, driven with `try_send` /
//! `try_recv`, no duet engine) sends garbage and hostile-but-valid messages to a serving `Rpc`,
//! possibly with calls in flight. After every case the engine must have counted what it dropped
//! and must still serve a normal request and complete a normal call (it resynchronises).
// `duet::Error` carries the peer's error text inline, by design (see the crate root).
#![allow(clippy::result_large_err)]

mod common;
mod suite;

use std::cell::Cell;
use std::task::Poll;
use std::time::Duration;

use common::{pair, pair_with, MemTransport, PPB};
use duet::error::text;
use duet::{Endpoint, Error, RemoteError, Rpc, Stats, Transport};
use duet_codec::rpc::{parse, Message};
use duet_codec::{Encoder, MAX_DEPTH};
use embedded_io::Read;
use proptest::collection::vec;
use proptest::prelude::*;

/// The usual shape: 4 calls, 2048-byte reassembly, 512-byte reply slots.
type Small<'a> = Rpc<'a, MemTransport, 8, 4, 2048, 512, 1024>;
/// One call slot (so a new call reuses the slot of the last one).
type One<'a> = Rpc<'a, MemTransport, 8, 1, 2048, 512, 1024>;
/// A reassembly buffer of exactly four payloads.
type Exact<'a> = Rpc<'a, MemTransport, 8, 2, 1984, 512, 1024>;
/// Room for 10 000-byte messages, small reply slots.
type Big<'a> = Rpc<'a, MemTransport, 8, 2, 16384, 512, 1024>;
/// Room for 10 000-byte messages and replies.
type BigReply<'a> = Rpc<'a, MemTransport, 8, 2, 16384, 12288, 1024>;

/// The largest message a 2048-byte reassembly buffer accepts (payloads are pulled only while a
/// whole payload fits): four full payloads.
const SMALL_MAX: usize = 2048 / PPB * PPB;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// MessagePack helpers (the peer builds its bytes by hand).

/// Encodes with the codec's encoder into a fresh vector.
fn enc(f: impl FnOnce(&mut Encoder<'_>) -> duet_codec::Result<()>) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let mut e = Encoder::new(&mut buf);
    f(&mut e).unwrap();
    let n = e.position();
    buf.truncate(n);
    buf
}

fn mp_str(s: &str) -> Vec<u8> {
    enc(|e| e.write_str(s))
}

fn mp_int(v: i64) -> Vec<u8> {
    enc(|e| e.write_i64(v))
}

/// An integer with an explicit marker (fixints: the marker is the value).
fn int_as(marker: u8, bits: u64) -> Vec<u8> {
    let width = match marker {
        0xcc..=0xd3 => 1usize << (marker & 3),
        _ => return vec![bits as u8],
    };
    let mut v = vec![marker];
    v.extend_from_slice(&bits.to_be_bytes()[8 - width..]);
    v
}

/// Every encoding of the small positive value `n` (< 128).
fn widths_of(n: u8) -> Vec<Vec<u8>> {
    let mut v = vec![vec![n]];
    for m in 0xcc..=0xd3u8 {
        v.push(int_as(m, u64::from(n)));
    }
    v
}

fn request(id: &[u8], method: &str, params: &[u8]) -> Vec<u8> {
    let mut v = vec![0x94, 0x00];
    v.extend_from_slice(id);
    v.extend(mp_str(method));
    v.extend_from_slice(params);
    v
}

fn notification(method: &str, params: &[u8]) -> Vec<u8> {
    let mut v = vec![0x93, 0x02];
    v.extend(mp_str(method));
    v.extend_from_slice(params);
    v
}

fn response(id: &[u8], error: &[u8], result: &[u8]) -> Vec<u8> {
    let mut v = vec![0x94, 0x01];
    v.extend_from_slice(id);
    v.extend_from_slice(error);
    v.extend_from_slice(result);
    v
}

/// `[a, b]` as params.
fn pair_params(a: i64, b: i64) -> Vec<u8> {
    let mut v = vec![0x92];
    v.extend(mp_int(a));
    v.extend(mp_int(b));
    v
}

/// `depth` arrays, each holding the next (the innermost empty).
fn nested(depth: usize) -> Vec<u8> {
    let mut v = vec![0x91; depth.saturating_sub(1)];
    if depth > 0 {
        v.push(0x90);
    }
    v
}

/// The exact response duet sends to `add(a, b)` with msgid bytes `id`.
fn add_reply(id: &[u8], sum: i32) -> Vec<u8> {
    response(id, &[0xc0], &mp_int(i64::from(sum)))
}

/// A MessagePack value, for generated params, errors and results.
#[derive(Clone, Debug)]
enum V {
    Nil,
    Bool(bool),
    Int(i64),
    Big(u64),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Arr(Vec<V>),
    Map(Vec<(V, V)>),
}

fn write_v(e: &mut Encoder<'_>, v: &V) -> duet_codec::Result<()> {
    match v {
        V::Nil => e.write_nil(),
        V::Bool(b) => e.write_bool(*b),
        V::Int(i) => e.write_i64(*i),
        V::Big(u) => e.write_u64(*u),
        V::F64(f) => e.write_f64(*f),
        V::Str(s) => e.write_str(s),
        V::Bin(b) => e.write_bin(b),
        V::Arr(a) => {
            e.write_array_len(a.len() as u32)?;
            a.iter().try_for_each(|x| write_v(e, x))
        }
        V::Map(m) => {
            e.write_map_len(m.len() as u32)?;
            m.iter().try_for_each(|(k, x)| {
                write_v(e, k)?;
                write_v(e, x)
            })
        }
    }
}

fn bytes_of(v: &V) -> Vec<u8> {
    enc(|e| write_v(e, v))
}

fn value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        Just(V::Nil),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::Int),
        (-300i64..300).prop_map(V::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(V::Big),
        any::<f64>().prop_map(V::F64),
        "\\PC{0,24}".prop_map(V::Str),
        vec(any::<u8>(), 0..24).prop_map(V::Bin),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(V::Arr),
            vec((inner.clone(), inner), 0..4).prop_map(V::Map),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// The raw peer.

fn send(peer: &mut MemTransport, bytes: &[u8]) {
    peer.try_send(Endpoint::Rpc, bytes).unwrap();
}

/// Sends `bytes` as individual payloads of `PPB` bytes (the last one shorter or empty only if
/// `bytes` is), whatever the transport's message limit.
fn send_chunked(peer: &mut MemTransport, bytes: &[u8]) {
    for c in bytes.chunks(PPB) {
        send(peer, c);
    }
}

/// Every message the engine sent to the peer, reassembled (a payload shorter than `PPB`, or one
/// that completes a parseable message, ends a message).
fn received(peer: &mut MemTransport) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut buf = [0u8; PPB];
    while let Some(r) = peer.try_recv(&mut buf).unwrap() {
        assert_eq!(r.endpoint, Endpoint::Rpc, "duet sends only on rpc here");
        cur.extend_from_slice(&buf[..r.len]);
        let whole = matches!(parse(&cur), Ok((_, used)) if used == cur.len());
        if r.len < PPB || whole {
            out.push(std::mem::take(&mut cur));
        }
    }
    assert!(cur.is_empty(), "a reply ended with a continuation payload");
    out
}

/// The error text of a response.
fn error_text(bytes: &[u8]) -> String {
    match parse(bytes).unwrap().0 {
        Message::Response { error, .. } => error.decoder().read_str().unwrap().to_string(),
        m => panic!("not a response: {m:?}"),
    }
}

/// The msgid bytes and error text of a response (for checking both at once).
fn id_and_text(bytes: &[u8], id_len: usize) -> (Vec<u8>, String) {
    (bytes[2..2 + id_len].to_vec(), error_text(bytes))
}

/// Polls until the engine has pulled everything the peer sent, reading the serial stream so
/// its backpressure never stalls the engine. Returns the serial bytes read.
fn drive<const H: usize, const C: usize, const B: usize, const R: usize, const S: usize>(
    rpc: &mut Rpc<'_, MemTransport, H, C, B, R, S>,
) -> Vec<u8> {
    let mut serial = Vec::new();
    for _ in 0..10_000 {
        rpc.poll().unwrap();
        let mut s = rpc.serial();
        let n = s.available();
        if n > 0 {
            let mut b = vec![0u8; n];
            let got = s.read(&mut b).unwrap();
            serial.extend_from_slice(&b[..got]);
        }
        if rpc.transport().queued() == 0 {
            rpc.poll().unwrap();
            return serial;
        }
    }
    panic!("the engine stopped pulling payloads");
}

/// The engine still serves a request and completes a call: `add(20, 22)` from the peer (Arduino
/// msgid width) gets its exact answer, and a call from the engine gets the peer's answer.
fn recovers<const H: usize, const C: usize, const B: usize, const R: usize, const S: usize>(
    rpc: &mut Rpc<'_, MemTransport, H, C, B, R, S>,
    peer: &mut MemTransport,
) {
    let id = [0xce, 0x24, 0x00, 0x1a, 0x30];
    send(peer, &request(&id, "add", &pair_params(20, 22)));
    drive(rpc);
    assert_eq!(
        received(peer),
        vec![add_reply(&id, 42)],
        "served after the attack"
    );

    let p = rpc.call_async::<i32, _>("ping", (7,)).unwrap();
    let got = received(peer);
    assert_eq!(got.len(), 1);
    let msgid = match parse(&got[0]).unwrap().0 {
        Message::Request {
            msgid,
            method,
            params,
        } => {
            assert_eq!(method, "ping");
            assert_eq!(params.as_bytes(), [0x91, 0x07]);
            msgid
        }
        m => panic!("{m:?}"),
    };
    assert_eq!(msgid.value(), i64::from(p.msgid()));
    send(peer, &response(&mp_int(msgid.value()), &[0xc0], &[14]));
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(5));
    assert_eq!(
        rpc.join(p, deadline),
        Ok(14),
        "a call completes after the attack"
    );
}

/// Takes the request the engine just sent (its msgid must be `id`).
fn take_request(peer: &mut MemTransport, id: u32) {
    let got = received(peer);
    assert_eq!(got.len(), 1, "one request");
    match parse(&got[0]).unwrap().0 {
        Message::Request { msgid, .. } => assert_eq!(msgid.value(), i64::from(id)),
        m => panic!("{m:?}"),
    }
}

fn ready<R>(
    rpc: &mut Rpc<'_, MemTransport, 8, 4, 2048, 512, 1024>,
    p: &duet::Pending<R>,
) -> Option<Result<R, Error>>
where
    R: serde::de::DeserializeOwned,
{
    match rpc.poll_pending(p) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

fn soon<const H: usize, const C: usize, const B: usize, const R: usize, const S: usize>(
    rpc: &mut Rpc<'_, MemTransport, H, C, B, R, S>,
) -> duet::Instant {
    rpc.context().now().saturating_add(Duration::from_secs(5))
}

/// Joins `p` with a generous deadline.
fn finish<T, const H: usize, const C: usize, const B: usize, const R: usize, const S: usize>(
    rpc: &mut Rpc<'_, MemTransport, H, C, B, R, S>,
    p: duet::Pending<T>,
) -> Result<T, Error>
where
    T: serde::de::DeserializeOwned,
{
    let d = soon(rpc);
    rpc.join(p, d)
}

/// Sum of the counters that record something the peer sent being dropped or refused.
fn dropped(s: &Stats) -> u32 {
    s.framing_errors + s.malformed_messages + s.oversized_messages
}

/// Sum of the counters that record a message handled without a handler running.
fn unhandled(s: &Stats) -> u32 {
    s.late_replies + s.ignored_notifications + s.unknown_requests + s.nesting_refused
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bytes.

/// Starts that take the parser deep before the bytes turn random.
fn plausible_start() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![0x94, 0x00]),
        Just(vec![0x94, 0x01]),
        Just(vec![0x93, 0x02]),
        Just(vec![0x94, 0x00, 0x01, 0xa3, b'a', b'd', b'd']),
        Just(vec![0x94, 0x01, 0x01]),
        Just(vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        Just(vec![0xdc, 0x01, 0x00]),
        Just(vec![0x94, 0x00, 0x01, 0xdb, 0x7f, 0xff, 0xff, 0xff]),
        Just(vec![
            0x94, 0x00, 0x01, 0xa3, b'a', b'd', b'd', 0xdd, 0, 0, 1, 0
        ]),
    ]
}

#[derive(Clone, Debug)]
enum Chunk {
    Rpc(Vec<u8>),
    Raw(Vec<u8>),
}

fn chunk() -> impl Strategy<Value = Chunk> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..=PPB).prop_map(Chunk::Rpc),
        2 => vec(any::<u8>(), PPB).prop_map(Chunk::Rpc),
        2 => (plausible_start(), vec(any::<u8>(), 0..=PPB), any::<bool>()).prop_map(
            |(mut s, rest, full)| {
                s.extend(rest);
                s.truncate(if full { PPB } else { PPB - 1 });
                if full {
                    s.resize(PPB, 0);
                }
                Chunk::Rpc(s)
            }
        ),
        2 => vec(any::<u8>(), 0..=PPB).prop_map(Chunk::Raw),
    ]
}

/// Starts a message that never ends: a request or notification whose method name is a str32
/// of 2 GiB.
const ENDLESS_REQUEST: [u8; 8] = [0x94, 0x00, 0x01, 0xdb, 0x7f, 0xff, 0xff, 0xff];
const ENDLESS_NOTIFICATION: [u8; 7] = [0x93, 0x02, 0xdb, 0x7f, 0xff, 0xff, 0xff];

/// A burst of full payloads of a message that never ends: grows until the reassembly buffer
/// is full (then it is oversized) or a short payload ends it.
fn burst() -> impl Strategy<Value = Vec<Chunk>> {
    (1usize..=6, vec(any::<u8>(), PPB), any::<bool>()).prop_map(|(k, mut first, req)| {
        if req {
            first[..8].copy_from_slice(&ENDLESS_REQUEST);
        } else {
            first[..7].copy_from_slice(&ENDLESS_NOTIFICATION);
        }
        let mut v = vec![Chunk::Rpc(first)];
        for i in 1..k {
            v.push(Chunk::Rpc(vec![i as u8; PPB]));
        }
        v
    })
}

fn attack() -> impl Strategy<Value = Vec<Chunk>> {
    (
        vec(prop_oneof![chunk().prop_map(|c| vec![c]), burst()], 1..10),
        vec(any::<u8>(), 0..PPB),
    )
        .prop_map(|(groups, end)| {
            let mut v: Vec<Chunk> = groups.into_iter().flatten().collect();
            // A short payload ends whatever message is open (the framing rule).
            v.push(Chunk::Rpc(end));
            v
        })
}

proptest! {
    #![proptest_config(cfg(384))]

    /// Random payloads on "rpc" (full ones announcing continuation, short ones ending a
    /// message) and "raw", with or without a call in flight: no panic, raw bytes arrive intact,
    /// every rpc byte is accounted for by a counter (or an accidental message), and the engine
    /// serves and calls normally afterwards.
    #[test]
    fn arbitrary_payloads_are_counted_and_the_engine_recovers(
        chunks in attack(),
        in_flight in any::<bool>(),
    ) {
        let adds = Cell::new(0u32);
        let add = |a: i32, b: i32| {
            adds.set(adds.get() + 1);
            a.wrapping_add(b)
        };
        let (t, mut peer) = pair_with(64, PPB);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("add", &add).unwrap();
        let pending = in_flight.then(|| {
            let p = rpc.call_async::<u32, _>("f", ()).unwrap();
            take_request(&mut peer, p.msgid());
            p
        });
        let before = rpc.stats();
        let mut raw = Vec::new();
        let mut rpc_bytes = 0;
        for c in &chunks {
            match c {
                Chunk::Rpc(b) => {
                    rpc_bytes += b.len();
                    peer.try_send(Endpoint::Rpc, b).unwrap();
                }
                Chunk::Raw(b) => {
                    raw.extend_from_slice(b);
                    peer.try_send(Endpoint::Raw, b).unwrap();
                }
            }
        }
        let serial = drive(&mut rpc);
        let after = rpc.stats();
        prop_assert_eq!(serial, raw, "raw bytes arrive intact and in order");
        prop_assert_eq!(after.serial_dropped, 0);
        prop_assert_eq!(after.transport_errors, 0);
        prop_assert_eq!(after.reply_failures, 0);
        prop_assert_eq!(after.expired_calls, 0);
        let replies = received(&mut peer);
        for r in &replies {
            prop_assert!(matches!(parse(r), Ok((Message::Response { .. }, _))), "{:02x?}", r);
        }
        // The in-flight call is still waiting, unless the bytes happened to hold a valid
        // response to it (msgid 1: `[0x94, 1, 1, error, result]`).
        let mut answered = 0;
        if let Some(p) = pending {
            if ready(&mut rpc, &p).is_some() {
                answered = 1;
            } else {
                send(&mut peer, &response(&mp_int(i64::from(p.msgid())), &[0xc0], &[0x2a]));
                let d = soon(&mut rpc);
                prop_assert_eq!(rpc.join(p, d), Ok(42));
            }
        }
        if rpc_bytes > 0 {
            let accounted = dropped(&after) - dropped(&before) + unhandled(&after)
                - unhandled(&before)
                + adds.get()
                + answered;
            prop_assert!(accounted >= 1, "rpc bytes vanished without a trace: {:?}", after);
        }
        recovers(&mut rpc, &mut peer);
    }

    /// Payloads that start with a byte no message can start with are each dropped and counted
    /// as malformed, exactly once, whether they announce continuation or not.
    #[test]
    fn payloads_that_cannot_start_a_message_are_malformed(
        payloads in vec(
            (
                prop_oneof![0x00u8..=0x8f, 0xc0u8..=0xc3, 0xe0u8..=0xff],
                vec(any::<u8>(), 0..PPB),
            ),
            1..8,
        ),
    ) {
        let add = |a: i32, b: i32| a.wrapping_add(b);
        let (t, mut peer) = pair();
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("add", &add).unwrap();
        for (first, rest) in &payloads {
            let mut b = vec![*first];
            b.extend_from_slice(rest);
            send(&mut peer, &b);
        }
        drive(&mut rpc);
        let s = rpc.stats();
        prop_assert_eq!(s.malformed_messages, payloads.len() as u32);
        prop_assert_eq!(s.framing_errors, 0);
        prop_assert_eq!(received(&mut peer), Vec::<Vec<u8>>::new());
        recovers(&mut rpc, &mut peer);
    }

    /// A valid request cut anywhere and sent as one short payload is an incomplete tail: dropped,
    /// one framing error, no reply; the whole request afterwards is answered.
    #[test]
    fn a_cut_request_in_a_short_payload_is_a_framing_error(
        params in vec(value(), 0..4),
        cut in any::<prop::sample::Index>(),
        id in 0u32..=u32::MAX,
    ) {
        let seen = Cell::new(0u32);
        let h = |_: &mut duet::Context<'_>, _: duet::Request<'_>| seen.set(seen.get() + 1);
        let (t, mut peer) = pair_with(64, 4096);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind_handler("h", &h).unwrap();
        let idb = mp_int(i64::from(id));
        let msg = request(&idb, "h", &bytes_of(&V::Arr(params)));
        prop_assume!(msg.len() < PPB);
        let at = 1 + cut.index(msg.len() - 1); // 1..len
        send(&mut peer, &msg[..at]);
        drive(&mut rpc);
        prop_assert_eq!(rpc.stats().framing_errors, 1);
        prop_assert_eq!(rpc.stats().malformed_messages, 0);
        prop_assert_eq!(seen.get(), 0);
        prop_assert_eq!(received(&mut peer), Vec::<Vec<u8>>::new());
        send(&mut peer, &msg);
        drive(&mut rpc);
        prop_assert_eq!(seen.get(), 1);
        prop_assert_eq!(received(&mut peer), vec![response(&idb, &[0xc0], &[0xc0])]);
        prop_assert_eq!(rpc.stats().framing_errors, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile responses.

#[derive(Clone, Debug)]
enum Id {
    /// The call's own msgid in this marker's width (fixint when < 0xcc).
    Ours(u8),
    /// A uint64 that is not the msgid (possibly the msgid + k * 2^32).
    Other64(u64),
    /// A negative msgid.
    Negative(i64),
    /// A uint32 that is not the msgid.
    Other32(u32),
}

fn msgid_strategy() -> impl Strategy<Value = Id> {
    prop_oneof![
        3 => prop_oneof![Just(0u8), 0xccu8..=0xd3].prop_map(Id::Ours),
        1 => prop_oneof![any::<u64>(), (1u64..16).prop_map(|k| (k << 32) | 1)].prop_map(Id::Other64),
        1 => (i64::MIN..0).prop_map(Id::Negative),
        1 => (2u32..).prop_map(Id::Other32),
    ]
}

/// The msgid bytes, and whether they name the call `n` (1 in these tests).
fn id_bytes(id: &Id, n: u32) -> (Vec<u8>, bool) {
    match *id {
        Id::Ours(0) => (vec![n as u8], true),
        Id::Ours(m) => (int_as(m, u64::from(n)), true),
        Id::Other64(v) => (int_as(0xcf, v), v == u64::from(n)),
        Id::Negative(v) => (int_as(0xd3, v as u64), false),
        Id::Other32(v) => (int_as(0xce, u64::from(v)), v == n),
    }
}

fn error_strategy() -> impl Strategy<Value = V> {
    prop_oneof![
        2 => Just(V::Nil),
        2 => value(),
        1 => "\\PC{100,200}".prop_map(V::Str),
    ]
}

proptest! {
    #![proptest_config(cfg(384))]

    /// A response with a msgid of any width and sign, any error value and any result, sent
    /// once or twice, to a call in flight: it completes the call only if the msgid's value is
    /// the call's, with the error taking precedence over the result; anything else is a late
    /// reply. The call always ends with the right outcome.
    #[test]
    fn hostile_responses_reach_only_their_call(
        id in msgid_strategy(),
        err in error_strategy(),
        res in value(),
        dup in any::<bool>(),
    ) {
        let add = |a: i32, b: i32| a + b;
        let (t, mut peer) = pair_with(64, 4096);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("add", &add).unwrap();
        let p = rpc.call_async::<i64, _>("f", ()).unwrap();
        prop_assert_eq!(p.msgid(), 1);
        take_request(&mut peer, 1);
        let (idb, ours) = id_bytes(&id, 1);
        let (eb, rb) = (bytes_of(&err), bytes_of(&res));
        let msg = response(&idb, &eb, &rb);
        prop_assume!(msg.len() <= SMALL_MAX);
        send(&mut peer, &msg);
        if dup {
            send(&mut peer, &msg);
        }
        drive(&mut rpc);
        let s = rpc.stats();
        prop_assert_eq!(dropped(&s), 0, "valid responses are never dropped as malformed");
        prop_assert_eq!(received(&mut peer), Vec::<Vec<u8>>::new(), "responses get no answer");
        if !ours {
            prop_assert_eq!(s.late_replies, 1 + u32::from(dup));
            prop_assert!(ready(&mut rpc, &p).is_none(), "a foreign msgid completed the call");
            send(&mut peer, &response(&[1], &[0xc0], &[0x2a]));
            let d = soon(&mut rpc);
            prop_assert_eq!(rpc.join(p, d), Ok(42));
            return Ok(());
        }
        prop_assert_eq!(s.late_replies, u32::from(dup));
        let r = ready(&mut rpc, &p).expect("delivered");
        if eb.len() + rb.len() > 512 {
            prop_assert_eq!(r, Err(Error::MessageTooLarge { len: eb.len() + rb.len(), max: 512 }));
        } else {
            match (&err, &res) {
                (V::Nil, V::Int(i)) => prop_assert_eq!(r, Ok(*i)),
                (V::Nil, _) => prop_assert!(matches!(r, Err(Error::Decode(_))), "{:?}", r),
                (V::Str(s), _) => {
                    prop_assert_eq!(r, Err(Error::Remote(RemoteError::from_text(s))));
                    let Err(Error::Remote(e)) = r else { unreachable!() };
                    let t = e.text().unwrap();
                    prop_assert!(s.starts_with(t) && t.len() <= 160);
                    prop_assert_eq!(e.truncated(), s.len() > 160);
                }
                _ => {
                    let Err(Error::Remote(e)) = r else {
                        return Err(TestCaseError::fail(format!("{r:?}")));
                    };
                    prop_assert_eq!(e.text(), None);
                    let raw = e.raw().unwrap();
                    prop_assert_eq!(raw, &eb[..eb.len().min(160)]);
                    prop_assert_eq!(e.truncated(), eb.len() > 160);
                }
            }
        }
        // The call is finished: a second look finds nothing, and a second response is late.
        prop_assert_eq!(ready(&mut rpc, &p), Some(Err(Error::Timeout)));
        send(&mut peer, &msg);
        drive(&mut rpc);
        prop_assert_eq!(rpc.stats().late_replies, 1 + u32::from(dup));
        recovers(&mut rpc, &mut peer);
    }

    /// Requests to a bound typed function with arbitrary params: exactly one response with the
    /// caller's msgid; the sum for two i32s, rpclib's arity text for another count, duet's
    /// type text otherwise. The same params in a notification run nothing wrong and send nothing.
    #[test]
    fn requests_with_arbitrary_params_always_get_one_answer(
        params in prop_oneof![
            vec(value(), 0..5),
            (any::<i32>(), any::<i32>()).prop_map(|(a, b)| vec![V::Int(a.into()), V::Int(b.into())]),
            (value(), value()).prop_map(|(a, b)| vec![a, b]),
        ],
        id in prop_oneof![Just(0u8), 0xccu8..=0xd3],
    ) {
        let runs = Cell::new(0u32);
        let add = |a: i32, b: i32| {
            runs.set(runs.get() + 1);
            a.wrapping_add(b)
        };
        let (t, mut peer) = pair_with(64, 4096);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("add", &add).unwrap();
        let pb = bytes_of(&V::Arr(params.clone()));
        let idb = if id == 0 { vec![9] } else { int_as(id, 9) };
        let req = request(&idb, "add", &pb);
        prop_assume!(req.len() <= SMALL_MAX);
        let ints: Option<Vec<i32>> = params
            .iter()
            .map(|v| match v {
                V::Int(i) => i32::try_from(*i).ok(),
                _ => None,
            })
            .collect();
        let valid = matches!(&ints, Some(v) if v.len() == 2);

        send(&mut peer, &notification("add", &pb));
        drive(&mut rpc);
        prop_assert_eq!(received(&mut peer), Vec::<Vec<u8>>::new(), "no reply to a notification");
        prop_assert_eq!(runs.get(), u32::from(valid));

        send(&mut peer, &req);
        drive(&mut rpc);
        let got = received(&mut peer);
        prop_assert_eq!(got.len(), 1);
        let r = &got[0];
        prop_assert_eq!(&r[..2 + idb.len()], &response(&idb, &[], &[])[..], "msgid echoed");
        if valid {
            let v = ints.unwrap();
            prop_assert_eq!(r, &add_reply(&idb, v[0].wrapping_add(v[1])));
            prop_assert_eq!(runs.get(), 2);
        } else {
            let text = error_text(r);
            if params.len() != 2 {
                prop_assert_eq!(
                    text,
                    format!(
                        "{} Function 'add' was called with an invalid number of arguments. \
                         Expected: 2, got: {}",
                        text::ARITY_PREFIX,
                        params.len()
                    )
                );
            } else {
                prop_assert!(text.starts_with(text::TYPE_PREFIX), "{}", text);
            }
            prop_assert_eq!(*r.last().unwrap(), 0xc0, "nil result beside the error");
            prop_assert_eq!(runs.get(), 0);
        }
        prop_assert_eq!(dropped(&rpc.stats()), 0);
        recovers(&mut rpc, &mut peer);
    }

    /// Many requests back to back (as Arduino may send them), each msgid in its own width,
    /// carried in full payloads that split messages anywhere: every one answered, in order.
    #[test]
    fn concatenated_requests_are_all_answered(
        reqs in vec((any::<i32>(), any::<i32>(), prop_oneof![Just(0u8), 0xccu8..=0xd3], 0u8..128), 1..150),
    ) {
        let add = |a: i32, b: i32| a.wrapping_add(b);
        let (t, mut peer) = pair_with(256, 1 << 16);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("add", &add).unwrap();
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for &(a, b, m, id) in &reqs {
            let idb = if m == 0 { vec![id] } else { int_as(m, u64::from(id)) };
            stream.extend(request(&idb, "add", &pair_params(a.into(), b.into())));
            want.push(add_reply(&idb, a.wrapping_add(b)));
        }
        send(&mut peer, &stream);
        drive(&mut rpc);
        prop_assert_eq!(received(&mut peer), want);
        let s = rpc.stats();
        prop_assert_eq!(dropped(&s) + s.reply_failures, 0);
    }

    /// The reassembly limit: a request of any length around the 2048-byte buffer is answered
    /// if it fits (four full payloads), else refused with duet's too-large text and counted;
    /// the engine serves normally afterwards.
    #[test]
    fn requests_around_the_reassembly_limit(len in 1400usize..2700) {
        let f = |s: String| s.len() as u32;
        let add = |a: i32, b: i32| a + b;
        let (t, mut peer) = pair_with(64, 1 << 16);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("len", &f).unwrap();
        rpc.bind("add", &add).unwrap();
        let n = len - 11; // [0, 5, "len", [str16]]
        let msg = request(&[5], "len", &[&[0x91][..], &mp_str(&"q".repeat(n))].concat());
        prop_assert_eq!(msg.len(), len);
        send(&mut peer, &msg);
        drive(&mut rpc);
        let got = received(&mut peer);
        if len <= SMALL_MAX {
            prop_assert_eq!(got, vec![response(&[5], &[0xc0], &int_as(0xcd, n as u64))]);
            prop_assert_eq!(rpc.stats().oversized_messages, 0);
        } else {
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(id_and_text(&got[0], 1), (vec![5], text::TOO_LARGE.to_string()));
            prop_assert_eq!(rpc.stats().oversized_messages, 1);
        }
        prop_assert_eq!(rpc.stats().framing_errors + rpc.stats().malformed_messages, 0);
        recovers(&mut rpc, &mut peer);
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted cases: responses.

#[test]
fn unknown_msgids_are_late_replies() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    // Wrong values in every width, negatives, and 1 + 2^32 (a u32 truncation would match).
    let mut ids = vec![
        vec![2],
        vec![0x7f],
        vec![0xff],
        int_as(0xd0, (-1i64) as u64),
    ];
    ids.push(int_as(0xcf, (1 << 32) | 1));
    ids.push(int_as(0xcf, u64::MAX));
    ids.push(int_as(0xd3, (-(1i64 << 32) + 1) as u64));
    ids.push(int_as(0xd3, i64::MIN as u64));
    ids.push(int_as(0xce, u64::from(u32::MAX)));
    for id in &ids {
        send(&mut peer, &response(id, &[0xc0], &[0x05]));
    }
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, ids.len() as u32);
    assert!(ready(&mut rpc, &p).is_none());
    // The real answer, in a uint64 width, still completes it.
    send(&mut peer, &response(&int_as(0xcf, 1), &[0xc0], &[0x06]));
    assert_eq!(finish(&mut rpc, p), Ok(6));
    recovers(&mut rpc, &mut peer);
}

#[test]
fn every_msgid_width_reaches_its_call() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    for (k, id) in (1u8..).zip(widths_of(0)) {
        // Each call gets the next msgid: rebuild the width for its value.
        let p = rpc.call_async::<u8, _>("f", ()).unwrap();
        assert_eq!(p.msgid(), u32::from(k));
        take_request(&mut peer, p.msgid());
        let idb = if id.len() == 1 {
            vec![k]
        } else {
            int_as(id[0], u64::from(k))
        };
        send(&mut peer, &response(&idb, &[0xc0], &[k]));
        assert_eq!(finish(&mut rpc, p), Ok(k), "{idb:02x?}");
    }
    assert_eq!(rpc.stats().late_replies, 0);
}

#[test]
fn duplicate_response_first_wins_second_is_late() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    // Both in one payload, and a third after the call was taken.
    let mut two = response(&[1], &[0xc0], &[0x0a]);
    two.extend(response(&[1], &[0xc0], &[0x0b]));
    send(&mut peer, &two);
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, 1);
    assert_eq!(finish(&mut rpc, p), Ok(10));
    send(&mut peer, &response(&[1], &[0xc0], &[0x0c]));
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, 2);
    recovers(&mut rpc, &mut peer);
}

#[test]
fn error_and_result_at_once_is_an_error() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &mp_str("boom"), &[0x07]));
    assert_eq!(
        finish(&mut rpc, p),
        Err(Error::Remote(RemoteError::from_text("boom")))
    );
}

#[test]
fn error_that_is_a_map_or_bad_utf8_is_kept_raw() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let map = bytes_of(&V::Map(vec![(V::Str("code".into()), V::Int(7))]));
    let bad = vec![0xa3, 0xff, 0xfe, b'x'];
    for err in [map, bad] {
        let p = rpc.call_async::<i32, _>("f", ()).unwrap();
        take_request(&mut peer, p.msgid());
        send(
            &mut peer,
            &response(&mp_int(p.msgid().into()), &err, &[0xc0]),
        );
        match finish(&mut rpc, p) {
            Err(Error::Remote(e)) => {
                assert_eq!(e.text(), None);
                assert_eq!(e.raw(), Some(&err[..]));
                assert!(!e.truncated());
            }
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(dropped(&rpc.stats()), 0);
}

#[test]
fn error_nested_at_the_depth_limit_is_delivered_beyond_it_dropped() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    // The response array is one level: its error may nest MAX_DEPTH - 1 more.
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    let ok = nested(MAX_DEPTH - 1);
    send(&mut peer, &response(&[1], &ok, &[0xc0]));
    match finish(&mut rpc, p) {
        Err(Error::Remote(e)) => assert_eq!(e.raw(), Some(&ok[..])),
        r => panic!("{r:?}"),
    }
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 2);
    for depth in [MAX_DEPTH, MAX_DEPTH + 1, 400] {
        send(&mut peer, &response(&[2], &nested(depth), &[0xc0]));
    }
    drive(&mut rpc);
    assert_eq!(rpc.stats().malformed_messages, 3);
    assert!(
        ready(&mut rpc, &p).is_none(),
        "still waiting for a real answer"
    );
    send(&mut peer, &response(&[2], &[0xc0], &[0x03]));
    assert_eq!(finish(&mut rpc, p), Ok(3));
    recovers(&mut rpc, &mut peer);
}

/// A 10 000-byte error text, in 21 payloads: too large for a 512-byte reply slot
/// (`MessageTooLarge`), cut to 160 bytes with a large slot, and dropped as oversized (the call
/// waits on) with a 2048-byte reassembly buffer.
#[test]
fn ten_thousand_byte_error_text() {
    let long = "e".repeat(10_000);
    let err = mp_str(&long);
    assert_eq!(err.len(), 10_003);
    let add = |a: i32, b: i32| a + b;

    let (t, mut peer) = pair_with(64, 1 << 16);
    let mut rpc: Big = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &err, &[0xc0]));
    assert_eq!(
        finish(&mut rpc, p),
        Err(Error::MessageTooLarge {
            len: 10_004,
            max: 512
        })
    );
    assert_eq!(dropped(&rpc.stats()), 0);
    recovers(&mut rpc, &mut peer);

    let (t, mut peer) = pair_with(64, 1 << 16);
    let mut rpc: BigReply = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &err, &[0x01]));
    match finish(&mut rpc, p) {
        Err(Error::Remote(e)) => {
            assert_eq!(e.text(), Some(&long[..160]));
            assert!(e.truncated());
        }
        r => panic!("{r:?}"),
    }
    recovers(&mut rpc, &mut peer);

    let (t, mut peer) = pair_with(64, 1 << 16);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &err, &[0xc0]));
    drive(&mut rpc);
    assert_eq!(rpc.stats().oversized_messages, 1);
    assert_eq!(
        received(&mut peer),
        Vec::<Vec<u8>>::new(),
        "no reply to a response"
    );
    assert!(ready(&mut rpc, &p).is_none());
    send(&mut peer, &response(&[1], &[0xc0], &[0x02]));
    assert_eq!(finish(&mut rpc, p), Ok(2));
    recovers(&mut rpc, &mut peer);
}

#[test]
fn late_reply_after_a_timeout_is_dropped_and_counted() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let r = rpc.call_with_timeout::<i32, _>("f", (), Duration::from_millis(30));
    assert_eq!(r, Err(Error::Timeout));
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &[0xc0], &[0x01]));
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, 1);
    // An abandoned call is reclaimed at its deadline (expired), then its reply is late too.
    rpc.set_timeout(Duration::from_millis(30));
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    assert_eq!(p.msgid(), 2);
    drop(p);
    take_request(&mut peer, 2);
    // (A blocking call that timed out may or may not count as expired, depending on whether
    // a poll reclaimed its slot before `join` saw the deadline; count from here.)
    let expired = rpc.stats().expired_calls;
    std::thread::sleep(Duration::from_millis(60));
    drive(&mut rpc);
    assert_eq!(rpc.stats().expired_calls, expired + 1);
    send(&mut peer, &response(&[2], &[0xc0], &[0x02]));
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, 2);
    rpc.set_timeout(Duration::from_secs(5));
    recovers(&mut rpc, &mut peer);
}

/// A reply that arrived before the call's deadline is kept until it is taken, even when that
/// is after the deadline and other calls were opened meanwhile; until then the slot stays busy.
#[test]
fn reply_in_time_is_kept_until_taken_after_the_deadline() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.set_timeout(Duration::from_millis(300));
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &[0xc0], &[0x2a]));
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, 0, "the reply came in time");
    std::thread::sleep(Duration::from_millis(400));
    // The next call reclaims expired slots; the answered one is not expired.
    rpc.set_timeout(Duration::from_secs(5));
    let q = rpc.call_async::<i32, _>("g", ()).unwrap();
    take_request(&mut peer, 2);
    drive(&mut rpc);
    assert_eq!(finish(&mut rpc, p), Ok(42));
    send(&mut peer, &response(&[2], &[0xc0], &[0x07]));
    assert_eq!(finish(&mut rpc, q), Ok(7));
    assert_eq!(rpc.stats().expired_calls, 0);
    assert_eq!(rpc.stats().late_replies, 0);

    // With one slot, an answered call not yet taken makes the next call TooManyCalls.
    let (t, mut peer) = pair();
    let mut rpc: One = Rpc::new(t);
    rpc.set_timeout(Duration::from_millis(300));
    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    take_request(&mut peer, 1);
    send(&mut peer, &response(&[1], &[0xc0], &[0x05]));
    drive(&mut rpc);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        rpc.call_async::<i32, _>("g", ()).map(|_| ()),
        Err(Error::TooManyCalls)
    );
    assert_eq!(finish(&mut rpc, p), Ok(5));
    let q = rpc.call_async::<i32, _>("g", ()).unwrap();
    take_request(&mut peer, 2);
    send(&mut peer, &response(&[2], &[0xc0], &[0x06]));
    assert_eq!(finish(&mut rpc, q), Ok(6));
}

/// With one call slot, every call reuses it; the msgid counter keeps a stale or guessed
/// answer from reaching the new occupant.
#[test]
fn reused_slot_gets_only_its_own_answer() {
    let (t, mut peer) = pair();
    let mut rpc: One = Rpc::new(t);
    let r = rpc.call_with_timeout::<i32, _>("f", (), Duration::from_millis(30));
    assert_eq!(r, Err(Error::Timeout));
    take_request(&mut peer, 1);

    // The peer answers the next msgid before it is used: dropped.
    send(&mut peer, &response(&[2], &[0xc0], &[0x63]));
    drive(&mut rpc);
    assert_eq!(rpc.stats().late_replies, 1);

    let p = rpc.call_async::<i32, _>("f", ()).unwrap();
    assert_eq!(p.msgid(), 2);
    take_request(&mut peer, 2);
    // The stale answer to call 1 arrives first, then the right one.
    send(&mut peer, &response(&[1], &[0xc0], &[0x6f]));
    send(&mut peer, &response(&[2], &[0xc0], &[0x16]));
    assert_eq!(finish(&mut rpc, p), Ok(22));
    assert_eq!(rpc.stats().late_replies, 2);
}

// ---------------------------------------------------------------------------------------------
// Targeted cases: requests.

#[test]
fn request_msgids_of_every_width_are_echoed() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let mut ids: Vec<Vec<u8>> = widths_of(5);
    ids.extend([
        vec![0xff],                        // -1, negative fixint
        int_as(0xd0, (-128i64) as u64),    // int8
        int_as(0xd1, (-30_000i64) as u64), // int16
        int_as(0xd2, (-(1i64 << 31)) as u64),
        int_as(0xd3, i64::MIN as u64),
        int_as(0xcf, u64::MAX),
        int_as(0xce, u64::from(u32::MAX)),
    ]);
    for id in &ids {
        send(&mut peer, &request(id, "add", &pair_params(2, 3)));
    }
    drive(&mut rpc);
    let want: Vec<_> = ids.iter().map(|id| add_reply(id, 5)).collect();
    assert_eq!(received(&mut peer), want);
}

/// The reply duet sends to a malformed request: msgid bytes `id`, then what is wrong.
fn malformed_reply(id: &[u8], what: &str) -> Vec<u8> {
    let text = format!("{}{}", text::MALFORMED_PREFIX, what);
    response(id, &mp_str(&text), &[0xc0])
}

#[test]
fn malformed_envelopes_are_counted_and_requests_with_a_msgid_answered() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    const PARAMS: &str = "params are not an array";
    const COUNT: &str = "not 4 elements [0, msgid, method, params]";
    const METHOD: &str = "method is not a string";
    let arduino_id = [0xce, 0x24, 0x00, 0x1a, 0x30];
    // Each message, and the reply it gets (msgid bytes, what is wrong), if any.
    type Reply = Option<(Vec<u8>, &'static str)>;
    let bad: Vec<(Vec<u8>, Reply)> = vec![
        // params that are not an array
        (request(&[1], "add", &[0x05]), Some((vec![1], PARAMS))),
        (
            request(&[2], "add", &[0x82, 0x01, 0x02, 0x03, 0x04]),
            Some((vec![2], PARAMS)),
        ),
        (request(&[3], "add", &[0xc0]), Some((vec![3], PARAMS))),
        (
            request(&arduino_id, "add", &mp_str("1, 2")),
            Some((arduino_id.to_vec(), PARAMS)),
        ),
        (request(&[0xff], "add", &[0xc1]), Some((vec![0xff], PARAMS))),
        (notification("add", &[0x80]), None),
        // message type out of range, wrong element counts, msgid not an integer
        (vec![0x94, 0x03, 0x01, 0xa3, b'a', b'd', b'd', 0x90], None),
        (
            vec![0x95, 0x00, 0x04, 0xa3, b'a', b'd', b'd', 0x90, 0xc0],
            Some((vec![4], COUNT)),
        ),
        (
            vec![0x93, 0x00, 0xcd, 0x01, 0x00, 0xa3, b'a', b'd', b'd'],
            Some((vec![0xcd, 0x01, 0x00], COUNT)),
        ),
        (vec![0x92, 0x00, 0x05], Some((vec![5], COUNT))),
        (vec![0x91, 0x00], None),
        (vec![0x93, 0x01, 0x01, 0xc0], None),
        (vec![0x92, 0x02, 0xa3, b'a', b'd', b'd'], None),
        (vec![0x94, 0x00, 0xc0, 0xa3, b'a', b'd', b'd', 0x90], None),
        (
            vec![
                0x94, 0x00, 0xca, 0, 0, 0x80, 0x3f, 0xa3, b'a', b'd', b'd', 0x90,
            ],
            None,
        ),
        // method not a str, or not UTF-8
        (vec![0x94, 0x00, 0x06, 0x07, 0x90], Some((vec![6], METHOD))),
        (
            vec![0x94, 0x00, 0x07, 0xc4, 0x01, b'f', 0x90],
            Some((vec![7], METHOD)),
        ),
        (
            vec![0x94, 0x00, 0x08, 0xa2, 0xc3, 0x28, 0x90],
            Some((vec![8], "method is not valid UTF-8")),
        ),
        (vec![0x93, 0x02, 0x07, 0x90], None),
        // not an array at all; the unused marker
        (vec![0xa3, b'a', b'd', b'd'], None),
        (vec![0xc1], None),
    ];
    for (b, _) in &bad {
        send(&mut peer, b);
    }
    drive(&mut rpc);
    let s = rpc.stats();
    assert_eq!(s.malformed_messages, bad.len() as u32);
    assert_eq!(
        s.framing_errors + s.unknown_requests + s.ignored_notifications + s.reply_failures,
        0
    );
    let want: Vec<Vec<u8>> = bad
        .iter()
        .filter_map(|(_, r)| r.as_ref().map(|(id, what)| malformed_reply(id, what)))
        .collect();
    assert_eq!(want.len(), 11);
    assert_eq!(received(&mut peer), want);

    // In one payload: a malformed request that is whole MessagePack is dropped alone (the
    // request behind it is served); one that is not takes the rest of the payload with it.
    let stream = [
        request(&[10], "add", &[0x05]),
        request(&[11], "add", &pair_params(1, 2)),
        vec![0x94, 0x00, 0x0c, 0xa3, b'a', b'd', b'd', 0x91, 0xc1],
        request(&[13], "add", &pair_params(1, 2)),
    ]
    .concat();
    send(&mut peer, &stream);
    drive(&mut rpc);
    assert_eq!(
        received(&mut peer),
        vec![
            malformed_reply(&[10], PARAMS),
            add_reply(&[11], 3),
            malformed_reply(&[12], duet_codec::Error::InvalidMarker.as_str()),
        ]
    );
    assert_eq!(rpc.stats().malformed_messages, bad.len() as u32 + 2);
    recovers(&mut rpc, &mut peer);
}

/// A malformed request that the engine meets while it waits for a buffer to send its own
/// request (its encode buffer is busy, only replies are taken) is kept and answered once it
/// serves requests again.
#[test]
fn malformed_request_met_while_sending_is_answered_later() {
    let (t, mut peer) = pair_with(2, PPB);
    let mut rpc: Small = Rpc::new(t);
    rpc.set_timeout(Duration::from_secs(5));
    // Two calls fill both buffers toward the peer.
    let first = rpc.call_async::<i32, _>("f", ()).unwrap();
    let _second = rpc.call_async::<i32, _>("f", ()).unwrap();
    send(&mut peer, &request(&[9], "add", &[0x05]));
    send(&mut peer, &response(&[1], &[0xc0], &[0x01]));
    // The third finds no buffer: it receives while it waits, then times out.
    rpc.set_timeout(Duration::from_millis(50));
    assert_eq!(
        rpc.call_async::<i32, _>("g", ()).err(),
        Some(Error::Timeout)
    );
    assert_eq!(rpc.stats().malformed_messages, 0, "kept for later");
    assert_eq!(rpc.transport().queued(), 0, "both messages were taken");
    assert_eq!(received(&mut peer).len(), 2, "the two calls");
    rpc.set_timeout(Duration::from_secs(5));
    assert_eq!(finish(&mut rpc, first), Ok(1));
    drive(&mut rpc);
    assert_eq!(
        received(&mut peer),
        vec![malformed_reply(&[9], "params are not an array")]
    );
    assert_eq!(rpc.stats().malformed_messages, 1);
}

#[test]
fn params_nested_at_the_depth_limit_are_served_beyond_it_refused() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    // The request array is one level; params may nest MAX_DEPTH - 1 levels (counting itself).
    send(&mut peer, &request(&[1], "add", &nested(MAX_DEPTH - 1)));
    send(&mut peer, &request(&[2], "nope", &nested(MAX_DEPTH - 1)));
    drive(&mut rpc);
    let got = received(&mut peer);
    assert_eq!(got.len(), 2);
    assert_eq!(
        id_and_text(&got[0], 1),
        (
            vec![1],
            format!(
                "{} Function 'add' was called with an invalid number of arguments. Expected: 2, \
                 got: 1",
                text::ARITY_PREFIX
            )
        )
    );
    assert_eq!(
        id_and_text(&got[1], 1),
        (
            vec![2],
            format!("{}nope' with argument count 1.", text::UNKNOWN_PREFIX)
        )
    );
    for depth in [MAX_DEPTH, MAX_DEPTH + 1, 480] {
        send(&mut peer, &request(&[3], "add", &nested(depth)));
        send(&mut peer, &notification("add", &nested(depth)));
    }
    drive(&mut rpc);
    assert_eq!(rpc.stats().malformed_messages, 6);
    // The requests are answered (their msgid is readable), the notifications not.
    let too_deep = malformed_reply(&[3], duet_codec::Error::DepthLimit.as_str());
    assert_eq!(received(&mut peer), vec![too_deep; 3]);
    recovers(&mut rpc, &mut peer);
}

#[test]
fn ten_thousand_byte_method_name() {
    let long = "m".repeat(10_000);
    let unknown = format!("{}{}' with argument count 0.", text::UNKNOWN_PREFIX, long);
    let msg = request(&[0xcd, 0x01, 0x00], &long, &[0x90]);

    // 2048-byte buffer: refused as too large, by msgid.
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, 1 << 16);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    send(&mut peer, &msg);
    drive(&mut rpc);
    let got = received(&mut peer);
    assert_eq!(got.len(), 1);
    assert_eq!(
        id_and_text(&got[0], 3),
        (vec![0xcd, 0x01, 0x00], text::TOO_LARGE.to_string())
    );
    assert_eq!(rpc.stats().oversized_messages, 1);
    recovers(&mut rpc, &mut peer);

    // Large buffer and transport: rpclib's unknown-method text, whole, over 21 payloads.
    let (t, mut peer) = pair_with(64, 1 << 16);
    let mut rpc: Big = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    send(&mut peer, &msg);
    drive(&mut rpc);
    let got = received(&mut peer);
    assert_eq!(got.len(), 1);
    assert_eq!(id_and_text(&got[0], 3), (vec![0xcd, 0x01, 0x00], unknown));
    assert_eq!(rpc.stats().unknown_requests, 1);
    recovers(&mut rpc, &mut peer);

    // Large buffer, one-payload transport: the text cannot be sent, a short one replaces it.
    let (t, mut peer) = pair_with(64, PPB);
    let mut rpc: Big = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    send_chunked(&mut peer, &msg);
    drive(&mut rpc);
    let got = received(&mut peer);
    assert_eq!(got.len(), 1);
    assert_eq!(
        id_and_text(&got[0], 3),
        (vec![0xcd, 0x01, 0x00], text::RESULT_TOO_LARGE.to_string())
    );
    assert_eq!(rpc.stats().reply_failures, 0);
    recovers(&mut rpc, &mut peer);
}

// ---------------------------------------------------------------------------------------------
// Targeted cases: reassembly and framing.

/// A request of exactly `len` bytes to `len(str)`, with msgid `id`.
fn len_request(id: u8, len: usize) -> (Vec<u8>, usize) {
    let n = len - 11;
    let msg = request(
        &[id],
        "len",
        &[&[0x91][..], &mp_str(&"w".repeat(n))].concat(),
    );
    assert_eq!(msg.len(), len);
    (msg, n)
}

#[test]
fn reassembly_just_below_at_and_above_the_buffer() {
    let f = |s: String| s.len() as u32;
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, PPB);
    let mut rpc: Exact = Rpc::new(t);
    rpc.bind("len", &f).unwrap();
    rpc.bind("add", &add).unwrap();
    for (id, len) in [(1u8, 1983usize), (2, 1984)] {
        let (msg, n) = len_request(id, len);
        send_chunked(&mut peer, &msg);
        drive(&mut rpc);
        assert_eq!(
            received(&mut peer),
            vec![response(&[id], &[0xc0], &int_as(0xcd, n as u64))],
            "{len} bytes fit a {len}-byte buffer"
        );
    }
    assert_eq!(rpc.stats().oversized_messages, 0);
    let (msg, _) = len_request(3, 1985);
    send_chunked(&mut peer, &msg);
    drive(&mut rpc);
    let got = received(&mut peer);
    assert_eq!(got.len(), 1);
    assert_eq!(
        id_and_text(&got[0], 1),
        (vec![3], text::TOO_LARGE.to_string())
    );
    let s = rpc.stats();
    assert_eq!(s.oversized_messages, 1);
    assert_eq!(s.framing_errors + s.malformed_messages, 0);
    recovers(&mut rpc, &mut peer);
}

/// The refusal of an oversized request is sent only if a buffer is free at once (it is made on
/// the receive path, which cannot wait); otherwise it counts as a reply failure.
#[test]
fn oversized_request_without_a_free_buffer_is_a_reply_failure() {
    let f = |s: String| s.len() as u32;
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, PPB);
    let mut rpc: Exact = Rpc::new(t);
    rpc.bind("len", &f).unwrap();
    rpc.bind("add", &add).unwrap();
    let (msg, _) = len_request(3, 1985);
    send_chunked(&mut peer, &msg);
    peer.shared
        .capacity
        .store(0, std::sync::atomic::Ordering::SeqCst);
    drive(&mut rpc);
    peer.shared
        .capacity
        .store(64, std::sync::atomic::Ordering::SeqCst);
    assert!(received(&mut peer).is_empty());
    let s = rpc.stats();
    assert_eq!((s.oversized_messages, s.reply_failures), (1, 1));
    recovers(&mut rpc, &mut peer);
}

#[test]
fn incomplete_tail_after_a_short_payload_is_dropped() {
    let f = |s: String| s.len() as u32;
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, PPB);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("len", &f).unwrap();
    rpc.bind("add", &add).unwrap();

    // A full payload announces more; a short one that does not finish the message ends it.
    let (msg, _) = len_request(1, 1200);
    send(&mut peer, &msg[..PPB]);
    send(&mut peer, &msg[PPB..PPB + 100]);
    drive(&mut rpc);
    assert_eq!(rpc.stats().framing_errors, 1);
    assert_eq!(received(&mut peer), Vec::<Vec<u8>>::new());

    // A complete request and the start of another in one short payload: the first is
    // answered, the tail dropped.
    let mut b = request(&[2], "add", &pair_params(1, 2));
    b.extend_from_slice(&request(&[3], "add", &pair_params(3, 4))[..6]);
    send(&mut peer, &b);
    drive(&mut rpc);
    assert_eq!(received(&mut peer), vec![add_reply(&[2], 3)]);
    assert_eq!(rpc.stats().framing_errors, 2);

    // Two requests and the start of a third fill a full payload; the next payload finishes
    // the third: all three answered, nothing dropped.
    let a = request(&[4], "add", &pair_params(5, 6));
    let c = request(&[5], "add", &pair_params(7, 8));
    let pad = PPB - a.len() - c.len() - 30;
    let (long, n) = len_request(6, pad + 11 + 30 + 20);
    let stream = [a, c, long].concat();
    send(&mut peer, &stream[..PPB]);
    drive(&mut rpc);
    assert_eq!(
        received(&mut peer),
        vec![add_reply(&[4], 11), add_reply(&[5], 15)]
    );
    send(&mut peer, &stream[PPB..]);
    drive(&mut rpc);
    assert_eq!(
        received(&mut peer),
        vec![response(&[6], &[0xc0], &int_as(0xcd, n as u64))]
    );
    let s = rpc.stats();
    assert_eq!(s.framing_errors, 2);
    assert_eq!(s.malformed_messages + s.oversized_messages, 0);
    recovers(&mut rpc, &mut peer);
}

/// An oversized message that is a whole number of full payloads has no short payload to mark
/// its end: the engine follows its MessagePack structure to the end, so the short payload
/// after it (a request) is served.
#[test]
fn oversized_message_of_whole_payloads_ends_where_its_structure_ends() {
    let f = |s: String| s.len() as u32;
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, PPB);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("len", &f).unwrap();
    rpc.bind("add", &add).unwrap();
    let (msg, _) = len_request(1, 5 * PPB);
    send_chunked(&mut peer, &msg);
    send(&mut peer, &request(&[2], "add", &pair_params(1, 1)));
    drive(&mut rpc);
    assert_eq!(
        received(&mut peer),
        vec![
            malformed_or_large(&[1], text::TOO_LARGE),
            add_reply(&[2], 2)
        ]
    );
    let s = rpc.stats();
    assert_eq!(s.oversized_messages, 1);
    assert_eq!(s.framing_errors + s.malformed_messages, 0);
    recovers(&mut rpc, &mut peer);
}

/// The error response to a request, with `text` and a nil result.
fn malformed_or_large(id: &[u8], text: &str) -> Vec<u8> {
    response(id, &mp_str(text), &[0xc0])
}

/// Messages that start inside the last payload of an oversized message are parsed from there:
/// a request behind an oversized request or response (several in one payload, the last one
/// spanning into the next payload) are all served.
#[test]
fn messages_behind_an_oversized_one_in_the_same_payload_are_served() {
    let f = |s: String| s.len() as u32;
    let add = |a: i32, b: i32| a + b;
    for tail in [1usize, 100, PPB - 1] {
        let (t, mut peer) = pair_with(64, PPB);
        let mut rpc: Small = Rpc::new(t);
        rpc.bind("len", &f).unwrap();
        rpc.bind("add", &add).unwrap();
        let p = rpc.call_async::<i32, _>("f", ()).unwrap();
        take_request(&mut peer, 1);
        // An oversized request, then an oversized response whose last payload holds `tail`
        // of its bytes, two requests and the start of a third.
        let (big_req, _) = len_request(1, 3000);
        let err = mp_str(&"e".repeat(2500));
        let mut big_resp = response(&[0x33], &err, &[0xc0]);
        let pad = (PPB - (big_req.len() + big_resp.len()) % PPB + tail) % PPB;
        big_resp = response(&[0x33], &mp_str(&"e".repeat(2500 + pad)), &[0xc0]);
        let mut stream = [big_req, big_resp].concat();
        assert_eq!(stream.len() % PPB, tail % PPB, "{tail}");
        for id in 2..=4u8 {
            stream.extend(request(&[id], "add", &pair_params(i64::from(id), 10)));
        }
        stream.extend(response(&[1], &[0xc0], &[0x07]));
        send_chunked(&mut peer, &stream);
        drive(&mut rpc);
        let want = vec![
            malformed_or_large(&[1], text::TOO_LARGE),
            add_reply(&[2], 12),
            add_reply(&[3], 13),
            add_reply(&[4], 14),
        ];
        assert_eq!(received(&mut peer), want, "tail {tail}");
        let s = rpc.stats();
        assert_eq!(s.oversized_messages, 2);
        assert_eq!(s.framing_errors + s.malformed_messages + s.late_replies, 0);
        assert_eq!(finish(&mut rpc, p), Ok(7));
        recovers(&mut rpc, &mut peer);
    }
}

/// An oversized message whose structure turns invalid (0xC1 inside its params) cannot be
/// followed: it is dropped up to the next short payload, and what follows that is served.
#[test]
fn oversized_message_with_an_invalid_structure_ends_at_the_short_payload() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, PPB);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    // [0, 1, "len", [nil * 2500]] with one nil replaced by 0xC1 far behind the buffer.
    let mut params = vec![0xdc, 0x09, 0xc4];
    params.extend(vec![0xc0; 2500]);
    params[2400] = 0xc1;
    let msg = request(&[1], "len", &params);
    let whole = msg.len() / PPB * PPB;
    send_chunked(&mut peer, &msg[..whole]);
    // A short payload ends it; it holds a request that is lost with it.
    let mut last = msg[whole..].to_vec();
    last.extend(request(&[2], "add", &pair_params(1, 1)));
    assert!(last.len() < PPB);
    send(&mut peer, &last);
    send(&mut peer, &request(&[3], "add", &pair_params(1, 2)));
    drive(&mut rpc);
    assert_eq!(
        received(&mut peer),
        vec![
            malformed_or_large(&[1], text::TOO_LARGE),
            add_reply(&[3], 3)
        ]
    );
    let s = rpc.stats();
    assert_eq!(s.oversized_messages, 1);
    assert_eq!(s.framing_errors + s.malformed_messages, 0);
    recovers(&mut rpc, &mut peer);
}

// ---------------------------------------------------------------------------------------------
// Targeted cases: nesting, floods, the tty stream.

/// A handler that calls the peer's `inner` and answers with its result + 1 (or the error).
fn relay(ctx: &mut duet::Context<'_>, _: duet::Request<'_>) {
    match ctx.call::<i32, _>("inner", ()) {
        Ok(v) => ctx.respond(&(v + 1)),
        Err(e) => ctx.respond_error(&format!("{e}")),
    }
}

/// Responses among the messages the peer received (the engine's own requests filtered out).
fn responses(peer: &mut MemTransport) -> Vec<Vec<u8>> {
    received(peer)
        .into_iter()
        .filter(|m| matches!(parse(m), Ok((Message::Response { .. }, _))))
        .collect()
}

/// The peer queues requests that each make the handler call back (their answers queued behind
/// them, msgids predicted): nesting stops at `MAX_NESTING` with an error reply, and every
/// level still gets its own answer.
#[test]
fn nesting_forced_by_the_peer_is_bounded() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    rpc.bind_handler("relay", &relay).unwrap();
    rpc.set_timeout(Duration::from_secs(5));
    let levels = usize::from(duet::MAX_NESTING);
    for id in 0..=levels as u8 {
        send(&mut peer, &request(&[100 + id], "relay", &[0x90]));
    }
    // Inner calls get msgids 1..=levels, innermost last; answer innermost first.
    for id in (1..=levels as u8).rev() {
        send(&mut peer, &response(&[id], &[0xc0], &[10 * id]));
    }
    drive(&mut rpc);
    let got = responses(&mut peer);
    let mut want = vec![response(
        &[100 + levels as u8],
        &mp_str(text::NESTING),
        &[0xc0],
    )];
    for id in (1..=levels as u8).rev() {
        want.push(response(&[100 + id - 1], &[0xc0], &[10 * id + 1]));
    }
    assert_eq!(got, want);
    let s = rpc.stats();
    assert_eq!(s.nesting_refused, 1);
    assert_eq!(s.late_replies + dropped(&s), 0);
    recovers(&mut rpc, &mut peer);
}

/// Garbage arrives while a handler waits for its nested call: counted at that level, and the
/// nested reply behind it still arrives.
#[test]
fn garbage_during_a_nested_call() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    rpc.bind_handler("relay", &relay).unwrap();
    send(&mut peer, &request(&[9], "relay", &[0x90]));
    send(&mut peer, &[0xc1, 0x00]); // malformed
    send(&mut peer, &[0x94, 0x00, 0x05]); // cut: framing error
    send(&mut peer, &response(&[0x33], &[0xc0], &[0x01])); // unknown msgid
    send(&mut peer, &response(&[1], &[0xc0], &[0x04]));
    drive(&mut rpc);
    assert_eq!(responses(&mut peer), vec![response(&[9], &[0xc0], &[0x05])]);
    let s = rpc.stats();
    assert_eq!(
        (s.malformed_messages, s.framing_errors, s.late_replies),
        (1, 1, 1)
    );
    recovers(&mut rpc, &mut peer);
}

/// Full payloads of a message that never ends fill the space a nested call receives into: the
/// nested call times out (no panic, no overrun), and the outer level then drops the message as
/// oversized and resynchronises at the short payload; the nested reply behind it is late.
#[test]
fn oversized_garbage_during_a_nested_call() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    rpc.bind_handler("relay", &relay).unwrap();
    rpc.set_timeout(Duration::from_millis(100));
    send(&mut peer, &request(&[9], "relay", &[0x90]));
    let mut first = vec![0u8; PPB];
    first[..7].copy_from_slice(&ENDLESS_NOTIFICATION);
    send(&mut peer, &first);
    for _ in 0..4 {
        send(&mut peer, &[0u8; PPB]);
    }
    send(&mut peer, &[0u8; 7]);
    send(&mut peer, &response(&[1], &[0xc0], &[0x04]));
    drive(&mut rpc);
    let got = responses(&mut peer);
    assert_eq!(got.len(), 1);
    assert_eq!(
        id_and_text(&got[0], 1),
        (vec![9], Error::Timeout.to_string())
    );
    let s = rpc.stats();
    assert_eq!((s.oversized_messages, s.late_replies), (1, 1));
    rpc.set_timeout(Duration::from_secs(5));
    recovers(&mut rpc, &mut peer);
}

/// 200 requests as separate payloads (over three receive budgets): every one answered.
#[test]
fn flood_of_requests_is_answered_in_order() {
    let add = |a: i32, b: i32| a.wrapping_add(b);
    let (t, mut peer) = pair_with(256, PPB);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let mut want = Vec::new();
    for i in 0..200i64 {
        let id = mp_int(i);
        send(&mut peer, &request(&id, "add", &pair_params(i, 1)));
        want.push(add_reply(&id, i as i32 + 1));
    }
    drive(&mut rpc);
    assert_eq!(received(&mut peer), want);
}

/// A peer that never reads its replies cannot wedge the engine: replies that find no buffer
/// before the timeout are counted as failures, and the engine carries on.
#[test]
fn peer_that_does_not_read_replies() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(4, PPB);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    rpc.set_timeout(Duration::from_millis(20));
    let mut ten = Vec::new();
    for id in 1..=10u8 {
        ten.extend(request(&[id], "add", &pair_params(i64::from(id), 0)));
    }
    send(&mut peer, &ten);
    drive(&mut rpc);
    assert_eq!(rpc.stats().reply_failures, 6);
    let want: Vec<_> = (1..=4u8)
        .map(|id| add_reply(&[id], i32::from(id)))
        .collect();
    assert_eq!(received(&mut peer), want);
    rpc.set_timeout(Duration::from_secs(5));
    recovers(&mut rpc, &mut peer);
}

/// SerialRPC `"tty"` notifications: data beyond the ring is dropped and counted; a `"tty"`
/// with other params is an ordinary unbound notification; a request named `"tty"` is
/// answered as unknown.
#[test]
fn hostile_tty_traffic() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair_with(64, 4096);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    rpc.serial().set_tty(true);
    let data: Vec<u8> = (0..1500u32).map(|i| (i * 7) as u8).collect();
    let bin = enc(|e| e.write_bin(&data));
    send(
        &mut peer,
        &notification("tty", &[&[0x91][..], &bin].concat()),
    );
    rpc.poll().unwrap();
    assert_eq!(rpc.stats().serial_dropped, 1500 - 1024);
    let mut got = vec![0u8; 2048];
    let n = rpc.serial().read(&mut got).unwrap();
    assert_eq!(&got[..n], &data[..1024]);
    for params in [
        mp_str("x"),
        vec![0x91, 0xa1, b'x'],
        vec![0x92, 0xc4, 0x01, 0x00, 0xc4, 0x00],
        vec![0x90],
    ] {
        send(&mut peer, &notification("tty", &params));
    }
    send(&mut peer, &request(&[7], "tty", &[0x91, 0xc4, 0x01, b'z']));
    drive(&mut rpc);
    let s = rpc.stats();
    assert_eq!(s.malformed_messages, 1, "params not an array");
    assert_eq!(s.ignored_notifications, 3);
    assert_eq!(s.unknown_requests, 1);
    assert_eq!(
        received(&mut peer),
        vec![response(
            &[7],
            &mp_str(&format!(
                "{}tty' with argument count 1.",
                text::UNKNOWN_PREFIX
            )),
            &[0xc0]
        )]
    );
    assert_eq!(
        rpc.serial().available(),
        0,
        "nothing else reached the stream"
    );
    recovers(&mut rpc, &mut peer);
}
