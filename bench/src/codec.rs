//! duet-codec against rmp-serde on both sides of a MessagePack-RPC `add(a, b)` exchange (into
//! fixed slices, borrowing on decode: no allocation on either side).

use std::io::Cursor;

use duet_codec::rpc::{self, Message, MsgId};

/// Both sides of `add(a, b)` with duet-codec: encode request, parse + decode args, encode
/// response, parse + decode result.
pub fn duet_pair(a: i32, b: i32, req: &mut [u8], resp: &mut [u8]) -> u64 {
    let id = MsgId::from(0x2400_1A30);
    let n = rpc::encode_request(req, id, "add", &(a, b)).unwrap();
    let (msg, _) = rpc::parse(&req[..n]).unwrap();
    let Message::Request { msgid, params, .. } = msg else {
        unreachable!()
    };
    let (x, y): (i32, i32) = params.decode().unwrap();
    let m = rpc::encode_response::<(), _>(resp, msgid, None, &(x + y)).unwrap();
    let (msg, _) = rpc::parse(&resp[..m]).unwrap();
    let Message::Response { result, .. } = msg else {
        unreachable!()
    };
    result.decode::<i32>().unwrap() as u64
}

/// The same with rmp-serde: messages as tuples, written into a slice through a cursor.
pub fn rmp_pair(a: i32, b: i32, req: &mut [u8], resp: &mut [u8]) -> u64 {
    let mut c = Cursor::new(&mut req[..]);
    rmp_serde::encode::write(&mut c, &(0u8, 0x2400_1A30u32, "add", (a, b))).unwrap();
    let n = c.position() as usize;
    let (_, msgid, _method, (x, y)): (u8, u32, &str, (i32, i32)) =
        rmp_serde::from_slice(&req[..n]).unwrap();
    let mut c = Cursor::new(&mut resp[..]);
    rmp_serde::encode::write(&mut c, &(1u8, msgid, (), x + y)).unwrap();
    let m = c.position() as usize;
    let (_, _, _, r): (u8, u32, (), i32) = rmp_serde::from_slice(&resp[..m]).unwrap();
    r as u64
}
