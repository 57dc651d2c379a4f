//! Property tests: round trips, differential tests against rmp / rmp-serde, and arbitrary input
//! that must never panic.

use duet_codec::rpc::{self, Message};
use duet_codec::{from_slice, to_slice, Decoder, Encoder, Error, Kind, RawValue, Skipper};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An owned MessagePack value (floats as bits so NaN compares equal).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Nil,
    Bool(bool),
    Uint(u64),
    /// Always negative (non-negative ints are `Uint` on the wire).
    Neg(i64),
    F32(u32),
    F64(u64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Ext(i8, Vec<u8>),
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![0u64..300, 60_000u64..70_000, any::<u64>()].prop_map(Value::Uint),
        prop_oneof![-300i64..0, i64::MIN..0].prop_map(Value::Neg),
        any::<u32>().prop_map(Value::F32),
        any::<u64>().prop_map(Value::F64),
        ".{0,40}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bin),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(6, 64, 20, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..18).prop_map(Value::Map),
        ]
    })
}

fn write(e: &mut Encoder<'_>, v: &Value) -> duet_codec::Result<()> {
    match v {
        Value::Nil => e.write_nil(),
        Value::Bool(b) => e.write_bool(*b),
        Value::Uint(u) => e.write_u64(*u),
        Value::Neg(i) => e.write_i64(*i),
        Value::F32(b) => e.write_f32(f32::from_bits(*b)),
        Value::F64(b) => e.write_f64(f64::from_bits(*b)),
        Value::Str(s) => e.write_str(s),
        Value::Bin(b) => e.write_bin(b),
        Value::Array(a) => {
            e.write_array_len(a.len() as u32)?;
            a.iter().try_for_each(|x| write(e, x))
        }
        Value::Map(m) => {
            e.write_map_len(m.len() as u32)?;
            m.iter().try_for_each(|(k, x)| {
                write(e, k)?;
                write(e, x)
            })
        }
        Value::Ext(t, d) => e.write_ext(*t, d),
    }
}

fn read(d: &mut Decoder<'_>) -> duet_codec::Result<Value> {
    Ok(match d.peek_kind()? {
        Kind::Nil => {
            d.read_nil()?;
            Value::Nil
        }
        Kind::Bool => Value::Bool(d.read_bool()?),
        Kind::Uint => Value::Uint(d.read_u64()?),
        Kind::Int => match d.read_i64()? {
            i if i < 0 => Value::Neg(i),
            i => Value::Uint(i as u64),
        },
        Kind::F32 => Value::F32(d.read_f32()?.to_bits()),
        Kind::F64 => Value::F64(d.read_f64()?.to_bits()),
        Kind::Str => Value::Str(d.read_str()?.to_owned()),
        Kind::Bin => Value::Bin(d.read_bin()?.to_vec()),
        Kind::Array => {
            let n = d.read_array_len()?;
            Value::Array((0..n).map(|_| read(d)).collect::<Result<_, _>>()?)
        }
        Kind::Map => {
            let n = d.read_map_len()?;
            Value::Map(
                (0..n)
                    .map(|_| Ok((read(d)?, read(d)?)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Ext => {
            let (t, data) = d.read_ext()?;
            Value::Ext(t, data.to_vec())
        }
    })
}

/// The same value written by the independent rmp crate.
fn write_rmp(out: &mut Vec<u8>, v: &Value) {
    use rmp::encode as r;
    match v {
        Value::Nil => r::write_nil(out).unwrap(),
        Value::Bool(b) => r::write_bool(out, *b).unwrap(),
        Value::Uint(u) => drop(r::write_uint(out, *u).unwrap()),
        Value::Neg(i) => drop(r::write_sint(out, *i).unwrap()),
        Value::F32(b) => r::write_f32(out, f32::from_bits(*b)).unwrap(),
        Value::F64(b) => r::write_f64(out, f64::from_bits(*b)).unwrap(),
        Value::Str(s) => r::write_str(out, s).unwrap(),
        Value::Bin(b) => r::write_bin(out, b).unwrap(),
        Value::Array(a) => {
            r::write_array_len(out, a.len() as u32).unwrap();
            a.iter().for_each(|x| write_rmp(out, x));
        }
        Value::Map(m) => {
            r::write_map_len(out, m.len() as u32).unwrap();
            for (k, x) in m {
                write_rmp(out, k);
                write_rmp(out, x);
            }
        }
        Value::Ext(t, d) => {
            r::write_ext_meta(out, d.len() as u32, *t).unwrap();
            out.extend_from_slice(d);
        }
    }
}

/// Writes the value with a non-minimal width chosen by `wide` (any valid MessagePack).
fn write_wide(out: &mut Vec<u8>, v: &Value, wide: &mut impl Iterator<Item = u8>) {
    let mut pick = |n: u8| wide.next().unwrap_or(0) % n;
    let len_hdr = |out: &mut Vec<u8>, m8: Option<u8>, m16: u8, len: usize, w: u8| {
        let w = if m8.is_none() && w == 0 { 1 } else { w };
        match w {
            0 if len <= 0xff => out.extend_from_slice(&[m8.unwrap(), len as u8]),
            0 | 1 if len <= 0xffff => {
                out.push(m16);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(m16 + 1);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
        }
    };
    match v {
        Value::Uint(u) => match pick(4) {
            0 if *u <= 0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(*u as u16).to_be_bytes());
            }
            1 if *u <= i64::MAX as u64 => {
                out.push(0xd3);
                out.extend_from_slice(&(*u as i64).to_be_bytes());
            }
            2 if *u <= u32::MAX as u64 => {
                out.push(0xce);
                out.extend_from_slice(&(*u as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            }
        },
        Value::Neg(i) => {
            if pick(2) == 0 && *i >= i32::MIN as i64 {
                out.push(0xd2);
                out.extend_from_slice(&(*i as i32).to_be_bytes());
            } else {
                out.push(0xd3);
                out.extend_from_slice(&i.to_be_bytes());
            }
        }
        Value::Str(s) => {
            let w = pick(3);
            len_hdr(out, Some(0xd9), 0xda, s.len(), w);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            let w = pick(3);
            len_hdr(out, Some(0xc4), 0xc5, b.len(), w);
            out.extend_from_slice(b);
        }
        Value::Array(a) => {
            let w = pick(2) + 1;
            len_hdr(out, None, 0xdc, a.len(), w);
            for x in a {
                write_wide(out, x, wide);
            }
        }
        Value::Map(m) => {
            let w = pick(2) + 1;
            len_hdr(out, None, 0xde, m.len(), w);
            for (k, x) in m {
                write_wide(out, k, wide);
                write_wide(out, x, wide);
            }
        }
        Value::Ext(t, d) => {
            let w = pick(3);
            len_hdr(out, Some(0xc7), 0xc8, d.len(), w);
            out.push(*t as u8);
            out.extend_from_slice(d);
        }
        other => write_rmp(out, other),
    }
}

fn encode_value(v: &Value) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut e = Encoder::new(&mut buf);
    write(&mut e, v).unwrap();
    let n = e.position();
    buf.truncate(n);
    buf
}

/// Feeds `bytes` to a fresh [`Skipper`] cut at `cuts` (sorted, deduplicated by the caller or
/// not): the end position overall, `None` if it wants more, or its error.
fn skipper_end(bytes: &[u8], cuts: &[usize]) -> duet_codec::Result<Option<usize>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    let mut s = Skipper::new();
    for w in at.windows(2) {
        if let Some(n) = s.feed(&bytes[w[0]..w[1]])? {
            return Ok(Some(w[0] + n));
        }
    }
    Ok(None)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Map(m) => {
            1 + m
                .iter()
                .map(|(k, x)| depth(k).max(depth(x)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

// ---- serde types for the differential tests ----

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct UnitS;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Newtype(i16);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum E {
    A,
    B(i32),
    C(String, u8),
    D { x: Option<u64>, y: Vec<bool> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Rec {
    a: u8,
    b: i64,
    c: Option<String>,
    d: Vec<(u16, bool)>,
    e: E,
    f: BTreeMap<String, i32>,
    g: (f64, char, f32),
    h: Vec<Vec<i8>>,
    u: UnitS,
    n: Newtype,
    o: Option<u32>,
    w: [u8; 3],
    t: (),
}

fn e_strategy() -> impl Strategy<Value = E> {
    prop_oneof![
        Just(E::A),
        any::<i32>().prop_map(E::B),
        (".{0,10}", any::<u8>()).prop_map(|(s, n)| E::C(s, n)),
        (
            any::<Option<u64>>(),
            proptest::collection::vec(any::<bool>(), 0..5)
        )
            .prop_map(|(x, y)| E::D { x, y }),
    ]
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        (
            any::<u8>(),
            any::<i64>(),
            proptest::option::of(".{0,20}"),
            proptest::collection::vec(any::<(u16, bool)>(), 0..20),
            e_strategy(),
            proptest::collection::btree_map(".{0,8}", any::<i32>(), 0..6),
        ),
        (
            (-1e12f64..1e12, any::<char>(), -1e6f32..1e6),
            proptest::collection::vec(proptest::collection::vec(any::<i8>(), 0..4), 0..4),
            any::<i16>(),
            any::<Option<u32>>(),
            any::<[u8; 3]>(),
        ),
    )
        .prop_map(|((a, b, c, d, e, f), (g, h, n, o, w))| Rec {
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            u: UnitS,
            n: Newtype(n),
            o,
            w,
            t: (),
        })
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let n = to_slice(v, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn check_no_panic(bytes: &[u8]) {
    let mut d = Decoder::new(bytes);
    match d.skip() {
        Ok(()) => {
            assert!(d.position() <= bytes.len());
            let raw = RawValue::new(&bytes[..d.position()]).unwrap();
            assert_eq!(raw.as_bytes().len(), d.position());
        }
        Err(_) => assert_eq!(d.position(), 0),
    }
    let _ = read(&mut Decoder::new(bytes));
    let _ = from_slice::<Rec>(bytes);
    let _ = from_slice::<E>(bytes);
    let _ = from_slice::<(i32, &str, &[u8])>(bytes);
    let _ = from_slice::<Option<BTreeMap<&str, (bool, f64)>>>(bytes);
    let _ = from_slice::<serde::de::IgnoredAny>(bytes);
    let _ = from_slice::<char>(bytes);
    if let Ok((msg, used)) = rpc::parse(bytes) {
        assert!(used <= bytes.len());
        // Re-encoding a parsed message gives bytes that parse to the same message.
        let mut out = vec![0u8; bytes.len() + 16];
        let n = match msg {
            Message::Request {
                msgid,
                method,
                params,
            } => rpc::encode_request(&mut out, msgid, method, &params),
            Message::Response {
                msgid,
                error,
                result,
            } => rpc::encode_response_raw(&mut out, msgid, error, result),
            Message::Notification { method, params } => {
                rpc::encode_notification(&mut out, method, &params)
            }
        }
        .unwrap();
        let (again, used2) = rpc::parse(&out[..n]).unwrap();
        assert_eq!(again, msg);
        assert_eq!(used2, n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn value_round_trip_and_matches_rmp(v in value()) {
        let ours = encode_value(&v);
        let mut theirs = Vec::new();
        write_rmp(&mut theirs, &v);
        prop_assert_eq!(&ours, &theirs);
        let mut d = Decoder::new(&ours);
        prop_assert_eq!(read(&mut d).unwrap(), v.clone());
        prop_assert!(d.is_empty());
        let mut d = Decoder::new(&ours);
        if depth(&v) <= duet_codec::MAX_DEPTH {
            d.skip().unwrap();
            prop_assert!(d.is_empty());
            prop_assert_eq!(RawValue::new(&ours).unwrap().as_bytes(), &ours[..]);
        }
        // Every strict prefix is truncated input.
        for cut in [0, ours.len() / 2, ours.len() - 1] {
            prop_assert_eq!(Decoder::new(&ours[..cut]).skip(), Err(Error::Truncated));
        }
        // Every buffer size either fits or fails cleanly.
        let mut small = vec![0u8; ours.len() - 1];
        prop_assert_eq!(write(&mut Encoder::new(&mut small), &v), Err(Error::BufferTooSmall));
    }

    #[test]
    fn wide_encodings_decode(v in value(), widths in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut wide = Vec::new();
        write_wide(&mut wide, &v, &mut widths.into_iter().cycle());
        let mut d = Decoder::new(&wide);
        prop_assert_eq!(read(&mut d).unwrap(), v);
        prop_assert!(d.is_empty());
        let mut d = Decoder::new(&wide);
        d.skip().unwrap();
        prop_assert!(d.is_empty());
    }

    /// The streaming skipper ends exactly where `Decoder::skip` does, however the value (any
    /// width, followed by more bytes) is cut into chunks.
    #[test]
    fn skipper_matches_decoder_skip(
        v in value(),
        widths in proptest::collection::vec(any::<u8>(), 0..64),
        wide_form in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut bytes = if wide_form {
            let mut w = Vec::new();
            write_wide(&mut w, &v, &mut widths.into_iter().cycle());
            w
        } else {
            encode_value(&v)
        };
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        let mut d = Decoder::new(&bytes);
        if depth(&v) <= duet_codec::MAX_DEPTH {
            d.skip().unwrap();
            prop_assert_eq!(d.position(), len);
            prop_assert_eq!(skipper_end(&bytes, &cuts), Ok(Some(len)));
            // Without its last byte the value is incomplete.
            prop_assert_eq!(skipper_end(&bytes[..len - 1], &cuts), Ok(None));
        } else {
            prop_assert_eq!(d.skip(), Err(Error::DepthLimit));
            prop_assert_eq!(skipper_end(&bytes, &cuts), Err(Error::DepthLimit));
        }
    }

    #[test]
    fn serde_matches_rmp_serde(r in rec_strategy()) {
        let ours = to_vec(&r);
        let theirs = rmp_serde::to_vec(&r).unwrap();
        prop_assert_eq!(&ours, &theirs);
        prop_assert_eq!(rmp_serde::from_slice::<Rec>(&ours).unwrap(), r.clone());
        prop_assert_eq!(from_slice::<Rec>(&theirs).unwrap(), r.clone());
        // Structs as maps (rmp-serde's named form, like a MicroPython dict) decode too.
        let named = rmp_serde::to_vec_named(&r).unwrap();
        prop_assert_eq!(from_slice::<Rec>(&named).unwrap(), r.clone());
        // Truncated input is an error, never a panic.
        for cut in [0, ours.len() / 3, ours.len() - 1] {
            prop_assert_eq!(from_slice::<Rec>(&ours[..cut]), Err(Error::Truncated));
        }
    }

    #[test]
    fn serde_tuples_options_enums(t in any::<(Option<i8>, (u32, Option<String>), Vec<Option<bool>>)>(), e in e_strategy()) {
        let ours = to_vec(&t);
        prop_assert_eq!(&ours, &rmp_serde::to_vec(&t).unwrap());
        prop_assert_eq!(from_slice::<(Option<i8>, (u32, Option<String>), Vec<Option<bool>>)>(&ours).unwrap(), t);
        let ours = to_vec(&e);
        prop_assert_eq!(&ours, &rmp_serde::to_vec(&e).unwrap());
        prop_assert_eq!(from_slice::<E>(&ours).unwrap(), e.clone());
        prop_assert_eq!(rmp_serde::from_slice::<E>(&ours).unwrap(), e);
    }

    #[test]
    fn rpc_round_trip(id in any::<u32>(), method in ".{0,40}", a in any::<i32>(), s in ".{0,20}", err in proptest::option::of(".{0,10}")) {
        let mut buf = [0u8; 256];
        let n = rpc::encode_request(&mut buf, id.into(), &method, &(a, s.as_str())).unwrap();
        prop_assert_eq!(&buf[..n], &rmp_serde::to_vec(&(0u8, id, method.as_str(), (a, s.as_str()))).unwrap()[..]);
        let (msg, used) = rpc::parse(&buf[..n]).unwrap();
        prop_assert_eq!(used, n);
        let Message::Request { msgid, method: m, params } = msg else { panic!() };
        prop_assert_eq!(msgid.as_u32(), Some(id));
        prop_assert_eq!(m, method.as_str());
        prop_assert_eq!(params.decode::<(i32, &str)>().unwrap(), (a, s.as_str()));
        let n = rpc::encode_response(&mut buf, msgid, err.as_deref(), &a).unwrap();
        let (msg, _) = rpc::parse(&buf[..n]).unwrap();
        let Message::Response { msgid: back, error, result } = msg else { panic!() };
        prop_assert_eq!(back, msgid);
        match &err {
            Some(text) => {
                prop_assert_eq!(error.decode::<&str>().unwrap(), text.as_str());
                prop_assert!(result.is_nil());
            }
            None => {
                prop_assert!(error.is_nil());
                prop_assert_eq!(result.decode::<i32>().unwrap(), a);
            }
        }
    }


    #[test]
    fn mutated_messages_never_panic(r in rec_strategy(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = to_vec(&r);
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        check_no_panic(&bytes);
        let mut msg = vec![0x94, 0x00, 0xce, 0x24, 0x00, 0x1a, 0x30, 0xa1, b'f', 0x91];
        msg.extend_from_slice(&bytes);
        check_no_panic(&msg);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        check_no_panic(&bytes);
    }

    /// On arbitrary bytes cut anywhere the skipper agrees with `Decoder::skip`: the same end,
    /// the same error, and for truncated input it wants more (or finds an error further on).
    #[test]
    fn skipper_agrees_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..96),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut d = Decoder::new(&bytes);
        let got = skipper_end(&bytes, &cuts);
        match d.skip() {
            Ok(()) => prop_assert_eq!(got, Ok(Some(d.position()))),
            Err(Error::Truncated) => prop_assert!(!matches!(got, Ok(Some(_))), "{:?}", got),
            Err(e) => prop_assert_eq!(got, Err(e)),
        }
    }

    /// Random bytes behind a valid request prefix reach the params/serde paths.
    #[test]
    fn arbitrary_params_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut msg = vec![0x94, 0x00, 0x01, 0xa3, b'a', b'd', b'd'];
        msg.extend_from_slice(&bytes);
        check_no_panic(&msg);
        check_no_panic(&bytes);
    }

    #[test]
    fn parse_split_matches_parse(
        bytes in proptest::collection::vec(any::<u8>(), 0..48),
        prefix in 0usize..4,
        spare in 0usize..8,
    ) {
        // Arbitrary bytes behind a plausible start (request, response, notification or none).
        let starts: [&[u8]; 4] = [&[], &[0x94, 0x00, 0x05], &[0x94, 0x01, 0x05], &[0x93, 0x02]];
        let mut msg = starts[prefix].to_vec();
        msg.extend_from_slice(&bytes);
        let len = msg.len();
        let mut buf = msg.clone();
        buf.resize(len + spare, 0xee);
        let want = rpc::parse(&msg);
        match rpc::parse_split(&mut buf, len) {
            Ok((m, used, rest)) => {
                let (wm, wused) = want.unwrap();
                prop_assert_eq!(m, wm);
                prop_assert_eq!(used, wused);
                prop_assert_eq!(rest.len(), len + spare - used);
                rest.fill(0);
            }
            Err(e) => prop_assert_eq!(Err(e), want.map(|_| ())),
        }
        // A length past the end is capped at the buffer.
        let mut short = msg.clone();
        prop_assert_eq!(
            rpc::parse_split(&mut short, len + 5).map(|(m, u, _)| (m, u)),
            rpc::parse(&msg)
        );
    }
}
