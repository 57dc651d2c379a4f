//! Arduino compatibility on the simulator: one core speaks raw bytes through the bare RPMsg
//! transport (no duet engine), exactly as Arduino's `RPC` library would; the other core runs
//! duet. Byte sequences are the spec's (`arduino-rpc-wire.md`, section 3).

#[path = "../../duet/tests/suite/mod.rs"]
#[macro_use]
mod suite;
mod common;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use common::{connected, M4, M7};
use duet::{Endpoint, Error, Rpc};
use duet_rpmsg::Transport;
use embedded_io::{Read, Write};
use suite::{flag, recv_wait, serve, R};

/// Arduino packs the rpclib error text as a msgpack str.
fn msgpack_str(s: &str) -> Vec<u8> {
    let mut v = match s.len() {
        n @ 0..=31 => vec![0xA0 | n as u8],
        n @ 32..=255 => vec![0xD9, n as u8],
        n => panic!("{n}"),
    };
    v.extend_from_slice(s.as_bytes());
    v
}

/// Sends `bytes` as one message and returns the single reply on `"rpc"`.
fn exchange<T: Transport>(t: &mut T, bytes: &[u8]) -> Vec<u8> {
    t.try_send(Endpoint::Rpc, bytes).unwrap();
    let (ep, reply) = recv_wait(t, Duration::from_secs(10)).expect("a reply");
    assert_eq!(ep, Endpoint::Rpc);
    reply
}

/// An Arduino M4 sketch calls the duet M7: `RPC.call("add", 1, 2)` from thread 0x24001A30 and
/// the rpclib error cases; the replies are what Arduino's own M7 would send, byte for byte.
#[test]
fn arduino_m4_calls_duet_m7() {
    let (m7, mut m4) = connected(496);
    let stop = flag();
    let engine = thread::spawn({
        let stop = stop.clone();
        move || {
            let add = |a: i32, b: i32| a + b;
            let mut rpc: R<M7> = Rpc::new(m7);
            rpc.bind("add", &add).unwrap();
            serve(&mut rpc, &stop);
            rpc.stats()
        }
    });
    let add_1_2 = [
        0x94, 0x00, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xA3, 0x61, 0x64, 0x64, 0x92, 0x01, 0x02,
    ];
    assert_eq!(
        exchange(&mut m4, &add_1_2),
        [0x94, 0x01, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xC0, 0x03]
    );
    // Unknown function: rpclib's text in the error field, nil result, msgid echoed.
    let mut expect = vec![0x94, 0x01, 0xCE, 0x24, 0x00, 0x1A, 0x30];
    expect.extend(msgpack_str(
        "rpclib: server could not find function 'sub' with argument count 2.",
    ));
    expect.push(0xC0);
    let sub_1_2 = [
        0x94, 0x00, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xA3, b's', b'u', b'b', 0x92, 0x01, 0x02,
    ];
    assert_eq!(exchange(&mut m4, &sub_1_2), expect);
    // Wrong argument count: rpclib's C0002 text.
    let mut expect = vec![0x94, 0x01, 0xCE, 0x10, 0x00, 0x00, 0x08];
    expect.extend(msgpack_str(
        "rpclib: client error C0002: Function 'add' was called with an invalid number of \
         arguments. Expected: 2, got: 1",
    ));
    expect.push(0xC0);
    let add_1 = [
        0x94, 0x00, 0xCE, 0x10, 0x00, 0x00, 0x08, 0xA3, b'a', b'd', b'd', 0x91, 0x01,
    ];
    assert_eq!(exchange(&mut m4, &add_1), expect);
    // RPC.send("add", 1, 2): a notification, no reply.
    m4.try_send(
        Endpoint::Rpc,
        &[0x93, 0x02, 0xA3, b'a', b'd', b'd', 0x92, 0x01, 0x02],
    )
    .unwrap();
    assert!(recv_wait(&mut m4, Duration::from_millis(50)).is_none());
    stop.store(true, Ordering::SeqCst);
    let stats = engine.join().unwrap();
    assert_eq!(stats.unknown_requests, 1);
    assert_eq!(stats.malformed_messages + stats.framing_errors, 0);
}

/// The duet M4 calls an Arduino M7 that answers as rpclib does (msgid echoed, error texts);
/// duet's requests are what Arduino's dispatcher expects (fixarray, fixint type byte).
#[test]
fn duet_m4_calls_arduino_m7() {
    let (mut m7, m4) = connected(496);
    let caller = thread::spawn(move || {
        let mut rpc: R<M4> = Rpc::new(m4);
        let sum = rpc.call::<i32, _>("add", (1, 2));
        let unknown = rpc.call::<i32, _>("nope", ());
        let arity = rpc.call::<i32, _>("add", (1,));
        let void = rpc.call::<(), _>("led", (true,));
        (sum, unknown, arity, void)
    });
    let request = |m7: &mut M7| recv_wait(m7, Duration::from_secs(10)).expect("a request");
    // add(1, 2), msgid 1 (duet counts from 1).
    let (ep, req) = request(&mut m7);
    assert_eq!(ep, Endpoint::Rpc);
    assert_eq!(
        req,
        [0x94, 0x00, 0x01, 0xA3, b'a', b'd', b'd', 0x92, 0x01, 0x02]
    );
    m7.try_send(Endpoint::Rpc, &[0x94, 0x01, 0x01, 0xC0, 0x03])
        .unwrap();
    // nope(): answered with rpclib's unknown-function text.
    let (_, req) = request(&mut m7);
    assert_eq!(req, [0x94, 0x00, 0x02, 0xA4, b'n', b'o', b'p', b'e', 0x90]);
    let mut reply = vec![0x94, 0x01, 0x02];
    reply.extend(msgpack_str(
        "rpclib: server could not find function 'nope' with argument count 0.",
    ));
    reply.push(0xC0);
    m7.try_send(Endpoint::Rpc, &reply).unwrap();
    // add(1): rpclib's arity text.
    let (_, req) = request(&mut m7);
    assert_eq!(req, [0x94, 0x00, 0x03, 0xA3, b'a', b'd', b'd', 0x91, 0x01]);
    let mut reply = vec![0x94, 0x01, 0x03];
    reply.extend(msgpack_str(
        "rpclib: client error C0002: Function 'add' was called with an invalid number of \
         arguments. Expected: 2, got: 1",
    ));
    reply.push(0xC0);
    m7.try_send(Endpoint::Rpc, &reply).unwrap();
    // led(true): a void function's nil result.
    let (_, req) = request(&mut m7);
    assert_eq!(req, [0x94, 0x00, 0x04, 0xA3, b'l', b'e', b'd', 0x91, 0xC3]);
    m7.try_send(Endpoint::Rpc, &[0x94, 0x01, 0x04, 0xC0, 0xC0])
        .unwrap();

    let (sum, unknown, arity, void) = caller.join().unwrap();
    assert_eq!(sum, Ok(3));
    match unknown {
        Err(Error::UnknownMethod(e)) => assert_eq!(
            e.text(),
            Some("rpclib: server could not find function 'nope' with argument count 0.")
        ),
        r => panic!("{r:?}"),
    }
    assert!(matches!(arity, Err(Error::WrongArgCount(_))), "{arity:?}");
    assert_eq!(void, Ok(()));
}

/// Arduino's `RPC.print` sends one message per character on `"raw"`; duet's `Serial` on the M7
/// reads them all, and what duet writes arrives at the raw M4 in whole buffers.
#[test]
fn raw_stream_with_an_arduino_m4() {
    let (m7, mut m4) = connected(496);
    let reader = thread::spawn(move || {
        let mut rpc: R<M7> = Rpc::new(m7);
        let mut s = rpc.serial();
        s.set_timeout(Duration::from_secs(10));
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 12 {
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(&suite::pattern(1000)).unwrap();
        s.flush().unwrap();
        got
    });
    for &c in b"Hello, M7!\r\n" {
        m4.send(Endpoint::Raw, &[c], far(&m4)).unwrap();
    }
    assert_eq!(reader.join().unwrap(), b"Hello, M7!\r\n");
    let mut got = Vec::new();
    let mut messages = 0;
    while got.len() < 1000 {
        let (ep, data) = recv_wait(&mut m4, Duration::from_secs(10)).expect("data");
        assert_eq!(ep, Endpoint::Raw);
        got.extend(data);
        messages += 1;
    }
    assert_eq!(got, suite::pattern(1000));
    assert_eq!(messages, 3, "496 + 496 + 8");
}

fn far<T: Transport>(t: &T) -> duet::Instant {
    use duet_rpmsg::Platform;
    t.platform().now().saturating_add(Duration::from_secs(10))
}
