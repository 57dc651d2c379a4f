//! Arbitrary bytes into the MessagePack decoder and the serde deserializer: no panic, and what
//! decodes must be consistent.
#![no_main]

use duet_codec::{from_slice, Decoder, RawValue};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Record<'a> {
    id: u32,
    name: &'a str,
    data: &'a [u8],
    values: [i16; 3],
    flag: Option<bool>,
    kind: Kind,
}

#[derive(Deserialize)]
#[allow(dead_code)]
enum Kind {
    A,
    B(i64),
    C { x: f32, y: f64 },
}

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(data);
    match d.skip() {
        Ok(()) => {
            let end = d.position();
            assert!(end <= data.len());
            let raw = RawValue::new(&data[..end]).expect("skipped bytes are one value");
            assert_eq!(raw.as_bytes().len(), end);
        }
        Err(_) => assert_eq!(d.position(), 0),
    }
    let _ = from_slice::<Record<'_>>(data);
    let _ = from_slice::<(u8, &str, Option<&[u8]>)>(data);
    let _ = from_slice::<serde::de::IgnoredAny>(data);
    let _ = from_slice::<Kind>(data);
});
