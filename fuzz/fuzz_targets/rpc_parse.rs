//! Arbitrary bytes into the MessagePack-RPC parser: no panic, and a parsed message re-encodes
//! to bytes that parse to the same message.
#![no_main]

use duet_codec::rpc::{self, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((msg, used)) = rpc::parse(rest) {
        assert!(used > 0 && used <= rest.len());
        let mut out = [0u8; 1024];
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
        };
        if let Ok(n) = n {
            let (again, m) = rpc::parse(&out[..n]).expect("re-encoded message parses");
            assert_eq!(again, msg);
            assert_eq!(m, n);
        }
        if let Message::Request { params, .. } = msg {
            let _ = params.decode::<(i32, i32)>();
            let _ = params.decode::<(&str, &[u8])>();
        }
        rest = &rest[used..];
    }
});
