//! The codec's request/response path: the caller encodes `add(a, b)` and decodes the reply; the
//! server parses the request, decodes `(i32, i32)` and encodes the response.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use duet_codec::rpc::{self, Message, MsgId};
use size_probe::{opaque_u8, sink};

#[entry]
fn main() -> ! {
    let mut req = [0u8; 64];
    let mut resp = [0u8; 64];
    loop {
        let a = i32::from(opaque_u8(1));
        let id = MsgId::from(u32::from(opaque_u8(7)));
        // Caller: encode the request.
        let n = rpc::encode_request(&mut req, id, "add", &(a, 2i32)).unwrap_or(0);
        // Server: parse it, decode the arguments, encode the response.
        let m = match rpc::parse(&req[..n]) {
            Ok((Message::Request { msgid, params, .. }, _)) => {
                match params.decode::<(i32, i32)>() {
                    Ok((x, y)) => rpc::encode_response::<(), _>(&mut resp, msgid, None, &(x + y)),
                    Err(_) => rpc::encode_response(&mut resp, msgid, Some("bad args"), &()),
                }
            }
            _ => Ok(0),
        }
        .unwrap_or(0);
        // Caller: parse the response and decode the result.
        if let Ok((
            Message::Response {
                msgid,
                error,
                result,
            },
            _,
        )) = rpc::parse(&resp[..m])
        {
            if msgid == id && error.is_nil() {
                sink(result.decode::<i32>().unwrap_or(-1));
            }
        }
    }
}
