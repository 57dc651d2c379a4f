//! Byte-level behaviour toward a raw peer (an Arduino- or MicroPython-style sender), one thread.

mod common;
mod suite;

use std::time::Duration;

use common::{pair, pair_with, MemTransport, PPB};
use duet::{Context, Endpoint, Request, Rpc, Transport};
use duet_codec::rpc::{parse, Message};

type Small<'a> = Rpc<'a, MemTransport, 8, 4, 2048, 512, 1024>;

fn send(peer: &mut MemTransport, ep: Endpoint, bytes: &[u8]) {
    peer.try_send(ep, bytes).unwrap();
}

fn reply(peer: &mut MemTransport) -> Vec<u8> {
    let (ep, data) = peer.recv_wait(Duration::from_secs(5)).expect("a reply");
    assert_eq!(ep, Endpoint::Rpc);
    data
}

/// The error text of a response.
fn error_text(bytes: &[u8]) -> String {
    match parse(bytes).unwrap().0 {
        Message::Response { error, .. } => error.decoder().read_str().unwrap().to_string(),
        m => panic!("not a response: {m:?}"),
    }
}

#[test]
fn arduino_request_gets_byte_exact_response() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    // RPC.call("add", 1, 2) from thread 0x24001A30.
    send(
        &mut peer,
        Endpoint::Rpc,
        &[
            0x94, 0x00, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xA3, 0x61, 0x64, 0x64, 0x92, 0x01, 0x02,
        ],
    );
    rpc.poll().unwrap();
    assert_eq!(
        reply(&mut peer),
        [0x94, 0x01, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xC0, 0x03]
    );
}

#[test]
fn msgid_echoed_in_received_width() {
    let get = || 7u8;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("get", &get).unwrap();
    // msgid 5 sent as uint16 (0xCD 00 05): echoed the same way.
    send(
        &mut peer,
        Endpoint::Rpc,
        &[0x94, 0x00, 0xCD, 0x00, 0x05, 0xA3, b'g', b'e', b't', 0x90],
    );
    rpc.poll().unwrap();
    assert_eq!(reply(&mut peer), [0x94, 0x01, 0xCD, 0x00, 0x05, 0xC0, 0x07]);
}

#[test]
fn unknown_method_text_is_rpclibs() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let mut buf = [0u8; 64];
    let n = duet_codec::rpc::encode_request(&mut buf, 9u32.into(), "nope", &(1, 2)).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    rpc.poll().unwrap();
    let r = reply(&mut peer);
    assert_eq!(
        error_text(&r),
        "rpclib: server could not find function 'nope' with argument count 2."
    );
    assert_eq!(&r[..3], &[0x94, 0x01, 0x09]);
    assert_eq!(*r.last().unwrap(), 0xC0, "nil result");
    assert_eq!(rpc.stats().unknown_requests, 1);
}

#[test]
fn wrong_arity_text_is_rpclibs() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let mut buf = [0u8; 64];
    let n = duet_codec::rpc::encode_request(&mut buf, 1u32.into(), "add", &(1, 2, 3)).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    rpc.poll().unwrap();
    assert_eq!(
        error_text(&reply(&mut peer)),
        "rpclib: client error C0002: Function 'add' was called with an invalid number of \
         arguments. Expected: 2, got: 3"
    );
}

#[test]
fn wrong_type_gets_error_text_not_a_crash() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let mut buf = [0u8; 64];
    // A float and a bool: rpclib would throw and kill the core.
    let n = duet_codec::rpc::encode_request(&mut buf, 1u32.into(), "add", &(1.5f32, true)).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    rpc.poll().unwrap();
    let text = error_text(&reply(&mut peer));
    assert!(
        text.starts_with("duet: wrong argument type for function 'add': argument 1"),
        "{text}"
    );
}

/// A request with a readable msgid but unusable params is answered (the caller does not hang
/// until its timeout); the same as a notification is only counted.
#[test]
fn malformed_request_gets_an_error_reply() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    // Arduino-style msgid, params 5 instead of an array.
    let req = b"\x94\x00\xCE\x24\x00\x1A\x30\xA3add\x05";
    send(&mut peer, Endpoint::Rpc, req);
    send(&mut peer, Endpoint::Rpc, b"\x93\x02\xA3add\x05");
    rpc.poll().unwrap();
    let mut want = b"\x94\x01\xCE\x24\x00\x1A\x30\xD9\x30".to_vec();
    want.extend_from_slice(b"duet: malformed request: params are not an array\xC0");
    assert_eq!(reply(&mut peer), want);
    assert_eq!(rpc.stats().malformed_messages, 2);
    assert!(peer.recv_wait(Duration::from_millis(10)).is_none());
}

#[test]
fn unknown_notification_is_ignored_and_counted() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    send(&mut peer, Endpoint::Rpc, &[0x93, 0x02, 0xA1, b'x', 0x90]);
    rpc.poll().unwrap();
    assert_eq!(rpc.stats().ignored_notifications, 1);
    assert_eq!(peer.queued(), 0);
    assert!(
        peer.recv_wait(Duration::from_millis(20)).is_none(),
        "no reply to a notification"
    );
}

#[test]
fn concatenated_messages_in_one_buffer_are_all_served() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    let mut buf = [0u8; 64];
    let mut n = duet_codec::rpc::encode_request(&mut buf, 1u32.into(), "add", &(1, 2)).unwrap();
    n += duet_codec::rpc::encode_request(&mut buf[n..], 2u32.into(), "add", &(3, 4)).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    rpc.poll().unwrap();
    assert_eq!(reply(&mut peer), [0x94, 0x01, 0x01, 0xC0, 0x03]);
    assert_eq!(reply(&mut peer), [0x94, 0x01, 0x02, 0xC0, 0x07]);
}

#[test]
fn truncated_message_in_short_chunk_is_a_framing_error() {
    let add = |a: i32, b: i32| a + b;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("add", &add).unwrap();
    // The first 6 bytes of a request: a partial message in a short chunk.
    send(
        &mut peer,
        Endpoint::Rpc,
        &[0x94, 0x00, 0x01, 0xA3, b'a', b'd'],
    );
    rpc.poll().unwrap();
    assert_eq!(rpc.stats().framing_errors, 1);
    // The stream recovers with the next message.
    send(
        &mut peer,
        Endpoint::Rpc,
        &[0x94, 0x00, 0x02, 0xA3, b'a', b'd', b'd', 0x92, 1, 1],
    );
    rpc.poll().unwrap();
    assert_eq!(reply(&mut peer), [0x94, 0x01, 0x02, 0xC0, 0x02]);
}

#[test]
fn message_spanning_buffers_is_reassembled() {
    // Zero-copy handler: borrows the string from the reassembly buffer.
    let len = |ctx: &mut Context<'_>, req: Request<'_>| {
        let r = req.args::<(&str,)>().map(|(s,)| s.len());
        ctx.respond(&r);
    };
    let (t, mut peer) = pair_with(64, 4096);
    let mut rpc: Small = Rpc::new(t);
    rpc.bind_handler("len", &len).unwrap();
    let text = "x".repeat(1200);
    let mut buf = vec![0u8; 2048];
    let n =
        duet_codec::rpc::encode_request(&mut buf, 3u32.into(), "len", &(text.as_str(),)).unwrap();
    assert!(n > 2 * PPB);
    send(&mut peer, Endpoint::Rpc, &buf[..n]); // 3 chunks: 496, 496, rest
    rpc.poll().unwrap();
    assert_eq!(reply(&mut peer), [0x94, 0x01, 0x03, 0xC0, 0xCD, 0x04, 0xB0]);
    assert_eq!(rpc.stats().framing_errors, 0);
}

#[test]
fn message_larger_than_the_buffer_is_dropped_with_an_error_reply() {
    let len = |s: String| s.len();
    let (t, mut peer) = pair_with(64, 8192);
    let mut rpc: Rpc<'_, MemTransport, 4, 2, 1024, 256, 512> = Rpc::new(t);
    rpc.bind("len", &len).unwrap();
    let text = "y".repeat(3000);
    let mut buf = vec![0u8; 4096];
    let n =
        duet_codec::rpc::encode_request(&mut buf, 4u32.into(), "len", &(text.as_str(),)).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    // A normal request right behind it still works.
    let m = duet_codec::rpc::encode_request(&mut buf, 5u32.into(), "len", &("abc",)).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..m]);
    rpc.poll().unwrap();
    let first = reply(&mut peer);
    assert_eq!(&first[..3], &[0x94, 0x01, 0x04]);
    assert_eq!(error_text(&first), duet::error::text::TOO_LARGE);
    assert_eq!(reply(&mut peer), [0x94, 0x01, 0x05, 0xC0, 0x03]);
    assert_eq!(rpc.stats().oversized_messages, 1);
}

/// A result whose `Serialize` fails (not a size problem) is answered with the encoder's
/// reason, not with the "too large" text.
#[test]
fn result_that_cannot_be_encoded_gets_the_encode_error_text() {
    struct Fails;
    impl serde::Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    let get = || Fails;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind("get", &get).unwrap();
    let mut buf = [0u8; 32];
    let n = duet_codec::rpc::encode_request(&mut buf, 9u32.into(), "get", &()).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    rpc.poll().unwrap();
    let r = reply(&mut peer);
    assert_eq!(&r[..3], &[0x94, 0x01, 0x09]);
    assert_eq!(
        error_text(&r),
        format!(
            "{}{}",
            duet::error::text::RESULT_UNENCODABLE_PREFIX,
            duet_codec::Error::Custom
        )
    );
}

#[test]
fn outgoing_message_over_the_limit_is_refused_not_truncated() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let big = "z".repeat(600);
    let r = rpc.call_with_timeout::<(), _>("f", (big.as_str(),), Duration::from_millis(50));
    match r {
        Err(duet::Error::MessageTooLarge { len, max }) => {
            assert_eq!(max, PPB);
            assert!(len > 600, "{len}");
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(peer.queued(), 0);
    assert!(peer.recv_wait(Duration::from_millis(10)).is_none());
}

#[test]
fn our_request_bytes_are_arduino_compatible() {
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let p = rpc.call_async::<i32, _>("add", (1, 2)).unwrap();
    let (_, req) = peer.recv_wait(Duration::from_secs(1)).unwrap();
    // fixarray(4), type 0, msgid as a positive int, fixstr name, fixarray params.
    assert_eq!(req[0], 0x94);
    assert_eq!(req[1], 0x00);
    let id = p.msgid() as u8;
    assert_eq!(&req[2..], &[id, 0xA3, b'a', b'd', b'd', 0x92, 0x01, 0x02]);
    // Answer as Arduino would (msgid echoed) and join.
    peer.try_send(Endpoint::Rpc, &[0x94, 0x01, id, 0xC0, 0x03])
        .unwrap();
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(5));
    assert_eq!(rpc.join(p, deadline).unwrap(), 3);
}

#[test]
fn tty_write_bytes_match_serialrpc() {
    use embedded_io::Write;
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let mut s = rpc.serial();
    s.set_tty(true);
    s.write_all(b"Hi").unwrap();
    s.flush().unwrap();
    let (ep, data) = peer.recv_wait(Duration::from_secs(1)).unwrap();
    assert_eq!(ep, Endpoint::Rpc);
    assert_eq!(
        data,
        [0x93, 0x02, 0xA3, 0x74, 0x74, 0x79, 0x91, 0xC4, 0x02, 0x48, 0x69]
    );
}

#[test]
fn not_ready_endpoint_gives_not_ready() {
    let (t, _peer) = pair();
    t.shared.ready[Endpoint::Rpc as usize].store(false, std::sync::atomic::Ordering::SeqCst);
    let mut rpc: Small = Rpc::new(t);
    assert_eq!(rpc.call::<i32, _>("x", ()), Err(duet::Error::NotReady));
    assert_eq!(rpc.notify("x", ()), Err(duet::Error::NotReady));
}

#[test]
fn peer_that_never_answers_times_out() {
    let (t, _peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.set_timeout(Duration::from_millis(100));
    assert_eq!(rpc.call::<i32, _>("x", ()), Err(duet::Error::Timeout));
    // The slot was freed: capacity is intact.
    for _ in 0..4 {
        let p = rpc.call_async::<i32, _>("x", ()).unwrap();
        let _ = p; // abandoned: reclaimed at its deadline
    }
    assert_eq!(
        rpc.call_async::<i32, _>("x", ()).unwrap_err(),
        duet::Error::TooManyCalls
    );
}

#[test]
fn peer_reset_fails_pending_calls() {
    let (t, peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    let p = rpc.call_async::<i32, _>("x", ()).unwrap();
    peer.shared.reset[0].store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(5));
    assert_eq!(rpc.join(p, deadline), Err(duet::Error::PeerReset));
}

#[test]
fn cpu_id_comes_from_the_platform() {
    let (a, b) = pair();
    let ra: Small = Rpc::new(a);
    let rb: Small = Rpc::new(b);
    assert_eq!(ra.cpu_id(), duet::CpuId::Cm7);
    assert_eq!(rb.cpu_id(), duet::CpuId::Cm4);
    assert_eq!(ra.cpu_id() as u8, 3);
    assert_eq!(rb.cpu_id() as u8, 1);
    assert_eq!(duet::CpuId::from_scb_cpuid(0x411F_C271), duet::CpuId::Cm7);
    assert_eq!(duet::CpuId::from_scb_cpuid(0x410F_C241), duet::CpuId::Cm4);
}

#[test]
fn start_boots_and_waits_for_the_endpoints() {
    let (t, _peer) = pair();
    for r in &t.shared.ready {
        r.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    let mut boot = common::MemBoot {
        shared: t.shared.clone(),
        comes_up: true,
        booted_at: None,
    };
    let mut rpc: Small = Rpc::new(t);
    rpc.start(&mut boot, 0x0818_0000, Duration::from_secs(5))
        .unwrap();
    assert_eq!(boot.booted_at, Some(0x0818_0000));
    assert!(rpc.is_ready());
    // A second boot is refused, as on the chip.
    assert_eq!(
        rpc.start(&mut boot, 0x0818_0000, Duration::from_secs(1)),
        Err(duet::Error::Boot(duet::BootError::AlreadyRunning))
    );
}

#[test]
fn start_fails_if_the_remote_never_comes_up() {
    let (t, _peer) = pair();
    for r in &t.shared.ready {
        r.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    let mut boot = common::MemBoot {
        shared: t.shared.clone(),
        comes_up: false,
        booted_at: None,
    };
    let mut rpc: Small = Rpc::new(t);
    assert_eq!(
        rpc.start(&mut boot, 0x0818_0000, Duration::from_millis(100)),
        Err(duet::Error::NotReady)
    );
    assert_eq!(
        rpc.start(&mut boot, 0x0818_1234, Duration::from_millis(100)),
        Err(duet::Error::Boot(duet::BootError::BadAddress))
    );
}

#[test]
fn deferred_reply_echoes_the_arduino_msgid_bytes() {
    use std::cell::RefCell;
    let parked = RefCell::new(Vec::<duet::Deferred>::new());
    let slow = |ctx: &mut Context<'_>, _: Request<'_>| {
        parked.borrow_mut().extend(ctx.defer());
    };
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind_handler("slow", &slow).unwrap();
    // RPC.call("slow", 5) from thread 0x24001A30, then msgid 5 as uint16.
    send(
        &mut peer,
        Endpoint::Rpc,
        &[
            0x94, 0x00, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xA4, b's', b'l', b'o', b'w', 0x91, 0x05,
        ],
    );
    send(
        &mut peer,
        Endpoint::Rpc,
        &[
            0x94, 0x00, 0xCD, 0x00, 0x05, 0xA4, b's', b'l', b'o', b'w', 0x90,
        ],
    );
    rpc.poll().unwrap();
    assert_eq!(parked.borrow().len(), 2);
    assert_eq!(
        peer.recv_wait(Duration::from_millis(30)),
        None,
        "no automatic reply"
    );
    let (d1, d2) = {
        let mut v = parked.borrow_mut();
        let d2 = v.pop().unwrap();
        (v.pop().unwrap(), d2)
    };
    assert_eq!(d1.msgid().value(), 0x2400_1A30);
    // Answered in the other order, each with its own msgid bytes.
    rpc.respond_error(d2, "stalled").unwrap();
    assert_eq!(
        reply(&mut peer),
        [0x94, 0x01, 0xCD, 0x00, 0x05, 0xA7, b's', b't', b'a', b'l', b'l', b'e', b'd', 0xC0]
    );
    rpc.respond(d1, &10).unwrap();
    assert_eq!(
        reply(&mut peer),
        [0x94, 0x01, 0xCE, 0x24, 0x00, 0x1A, 0x30, 0xC0, 0x0A]
    );
}

#[test]
fn reset_voids_deferred_tokens_and_fails_pending_calls() {
    use std::cell::RefCell;
    let parked = RefCell::new(Vec::<duet::Deferred>::new());
    let slow = |ctx: &mut Context<'_>, _: Request<'_>| {
        parked.borrow_mut().extend(ctx.defer());
    };
    let (t, mut peer) = pair();
    let mut rpc: Small = Rpc::new(t);
    rpc.bind_handler("slow", &slow).unwrap();
    let mut buf = [0u8; 64];
    for id in [1u32, 2] {
        let n = duet_codec::rpc::encode_request(&mut buf, id.into(), "slow", &()).unwrap();
        send(&mut peer, Endpoint::Rpc, &buf[..n]);
    }
    rpc.poll().unwrap();
    let d2 = parked.borrow_mut().pop().unwrap();
    let d1 = parked.borrow_mut().pop().unwrap();
    // A reset seen by the transport voids tokens from before it: nothing is sent.
    peer.shared.reset[0].store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(rpc.poll(), Err(duet::Error::PeerReset));
    assert_eq!(rpc.respond(d1, &1), Err(duet::Error::PeerReset));
    // A reset made by this side (Rpc::reset) does the same, and fails pending calls.
    let n = duet_codec::rpc::encode_request(&mut buf, 3u32.into(), "slow", &()).unwrap();
    send(&mut peer, Endpoint::Rpc, &buf[..n]);
    rpc.poll().unwrap();
    let d3 = parked.borrow_mut().pop().unwrap();
    let p = rpc.call_async::<i32, _>("x", ()).unwrap();
    let mut ran = false;
    rpc.reset(|_| {
        ran = true;
        Ok(())
    })
    .unwrap();
    assert!(ran);
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(5));
    assert_eq!(rpc.join(p, deadline), Err(duet::Error::PeerReset));
    assert_eq!(rpc.respond(d3, &3), Err(duet::Error::PeerReset));
    assert_eq!(rpc.respond_error(d2, "late"), Err(duet::Error::PeerReset));
    // Only the request sent by call_async went out; no stale reply.
    let (_, req) = peer.recv_wait(Duration::from_secs(5)).unwrap();
    assert!(matches!(parse(&req).unwrap().0, Message::Request { .. }));
    assert_eq!(peer.recv_wait(Duration::from_millis(30)), None);
    // The transport's error is returned as a value.
    assert_eq!(
        rpc.reset(|_| Err(duet_rpmsg::Error::InvalidConfig)),
        Err(duet::Error::Transport(duet_rpmsg::Error::InvalidConfig))
    );
}
