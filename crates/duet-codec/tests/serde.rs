//! The serde mapping: what each serde type becomes on the wire and what decodes back.

use duet_codec::{from_slice, to_slice, Decoder, Encoder, Error, RawValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn ser<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = to_slice(v, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Borrowed<'a> {
    name: &'a str,
    #[serde(with = "bytes")]
    data: &'a [u8],
    tag: Option<u8>,
}

/// serde_bytes-like: `&[u8]` as bin.
mod bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(u32),
    Rect(u32, u32),
    Named { w: u8, h: u8 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Unit;

#[test]
fn primitives() {
    assert_eq!(ser(&true), [0xc3]);
    assert_eq!(ser(&-1i8), [0xff]);
    assert_eq!(ser(&200u8), [0xcc, 200]);
    assert_eq!(ser(&300i32), [0xcd, 1, 44]);
    assert_eq!(ser(&1.0f32), [0xca, 0x3f, 0x80, 0, 0]);
    assert_eq!(ser(&'é'), [0xa2, 0xc3, 0xa9]);
    assert_eq!(ser(&()), [0xc0]);
    assert_eq!(ser(&Unit), [0x90]);
    assert_eq!(ser(&None::<u8>), [0xc0]);
    assert_eq!(ser(&Some(5u8)), [0x05]);
    assert_eq!(ser(&5u128), [0x05]);
    assert_eq!(
        to_slice(&(u64::MAX as u128 + 1), &mut [0u8; 32]),
        Err(Error::Unsupported)
    );

    assert_eq!(from_slice::<i8>(&[0xd0, 0x80]).unwrap(), -128);
    assert_eq!(from_slice::<i8>(&[0xcc, 0x80]), Err(Error::OutOfRange));
    assert_eq!(
        from_slice::<u16>(&[0xce, 0, 1, 0, 0]),
        Err(Error::OutOfRange)
    );
    assert_eq!(from_slice::<u32>(&[0xff]), Err(Error::OutOfRange));
    assert_eq!(from_slice::<i128>(&[0xff]).unwrap(), -1);
    assert_eq!(from_slice::<f64>(&[0xca, 0x3f, 0x80, 0, 0]).unwrap(), 1.0);
    assert_eq!(from_slice::<f32>(&[0x01]), Err(Error::WrongType));
    assert_eq!(from_slice::<char>(&[0xa2, 0xc3, 0xa9]).unwrap(), 'é');
    assert_eq!(
        from_slice::<char>(&[0xa2, b'a', b'b']),
        Err(Error::InvalidLength)
    );
    assert_eq!(from_slice::<()>(&[0x90]).unwrap(), ());
    assert_eq!(from_slice::<Unit>(&[0xc0]).unwrap(), Unit);
    assert_eq!(from_slice::<Option<u8>>(&[0xc0]).unwrap(), None);
    assert_eq!(from_slice::<bool>(&[0xc3, 0xc3]), Err(Error::TrailingBytes));
}

#[test]
fn structs_are_arrays_and_decode_from_maps() {
    let p = Point { x: 1, y: -2 };
    assert_eq!(ser(&p), [0x92, 0x01, 0xfe]);
    assert_eq!(from_slice::<Point>(&[0x92, 0x01, 0xfe]).unwrap(), p);
    // A MicroPython dict, keys in any order, unknown keys (even nested) skipped.
    let m = [
        0x83, 0xa1, b'y', 0xfe, 0xa5, b'e', b'x', b't', b'r', b'a', 0x92, 0x81, 0x01, 0x90, 0xc0,
        0xa1, b'x', 0x01,
    ];
    assert_eq!(from_slice::<Point>(&m).unwrap(), p);
    // Keys may also be field indices.
    assert_eq!(
        from_slice::<Point>(&[0x82, 0x00, 0x01, 0x01, 0xfe]).unwrap(),
        p
    );
    assert_eq!(
        from_slice::<Point>(&[0x91, 0x01]),
        Err(Error::InvalidLength)
    );
    assert_eq!(
        from_slice::<Point>(&[0x93, 0x01, 0x02, 0x03]),
        Err(Error::InvalidLength)
    );
    assert_eq!(
        from_slice::<Point>(&[0x81, 0xa1, b'x', 0x01]),
        Err(Error::InvalidLength)
    );
    assert_eq!(from_slice::<Point>(&[0x01]), Err(Error::WrongType));
}

#[test]
fn borrowed_zero_copy() {
    let v = Borrowed {
        name: "motor",
        data: &[1, 2, 3],
        tag: None,
    };
    let bytes = ser(&v);
    assert_eq!(
        bytes,
        [0x93, 0xa5, b'm', b'o', b't', b'o', b'r', 0xc4, 3, 1, 2, 3, 0xc0]
    );
    let back: Borrowed<'_> = from_slice(&bytes).unwrap();
    assert_eq!(back, v);
    assert_eq!(back.name.as_ptr(), bytes[2..].as_ptr());
    assert_eq!(back.data.as_ptr(), bytes[9..].as_ptr());
    // &[u8] also accepts a str.
    assert_eq!(from_slice::<&[u8]>(&[0xa2, b'h', b'i']).unwrap(), b"hi");
    // Byte arrays decode from bin (Arduino's std::vector<uint8_t>) or from an array.
    assert_eq!(from_slice::<[u8; 2]>(&[0xc4, 2, 7, 8]).unwrap(), [7, 8]);
    assert_eq!(from_slice::<[u8; 2]>(&[0x92, 7, 8]).unwrap(), [7, 8]);
    assert_eq!(
        from_slice::<[u8; 3]>(&[0xc4, 2, 7, 8]),
        Err(Error::InvalidLength)
    );
    assert_eq!(from_slice::<Vec<u8>>(&[0xc4, 2, 7, 8]).unwrap(), vec![7, 8]);
}

#[test]
fn enums() {
    assert_eq!(ser(&Shape::Empty), [0xa5, b'E', b'm', b'p', b't', b'y']);
    assert_eq!(
        ser(&Shape::Circle(3)),
        [0x81, 0xa6, b'C', b'i', b'r', b'c', b'l', b'e', 0x03]
    );
    assert_eq!(
        ser(&Shape::Rect(1, 2)),
        [0x81, 0xa4, b'R', b'e', b'c', b't', 0x92, 1, 2]
    );
    assert_eq!(
        ser(&Shape::Named { w: 1, h: 2 }),
        [0x81, 0xa5, b'N', b'a', b'm', b'e', b'd', 0x92, 1, 2]
    );
    for v in [
        Shape::Empty,
        Shape::Circle(3),
        Shape::Rect(1, 2),
        Shape::Named { w: 1, h: 2 },
    ] {
        assert_eq!(from_slice::<Shape>(&ser(&v)).unwrap(), v);
    }
    // Variant index, {name: nil} for a unit variant, and a struct variant from a map.
    assert_eq!(from_slice::<Shape>(&[0x01 - 1]).unwrap(), Shape::Empty);
    assert_eq!(
        from_slice::<Shape>(&[0x81, 0xa5, b'E', b'm', b'p', b't', b'y', 0xc0]).unwrap(),
        Shape::Empty
    );
    assert_eq!(
        from_slice::<Shape>(&[
            0x81, 0xa5, b'N', b'a', b'm', b'e', b'd', 0x82, 0xa1, b'h', 2, 0xa1, b'w', 1
        ])
        .unwrap(),
        Shape::Named { w: 1, h: 2 }
    );
    assert_eq!(from_slice::<Shape>(&[0xa1, b'Q']), Err(Error::WrongType));
    assert_eq!(
        from_slice::<Shape>(&[0xa6, b'C', b'i', b'r', b'c', b'l', b'e']),
        Err(Error::WrongType)
    );
    assert_eq!(from_slice::<Shape>(&[0x80]), Err(Error::InvalidLength));
    assert_eq!(from_slice::<Shape>(&[0xc0]), Err(Error::WrongType));
}

#[test]
fn maps_and_sequences() {
    let mut m = BTreeMap::new();
    m.insert(1u8, "a".to_string());
    m.insert(2, "b".to_string());
    let bytes = ser(&m);
    assert_eq!(bytes, [0x82, 1, 0xa1, b'a', 2, 0xa1, b'b']);
    assert_eq!(from_slice::<BTreeMap<u8, String>>(&bytes).unwrap(), m);
    let nested = vec![vec![1u16, 2], vec![], vec![300]];
    assert_eq!(from_slice::<Vec<Vec<u16>>>(&ser(&nested)).unwrap(), nested);
}

/// Serializes `0..n` through `serialize_seq(None)` / `serialize_map(None)`.
struct Unknown(usize, bool);
impl Serialize for Unknown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        if self.1 {
            let mut m = s.serialize_map(None)?;
            for i in 0..self.0 {
                m.serialize_entry(&(i as u32), &true)?;
            }
            m.end()
        } else {
            let mut q = s.serialize_seq(None)?;
            for i in 0..self.0 {
                q.serialize_element(&(i as u32))?;
            }
            q.end()
        }
    }
}

#[test]
fn unknown_length_is_compacted() {
    for n in [0usize, 1, 15, 16, 300, 70_000] {
        let mut buf = vec![0u8; 1 << 20];
        let len = to_slice(&Unknown(n, false), &mut buf).unwrap();
        let known: Vec<u32> = (0..n as u32).collect();
        assert_eq!(&buf[..len], &ser_big(&known)[..], "seq {n}");
        let len = to_slice(&Unknown(n, true), &mut buf).unwrap();
        let known: BTreeMap<u32, bool> = (0..n as u32).map(|i| (i, true)).collect();
        assert_eq!(&buf[..len], &ser_big(&known)[..], "map {n}");
    }
    // Too small: error, and `encode` leaves nothing behind.
    let mut buf = [0u8; 8];
    let mut e = Encoder::new(&mut buf);
    e.write_nil().unwrap();
    assert_eq!(
        duet_codec::encode(&mut e, &Unknown(10, false)),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(e.written(), &[0xc0]);
}

fn ser_big<T: Serialize>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 20];
    let n = to_slice(v, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn collect_str_writes_a_str() {
    struct Show(u32);
    impl Serialize for Show {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("v={}", self.0))
        }
    }
    assert_eq!(ser(&Show(42)), [0xa4, b'v', b'=', b'4', b'2']);
    let long = format!("v={}", "x".repeat(40));
    struct Long<'a>(&'a str);
    impl Serialize for Long<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }
    assert_eq!(ser(&Long(&long)), ser(&long.as_str()));
    assert_eq!(
        to_slice(&Show(12345), &mut [0u8; 6]),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn raw_value_in_serde() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Env<'a> {
        id: u8,
        #[serde(borrow)]
        body: RawValue<'a>,
    }
    let inner = ser(&(1u8, "x"));
    let env = Env {
        id: 9,
        body: RawValue::new(&inner).unwrap(),
    };
    let bytes = ser(&env);
    assert_eq!(bytes, [0x92, 0x09, 0x92, 0x01, 0xa1, b'x']);
    let back: Env<'_> = from_slice(&bytes).unwrap();
    assert_eq!(back.body.as_bytes(), &inner[..]);
    assert_eq!(back, env);
    // Other serializers get the bytes as bin.
    let other = rmp_serde::to_vec(&env).unwrap();
    assert_eq!(other, [0x92, 0x09, 0xc4, 0x04, 0x92, 0x01, 0xa1, b'x']);
}

#[test]
fn deserialize_any_and_ignored_any() {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Any {
        B(bool),
        N(i64),
        S(String),
        L(Vec<Any>),
    }
    let bytes = [0x93, 0xc3, 0xd0, 0x80, 0x92, 0xa1, b's', 0x05];
    assert_eq!(
        from_slice::<Any>(&bytes).unwrap(),
        Any::L(vec![
            Any::B(true),
            Any::N(-128),
            Any::L(vec![Any::S("s".into()), Any::N(5)])
        ])
    );
    #[derive(Deserialize, Debug, PartialEq)]
    struct Flat {
        a: u8,
        #[serde(flatten)]
        rest: BTreeMap<String, u8>,
    }
    let f: Flat = from_slice(&[0x82, 0xa1, b'a', 1, 0xa1, b'b', 2]).unwrap();
    assert_eq!(f.a, 1);
    assert_eq!(f.rest.get("b"), Some(&2));
    let mut d = Decoder::new(&[0x92, 0xc7, 0x01, 0x05, 0xaa, 0xc0, 0x07]);
    duet_codec::decode::<serde::de::IgnoredAny>(&mut d).unwrap();
    assert_eq!(duet_codec::decode::<u8>(&mut d).unwrap(), 7);
    assert_eq!(
        from_slice::<Any>(&[0xd4, 0x01, 0x00]),
        Err(Error::Unsupported)
    );
}

#[test]
fn decode_restores_position_on_error() {
    let bytes = [0x92, 0x01, 0xa1, b'x'];
    let mut d = Decoder::new(&bytes);
    assert_eq!(
        duet_codec::decode::<(u8, u8)>(&mut d),
        Err(Error::WrongType)
    );
    assert_eq!(d.position(), 0);
    assert_eq!(duet_codec::decode::<(u8, &str)>(&mut d).unwrap(), (1, "x"));
}
