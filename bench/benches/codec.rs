//! duet-codec against rmp-serde (into a fixed slice, borrowing on decode: no allocation on
//! either side) on a MessagePack-RPC request/response pair and on a larger struct.

use duet_bench::codec::{duet_pair, rmp_pair};
use duet_bench::{compare, Contender};
use duet_codec::rpc::{self, Message, MsgId};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::io::Cursor;

/// The server side of `log(level, text)` with a 100-byte text: parse the request and decode the
/// arguments, borrowing the str (zero-copy), with duet-codec.
fn duet_log(req: &[u8]) -> u64 {
    let (msg, _) = rpc::parse(req).unwrap();
    let Message::Request { params, .. } = msg else {
        unreachable!()
    };
    let (level, text): (u8, &str) = params.decode().unwrap();
    level as u64 + text.len() as u64
}

/// The same with rmp-serde, borrowing the str too.
fn rmp_log(req: &[u8]) -> u64 {
    let (_, _, _method, (level, text)): (u8, u32, &str, (u8, &str)) =
        rmp_serde::from_slice(req).unwrap();
    level as u64 + text.len() as u64
}

#[derive(Serialize, Deserialize)]
struct Reading<'a> {
    sensor: &'a str,
    channel: u8,
    values: [f32; 8],
    #[serde(with = "bytes")]
    raw: &'a [u8],
    ok: bool,
}

mod bytes {
    pub fn serialize<S: serde::Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
        <&[u8] as serde::Deserialize>::deserialize(d)
    }
}

fn main() {
    let (mut req, mut resp) = ([0u8; 64], [0u8; 64]);
    assert_eq!(duet_pair(1, 2, &mut req, &mut resp), 3);
    assert_eq!(rmp_pair(1, 2, &mut req, &mut resp), 3);
    let mut i = 0i32;
    let (mut r1, mut r2) = ([0u8; 64], [0u8; 64]);
    let mut duet = || {
        i = i.wrapping_add(1);
        duet_pair(black_box(i), 2, &mut req, &mut resp)
    };
    let mut j = 0i32;
    let mut rmp = || {
        j = j.wrapping_add(1);
        rmp_pair(black_box(j), 2, &mut r1, &mut r2)
    };
    compare(
        "request/response pair add(i32, i32) -> i32 (encode + parse + decode, both sides)",
        &mut [
            Contender {
                name: "duet-codec",
                op: &mut duet,
            },
            Contender {
                name: "rmp-serde",
                op: &mut rmp,
            },
        ],
    );

    let text = "sensor 3 reading out of range: 1023 > 1000, clamped; retrying in 50 ms (attempt 2 of 5), then stops.";
    assert_eq!(text.len(), 100);
    let mut log_req = [0u8; 160];
    let n =
        rpc::encode_request(&mut log_req, MsgId::from(0x2400_1A30), "log", &(2u8, text)).unwrap();
    let log_req = &log_req[..n];
    assert_eq!(duet_log(log_req), 102);
    assert_eq!(rmp_log(log_req), 102);
    compare(
        "request log(u8, 100-byte str): parse + decode args, str borrowed (server side)",
        &mut [
            Contender {
                name: "duet-codec",
                op: &mut || duet_log(black_box(log_req)),
            },
            Contender {
                name: "rmp-serde",
                op: &mut || rmp_log(black_box(log_req)),
            },
        ],
    );

    let raw = [0xA5u8; 200];
    let reading = Reading {
        sensor: "potentiometer-A0",
        channel: 3,
        values: [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5],
        raw: &raw,
        ok: true,
    };
    let mut buf = [0u8; 512];
    let mut buf2 = [0u8; 512];
    let mut duet = || {
        let n = duet_codec::to_slice(black_box(&reading), &mut buf).unwrap();
        let r: Reading<'_> = duet_codec::from_slice(&buf[..n]).unwrap();
        r.raw.len() as u64 + r.channel as u64
    };
    let mut rmp = || {
        let mut c = Cursor::new(&mut buf2[..]);
        rmp_serde::encode::write(&mut c, black_box(&reading)).unwrap();
        let n = c.position() as usize;
        let r: Reading<'_> = rmp_serde::from_slice(&buf2[..n]).unwrap();
        r.raw.len() as u64 + r.channel as u64
    };
    compare(
        "struct with str, [f32; 8], 200-byte bin (encode + decode)",
        &mut [
            Contender {
                name: "duet-codec",
                op: &mut duet,
            },
            Contender {
                name: "rmp-serde",
                op: &mut rmp,
            },
        ],
    );
}
