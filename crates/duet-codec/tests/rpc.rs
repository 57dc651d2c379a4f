//! MessagePack-RPC messages: the Arduino examples from the wire spec, byte for byte.

use duet_codec::rpc::{self, Message, MsgId};
use duet_codec::{Error, Kind, RawValue};

const ADD_REQUEST: &[u8] = &[
    0x94, 0x00, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xA3, 0x61, 0x64, 0x64, 0x92, 0x01, 0x02,
];
const ADD_RESPONSE: &[u8] = &[0x94, 0x01, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xC0, 0x03];
const TTY_NOTIFICATION: &[u8] = &[
    0x93, 0x02, 0xA3, 0x74, 0x74, 0x79, 0x91, 0xC4, 0x02, 0x48, 0x69,
];

/// Wraps a byte slice so it serializes as bin.
struct Bin<'a>(&'a [u8]);
impl serde::Serialize for Bin<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[test]
fn arduino_add_request_parses() {
    let (msg, used) = rpc::parse(ADD_REQUEST).unwrap();
    assert_eq!(used, ADD_REQUEST.len());
    let Message::Request {
        msgid,
        method,
        params,
    } = msg
    else {
        panic!("not a request: {msg:?}");
    };
    assert_eq!(msgid.value(), 0x2400_1A30);
    assert_eq!(msgid.as_u32(), Some(0x2400_1A30));
    assert_eq!(method, "add");
    assert_eq!(params.as_bytes(), &[0x92, 0x01, 0x02]);
    assert_eq!(params.decode::<(i32, i32)>().unwrap(), (1, 2));
}

#[test]
fn arduino_add_request_encodes_byte_exact() {
    let mut buf = [0u8; 64];
    let n = rpc::encode_request(&mut buf, MsgId::from(0x2400_1A30), "add", &(1i32, 2i32)).unwrap();
    assert_eq!(&buf[..n], ADD_REQUEST);
}

#[test]
fn arduino_add_response_echoes_msgid() {
    let (msg, _) = rpc::parse(ADD_REQUEST).unwrap();
    let Message::Request { msgid, .. } = msg else {
        unreachable!()
    };
    let mut buf = [0u8; 32];
    let n = rpc::encode_response::<(), _>(&mut buf, msgid, None, &3i32).unwrap();
    assert_eq!(&buf[..n], ADD_RESPONSE);

    let n = rpc::encode_response_raw(
        &mut buf,
        msgid,
        RawValue::nil(),
        RawValue::new(&[0x03]).unwrap(),
    )
    .unwrap();
    assert_eq!(&buf[..n], ADD_RESPONSE);

    let (msg, used) = rpc::parse(ADD_RESPONSE).unwrap();
    assert_eq!(used, ADD_RESPONSE.len());
    match msg {
        Message::Response {
            msgid: id,
            error,
            result,
        } => {
            assert_eq!(id, msgid);
            assert!(error.is_nil());
            assert_eq!(result.decode::<i32>().unwrap(), 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn serial_rpc_tty_notification() {
    let mut buf = [0u8; 32];
    let n = rpc::encode_notification(&mut buf, "tty", &(Bin(b"Hi"),)).unwrap();
    assert_eq!(&buf[..n], TTY_NOTIFICATION);
    let (msg, used) = rpc::parse(TTY_NOTIFICATION).unwrap();
    assert_eq!(used, n);
    match msg {
        Message::Notification { method, params } => {
            assert_eq!(method, "tty");
            let (data,): (&[u8],) = params.decode().unwrap();
            assert_eq!(data, b"Hi");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn msgid_echo_keeps_every_width() {
    // (encoded msgid, value)
    let cases: &[(&[u8], i64)] = &[
        (&[0x05], 5),
        (&[0xCC, 0x05], 5),
        (&[0xCD, 0x00, 0x05], 5),
        (&[0xCE, 0x00, 0x00, 0x00, 0x05], 5),
        (&[0xCF, 0, 0, 0, 0, 0, 0, 0, 0x05], 5),
        (&[0xD0, 0x05], 5),
        (&[0xD2, 0x10, 0x00, 0x00, 0x01], 0x1000_0001),
        (&[0xD3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE], -2),
        (&[0xFF], -1),
        (&[0xD1, 0xFF, 0x00], -256),
    ];
    for (id, value) in cases {
        let mut msg = vec![0x94, 0x00];
        msg.extend_from_slice(id);
        msg.extend_from_slice(&[0xA1, b'f', 0x90]);
        let (parsed, used) = rpc::parse(&msg).unwrap();
        assert_eq!(used, msg.len());
        let Message::Request { msgid, .. } = parsed else {
            panic!()
        };
        assert_eq!(msgid.value(), *value, "{id:02x?}");
        let mut out = [0u8; 32];
        let n = rpc::encode_response::<(), _>(&mut out, msgid, None, &()).unwrap();
        let mut expect = vec![0x94, 0x01];
        expect.extend_from_slice(id);
        expect.push(0xC0);
        expect.push(0xC0);
        assert_eq!(&out[..n], &expect[..], "{id:02x?}");
    }
    // Equality is by value, not by encoding.
    let wide = {
        let m = [0x94, 0x01, 0xCE, 0, 0, 0, 5, 0xC0, 0xC0];
        match rpc::parse(&m).unwrap().0 {
            Message::Response { msgid, .. } => msgid,
            _ => unreachable!(),
        }
    };
    assert_eq!(wide, MsgId::from(5));
    assert_ne!(MsgId::new(-1), MsgId::new(i64::MAX));
}

#[test]
fn concatenated_messages() {
    let mut buf = Vec::new();
    buf.extend_from_slice(ADD_REQUEST);
    buf.extend_from_slice(TTY_NOTIFICATION);
    buf.extend_from_slice(ADD_RESPONSE);
    let mut rest = &buf[..];
    let mut kinds = Vec::new();
    while !rest.is_empty() {
        let (m, used) = rpc::parse(rest).unwrap();
        kinds.push(match m {
            Message::Request { .. } => 0,
            Message::Response { .. } => 1,
            Message::Notification { .. } => 2,
        });
        rest = &rest[used..];
    }
    assert_eq!(kinds, [0, 2, 1]);
}

#[test]
fn parse_accepts_wide_headers() {
    // array16 header, type as uint8, method as str8, params as array16.
    let msg = [
        0xDC, 0x00, 0x03, 0xCC, 0x02, 0xD9, 0x01, b'x', 0xDC, 0x00, 0x01, 0x07,
    ];
    let (m, used) = rpc::parse(&msg).unwrap();
    assert_eq!(used, msg.len());
    match m {
        Message::Notification { method, params } => {
            assert_eq!(method, "x");
            assert_eq!(params.kind(), Kind::Array);
            assert_eq!(params.decode::<(u8,)>().unwrap(), (7,));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parse_rejects_malformed() {
    let cases: &[(&[u8], Error)] = &[
        (&[], Error::Truncated),
        (&[0xC0], Error::WrongType),
        (&[0x93, 0x00, 0x01, 0xA1, b'f'], Error::InvalidLength),
        (&[0x95, 0x01, 0x01, 0xC0, 0xC0, 0xC0], Error::InvalidLength),
        (&[0x94, 0x02, 0xA1, b'f', 0x90, 0xC0], Error::InvalidLength),
        (&[0x94, 0x03, 0x01, 0xC0, 0xC0], Error::OutOfRange),
        (&[0x94, 0xFF, 0x01, 0xC0, 0xC0], Error::OutOfRange),
        (&[0x94, 0xC2, 0x01, 0xC0, 0xC0], Error::WrongType),
        (
            &[0x94, 0x00, 0xA1, b'x', 0xA1, b'f', 0x90],
            Error::WrongType,
        ),
        (&[0x94, 0x00, 0x01, 0x05, 0x90], Error::WrongType),
        (&[0x94, 0x00, 0x01, 0xA1, b'f', 0x05], Error::WrongType),
        (&[0x94, 0x00, 0x01, 0xA1, 0xFF, 0x90], Error::InvalidUtf8),
        (&ADD_REQUEST[..ADD_REQUEST.len() - 1], Error::Truncated),
    ];
    for (bytes, err) in cases {
        assert_eq!(rpc::parse(bytes).unwrap_err(), *err, "{bytes:02x?}");
    }
}

#[test]
fn encode_checks_params_and_buffer() {
    let mut buf = [0u8; 64];
    assert_eq!(
        rpc::encode_request(&mut buf, MsgId::from(1), "f", &5i32),
        Err(Error::WrongType)
    );
    assert_eq!(
        rpc::encode_notification(&mut buf, "f", &"s"),
        Err(Error::WrongType)
    );
    // () is sent as the empty array.
    let n = rpc::encode_request(&mut buf, MsgId::from(7), "f", &()).unwrap();
    assert_eq!(&buf[..n], &[0x94, 0x00, 0x07, 0xA1, b'f', 0x90]);
    // Vec and arrays are arrays too.
    let n = rpc::encode_notification(&mut buf, "f", &[1u8, 2, 3]).unwrap();
    assert_eq!(&buf[..n], &[0x93, 0x02, 0xA1, b'f', 0x93, 1, 2, 3]);
    // An error response carries a nil result.
    let n = rpc::encode_response(&mut buf, MsgId::from(9), Some("boom"), &42).unwrap();
    assert_eq!(
        &buf[..n],
        &[0x94, 0x01, 0x09, 0xA4, b'b', b'o', b'o', b'm', 0xC0]
    );
    // Every too-small buffer fails cleanly.
    for len in 0..ADD_REQUEST.len() {
        let mut small = vec![0u8; len];
        assert_eq!(
            rpc::encode_request(&mut small, MsgId::from(0x2400_1A30), "add", &(1, 2)),
            Err(Error::BufferTooSmall)
        );
    }
}

#[test]
fn parse_split_gives_the_message_and_the_rest() {
    let mut buf = [0u8; 40];
    buf[..ADD_REQUEST.len()].copy_from_slice(ADD_REQUEST);
    buf[ADD_REQUEST.len()..ADD_REQUEST.len() + ADD_RESPONSE.len()].copy_from_slice(ADD_RESPONSE);
    let len = ADD_REQUEST.len() + ADD_RESPONSE.len();
    let (msg, used, rest) = rpc::parse_split(&mut buf, len).unwrap();
    assert_eq!(used, ADD_REQUEST.len());
    assert_eq!(rest.len(), 40 - used);
    assert_eq!(&rest[..ADD_RESPONSE.len()], ADD_RESPONSE);
    let Message::Request {
        msgid,
        method,
        params,
    } = msg
    else {
        panic!("{msg:?}")
    };
    // The rest can be written while the message is still borrowed.
    rest[0] = 0xc0;
    assert_eq!(msgid.as_u32(), Some(0x2400_1A30));
    assert_eq!(method, "add");
    assert_eq!(params.decode::<(i32, i32)>(), Ok((1, 2)));
    // The same errors as `parse`; a message not whole within `len` is truncated.
    assert_eq!(
        rpc::parse_split(&mut buf, ADD_REQUEST.len() - 1).map(|(_, n, _)| n),
        Err(Error::Truncated)
    );
    assert_eq!(
        rpc::parse_split(&mut [0x92, 0x00, 0x01], 3).map(|(_, n, _)| n),
        Err(Error::InvalidLength)
    );
}

#[test]
fn decoder_new_at_starts_behind_a_header() {
    let d = duet_codec::Decoder::new_at(ADD_REQUEST, 11);
    let mut d2 = d.clone();
    assert_eq!(d2.read_array_len(), Ok(2));
    assert_eq!(d2.read_i64(), Ok(1));
    assert_eq!(d2.read_i64(), Ok(2));
    assert!(d2.is_empty());
    assert_eq!(d.position(), 11);
    let mut past = duet_codec::Decoder::new_at(ADD_REQUEST, 99);
    assert!(past.is_empty());
    assert_eq!(past.read_nil(), Err(Error::Truncated));
}
