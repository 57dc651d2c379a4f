//! Every MessagePack type and width: exact encodings and decoding of all widths.

use duet_codec::{Decoder, Encoder, Error, Kind, RawValue, MAX_DEPTH};

fn enc(f: impl FnOnce(&mut Encoder<'_>) -> duet_codec::Result<()>) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 17];
    let mut e = Encoder::new(&mut buf);
    f(&mut e).unwrap();
    let n = e.position();
    assert_eq!(e.written().len(), n);
    buf.truncate(n);
    buf
}

fn be(marker: u8, v: u64, width: usize) -> Vec<u8> {
    let mut out = vec![marker];
    out.extend_from_slice(&v.to_be_bytes()[8 - width..]);
    out
}

#[test]
fn unsigned_boundaries() {
    let cases: &[(u64, Vec<u8>)] = &[
        (0, vec![0x00]),
        (0x7f, vec![0x7f]),
        (0x80, be(0xcc, 0x80, 1)),
        (0xff, be(0xcc, 0xff, 1)),
        (0x100, be(0xcd, 0x100, 2)),
        (0xffff, be(0xcd, 0xffff, 2)),
        (0x1_0000, be(0xce, 0x1_0000, 4)),
        (0xffff_ffff, be(0xce, 0xffff_ffff, 4)),
        (0x1_0000_0000, be(0xcf, 0x1_0000_0000, 8)),
        (u64::MAX, be(0xcf, u64::MAX, 8)),
    ];
    for (v, bytes) in cases {
        assert_eq!(&enc(|e| e.write_u64(*v)), bytes, "{v}");
        let mut d = Decoder::new(bytes);
        assert_eq!(d.peek_kind().unwrap(), Kind::Uint);
        assert_eq!(d.read_u64().unwrap(), *v);
        assert!(d.is_empty());
        let mut d = Decoder::new(bytes);
        match i64::try_from(*v) {
            Ok(i) => assert_eq!(d.read_i64().unwrap(), i),
            Err(_) => {
                assert_eq!(d.read_i64(), Err(Error::OutOfRange));
                assert_eq!(d.position(), 0, "position restored on error");
            }
        }
    }
}

#[test]
fn signed_boundaries() {
    let cases: &[(i64, Vec<u8>)] = &[
        (-1, vec![0xff]),
        (-32, vec![0xe0]),
        (-33, be(0xd0, (-33i64) as u64, 1)),
        (-128, be(0xd0, (-128i64) as u64, 1)),
        (-129, be(0xd1, (-129i64) as u64, 2)),
        (-32768, be(0xd1, (-32768i64) as u64, 2)),
        (-32769, be(0xd2, (-32769i64) as u64, 4)),
        (i32::MIN as i64, be(0xd2, i32::MIN as i64 as u64, 4)),
        (
            i32::MIN as i64 - 1,
            be(0xd3, (i32::MIN as i64 - 1) as u64, 8),
        ),
        (i64::MIN, be(0xd3, i64::MIN as u64, 8)),
        // Non-negative values use the unsigned forms.
        (0, vec![0x00]),
        (127, vec![0x7f]),
        (128, be(0xcc, 128, 1)),
        (i64::MAX, be(0xcf, i64::MAX as u64, 8)),
    ];
    for (v, bytes) in cases {
        assert_eq!(&enc(|e| e.write_i64(*v)), bytes, "{v}");
        let mut d = Decoder::new(bytes);
        assert_eq!(d.read_i64().unwrap(), *v);
        assert!(d.is_empty());
        if *v < 0 {
            assert_eq!(Decoder::new(bytes).peek_kind().unwrap(), Kind::Int);
            assert_eq!(Decoder::new(bytes).read_u64(), Err(Error::OutOfRange));
        }
    }
    // Signed markers holding non-negative values decode as both.
    for bytes in [
        &[0xd0, 0x05][..],
        &[0xd1, 0x00, 0x05],
        &[0xd2, 0, 0, 0, 5],
        &[0xd3, 0, 0, 0, 0, 0, 0, 0, 5],
    ] {
        assert_eq!(Decoder::new(bytes).read_u64().unwrap(), 5);
        assert_eq!(Decoder::new(bytes).read_i64().unwrap(), 5);
        assert_eq!(duet_codec::from_slice::<u8>(bytes).unwrap(), 5);
    }
}

#[test]
fn nil_bool_float() {
    assert_eq!(enc(|e| e.write_nil()), [0xc0]);
    assert_eq!(enc(|e| e.write_bool(false)), [0xc2]);
    assert_eq!(enc(|e| e.write_bool(true)), [0xc3]);
    assert_eq!(enc(|e| e.write_f32(1.5)), [0xca, 0x3f, 0xc0, 0, 0]);
    assert_eq!(
        enc(|e| e.write_f64(-2.25)),
        [0xcb, 0xc0, 0x02, 0, 0, 0, 0, 0, 0]
    );
    let mut d = Decoder::new(&[0xc0, 0xc2, 0xc3, 0xca, 0x3f, 0xc0, 0, 0]);
    d.read_nil().unwrap();
    assert!(!d.read_bool().unwrap());
    assert!(d.read_bool().unwrap());
    assert_eq!(d.clone().read_f32().unwrap(), 1.5);
    assert_eq!(d.read_f64().unwrap(), 1.5, "f64 accepts float32");
    let f64_bytes = [0xcb, 0xc0, 0x02, 0, 0, 0, 0, 0, 0];
    assert_eq!(Decoder::new(&f64_bytes).read_f64().unwrap(), -2.25);
    assert_eq!(Decoder::new(&f64_bytes).read_f32(), Err(Error::WrongType));
    assert_eq!(Decoder::new(&f64_bytes).peek_kind().unwrap(), Kind::F64);
    assert_eq!(Decoder::new(&[0xc1]).peek_kind(), Err(Error::InvalidMarker));
    assert_eq!(Decoder::new(&[0xc1]).skip(), Err(Error::InvalidMarker));
}

#[test]
fn str_widths() {
    for (len, header) in [
        (0usize, vec![0xa0]),
        (31, vec![0xbf]),
        (32, vec![0xd9, 32]),
        (255, vec![0xd9, 255]),
        (256, vec![0xda, 1, 0]),
        (65535, vec![0xda, 0xff, 0xff]),
        (65536, vec![0xdb, 0, 1, 0, 0]),
    ] {
        let s: String = "abcdefghij".chars().cycle().take(len).collect();
        let bytes = enc(|e| e.write_str(&s));
        assert_eq!(&bytes[..header.len()], &header[..], "len {len}");
        assert_eq!(bytes.len(), header.len() + len);
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.peek_kind().unwrap(), Kind::Str);
        let got = d.read_str().unwrap();
        assert_eq!(got, s);
        // Zero-copy: the str points into the input.
        assert_eq!(got.as_ptr(), bytes[header.len()..].as_ptr());
        assert!(d.is_empty());
    }
    // str8/16/32 with short content (non-canonical widths) decode too.
    for bytes in [
        &[0xd9, 2, b'h', b'i'][..],
        &[0xda, 0, 2, b'h', b'i'],
        &[0xdb, 0, 0, 0, 2, b'h', b'i'],
    ] {
        assert_eq!(Decoder::new(bytes).read_str().unwrap(), "hi");
    }
    assert_eq!(
        Decoder::new(&[0xa2, 0xc3, 0x28]).read_str(),
        Err(Error::InvalidUtf8)
    );
    assert_eq!(
        Decoder::new(&[0xa3, b'a']).read_str(),
        Err(Error::Truncated)
    );
}

#[test]
fn bin_widths() {
    for (len, header) in [
        (0usize, vec![0xc4, 0]),
        (255, vec![0xc4, 255]),
        (256, vec![0xc5, 1, 0]),
        (65535, vec![0xc5, 0xff, 0xff]),
        (65536, vec![0xc6, 0, 1, 0, 0]),
    ] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let bytes = enc(|e| e.write_bin(&data));
        assert_eq!(&bytes[..header.len()], &header[..], "len {len}");
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.peek_kind().unwrap(), Kind::Bin);
        assert_eq!(d.read_bin().unwrap(), &data[..]);
        assert!(d.is_empty());
    }
    assert_eq!(Decoder::new(&[0xc5, 0, 1, 7]).read_bin().unwrap(), &[7]);
    assert_eq!(
        Decoder::new(&[0xc6, 0, 0, 0, 1, 7]).read_bin().unwrap(),
        &[7]
    );
}

#[test]
fn array_and_map_widths() {
    for (len, header) in [
        (0u32, vec![0x90]),
        (15, vec![0x9f]),
        (16, vec![0xdc, 0, 16]),
        (65535, vec![0xdc, 0xff, 0xff]),
        (65536, vec![0xdd, 0, 1, 0, 0]),
        (u32::MAX, vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
    ] {
        assert_eq!(enc(|e| e.write_array_len(len)), header);
        assert_eq!(Decoder::new(&header).read_array_len().unwrap(), len);
        let mut map_header = header.clone();
        map_header[0] = match header[0] {
            0xdc => 0xde,
            0xdd => 0xdf,
            m => m - 0x10,
        };
        assert_eq!(enc(|e| e.write_map_len(len)), map_header);
        assert_eq!(Decoder::new(&map_header).read_map_len().unwrap(), len);
        assert_eq!(Decoder::new(&map_header).peek_kind().unwrap(), Kind::Map);
        assert_eq!(Decoder::new(&header).peek_kind().unwrap(), Kind::Array);
    }
    // A map16 with one pair, and skipping over an array32.
    let m = [0xde, 0, 1, 0xa1, b'k', 0x07, 0xc0];
    let mut d = Decoder::new(&m);
    assert_eq!(d.read_map_len().unwrap(), 1);
    assert_eq!(d.read_str().unwrap(), "k");
    assert_eq!(d.read_u64().unwrap(), 7);
    let a = [0xdd, 0, 0, 0, 2, 0x01, 0x91, 0x02, 0xc0];
    let mut d = Decoder::new(&a);
    d.skip().unwrap();
    assert_eq!(d.position(), 8);
    d.read_nil().unwrap();
}

#[test]
fn ext_widths() {
    for (len, header) in [
        (1usize, vec![0xd4, 0x05]),
        (2, vec![0xd5, 0x05]),
        (4, vec![0xd6, 0x05]),
        (8, vec![0xd7, 0x05]),
        (16, vec![0xd8, 0x05]),
        (0, vec![0xc7, 0, 0x05]),
        (3, vec![0xc7, 3, 0x05]),
        (255, vec![0xc7, 255, 0x05]),
        (256, vec![0xc8, 1, 0, 0x05]),
        (65536, vec![0xc9, 0, 1, 0, 0, 0x05]),
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let bytes = enc(|e| e.write_ext(5, &data));
        assert_eq!(&bytes[..header.len()], &header[..], "len {len}");
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.peek_kind().unwrap(), Kind::Ext);
        assert_eq!(d.clone().read_ext().unwrap(), (5, &data[..]));
        d.skip().unwrap();
        assert!(d.is_empty());
    }
    let neg = enc(|e| e.write_ext(-1, &[1, 2, 3, 4]));
    assert_eq!(neg, [0xd6, 0xff, 1, 2, 3, 4]);
    assert_eq!(
        Decoder::new(&neg).read_ext().unwrap(),
        (-1, &[1u8, 2, 3, 4][..])
    );
    assert_eq!(
        Decoder::new(&[0xc8, 0, 1, 9, 0xaa]).read_ext().unwrap(),
        (9, &[0xaa][..])
    );
    assert_eq!(
        Decoder::new(&[0xc9, 0, 0, 0, 1, 9, 0xaa])
            .read_ext()
            .unwrap(),
        (9, &[0xaa][..])
    );
}

#[test]
fn buffer_too_small_leaves_position() {
    let mut buf = [0u8; 4];
    let mut e = Encoder::new(&mut buf);
    e.write_u64(1).unwrap();
    assert_eq!(e.write_u64(0x1_0000), Err(Error::BufferTooSmall));
    assert_eq!(e.write_str("abcd"), Err(Error::BufferTooSmall));
    assert_eq!(e.write_bin(&[1, 2]), Err(Error::BufferTooSmall));
    assert_eq!(e.write_ext(1, &[1, 2]), Err(Error::BufferTooSmall));
    assert_eq!(e.write_raw(&[1, 2, 3, 4]), Err(Error::BufferTooSmall));
    assert_eq!(e.position(), 1);
    e.write_str("ab").unwrap();
    assert_eq!(e.written(), &[0x01, 0xa2, b'a', b'b']);
    assert_eq!(e.write_nil(), Err(Error::BufferTooSmall));
}

#[test]
fn read_errors_leave_position_and_report_type() {
    let bytes = [0xa1, b'x'];
    let mut d = Decoder::new(&bytes);
    assert_eq!(d.read_u64(), Err(Error::WrongType));
    assert_eq!(d.read_bin(), Err(Error::WrongType));
    assert_eq!(d.read_array_len(), Err(Error::WrongType));
    assert_eq!(d.position(), 0);
    assert_eq!(d.read_str().unwrap(), "x");
    assert_eq!(d.read_nil(), Err(Error::Truncated));
    assert_eq!(d.peek_kind(), Err(Error::Truncated));
    assert_eq!(d.remaining(), &[] as &[u8]);
    // Truncation inside a fixed-width number.
    assert_eq!(
        Decoder::new(&[0xcd, 0x01]).read_u64(),
        Err(Error::Truncated)
    );
    // A huge bin32 length in a short buffer.
    assert_eq!(
        Decoder::new(&[0xc6, 0xff, 0xff, 0xff, 0xff, 0]).skip(),
        Err(Error::Truncated)
    );
    // A huge array32 count in a short buffer fails quickly.
    assert_eq!(
        Decoder::new(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0]).skip(),
        Err(Error::Truncated)
    );
}

#[test]
fn raw_value() {
    let bytes = [0x92, 0x01, 0xa1, b'a', 0xc0];
    let mut d = Decoder::new(&bytes);
    let raw = d.read_raw().unwrap();
    assert_eq!(raw.as_bytes(), &bytes[..4]);
    assert_eq!(raw.kind(), Kind::Array);
    assert!(!raw.is_nil());
    assert_eq!(raw.decode::<(u8, &str)>().unwrap(), (1, "a"));
    assert!(d.read_raw().unwrap().is_nil());
    assert_eq!(RawValue::new(&bytes), Err(Error::TrailingBytes));
    assert_eq!(RawValue::new(&bytes[..3]), Err(Error::Truncated));
    assert_eq!(RawValue::new(&[]), Err(Error::Truncated));
    assert!(RawValue::new(&[0xc0]).unwrap().is_nil());
    // Writing it back is verbatim.
    assert_eq!(enc(|e| e.write_raw(raw.as_bytes())), &bytes[..4]);
}

fn nested(depth: usize) -> Vec<u8> {
    let mut v = vec![0x91; depth];
    v.push(0xc0);
    v
}

#[test]
fn depth_limit() {
    // Exactly MAX_DEPTH nested arrays are fine; one more is not.
    let ok = nested(MAX_DEPTH);
    Decoder::new(&ok).skip().unwrap();
    RawValue::new(&ok).unwrap();
    let deep = nested(MAX_DEPTH + 1);
    assert_eq!(Decoder::new(&deep).skip(), Err(Error::DepthLimit));
    assert_eq!(RawValue::new(&deep), Err(Error::DepthLimit));
    // An empty container counts as a level too.
    let mut deep_empty = vec![0x91; MAX_DEPTH];
    deep_empty.push(0x90);
    assert_eq!(Decoder::new(&deep_empty).skip(), Err(Error::DepthLimit));

    let huge = nested(10_000);
    let mut d = Decoder::new(&huge);
    assert_eq!(d.skip(), Err(Error::DepthLimit));
    assert_eq!(d.position(), 0);
    assert_eq!(
        duet_codec::from_slice::<serde::de::IgnoredAny>(&huge).unwrap_err(),
        Error::DepthLimit
    );
    // Maps nest the same way.
    let mut maps = vec![];
    for _ in 0..10_000 {
        maps.extend_from_slice(&[0x81, 0xc0]);
    }
    maps.push(0xc0);
    assert_eq!(Decoder::new(&maps).skip(), Err(Error::DepthLimit));
    let mut request = vec![0x94, 0x00, 0x01, 0xa1, b'f'];
    request.extend_from_slice(&huge);
    assert_eq!(
        duet_codec::rpc::parse(&request).unwrap_err(),
        Error::DepthLimit
    );
}
