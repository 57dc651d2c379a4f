//! The byte stream over the in-memory pair: the shared bodies (`suite/serial.rs`, also run on
//! the simulator), then what needs a raw in-memory peer (receive-ring policies).

mod common;
#[macro_use]
mod suite;

serial_tests!(common::Mem);

use std::time::Duration;

use common::{pair, MemTransport};
use duet::{Endpoint, Rpc, SerialOverflow, Transport};
use duet_codec::rpc::{parse, Message};
use embedded_io::{Read, Write};
use suite::serial::read_exactly;

type R<'a> = suite::serial::R<'a, MemTransport>;

#[test]
fn full_receive_ring_stops_pulling_but_keeps_data_queued() {
    let (a, mut peer) = pair();
    let mut rpc: R = Rpc::new(a);
    for i in 0..6u8 {
        peer.try_send(Endpoint::Raw, &[i; 496]).unwrap();
    }
    rpc.poll().unwrap();
    // The 1024-byte ring took two payloads; the rest waits in the transport.
    assert_eq!(rpc.serial().available(), 992);
    assert_eq!(rpc.transport().queued(), 4);
    let mut got = read_exactly(&mut rpc, 6 * 496);
    got.dedup();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
}

/// Four full buffers of raw data (more than the 1024-byte ring), then `add(2, 2)` as msgid 1.
fn raw_then_request(peer: &mut MemTransport) {
    for _ in 0..4 {
        peer.try_send(Endpoint::Raw, &[7; 496]).unwrap();
    }
    peer.try_send(
        Endpoint::Rpc,
        &[0x94, 0x00, 0x01, 0xA3, b'a', b'd', b'd', 0x92, 2, 2],
    )
    .unwrap();
}

#[test]
fn drop_policy_never_holds_up_rpc() {
    let (a, mut peer) = pair();
    let add = |a: i32, b: i32| a + b;
    let mut rpc: R = Rpc::new(a);
    rpc.bind("add", &add).unwrap();
    rpc.serial().set_overflow(SerialOverflow::Drop);
    raw_then_request(&mut peer);
    rpc.poll().unwrap();
    let (_, r) = peer.recv_wait(Duration::from_secs(1)).unwrap();
    assert_eq!(r, [0x94, 0x01, 0x01, 0xC0, 0x04]);
    assert_eq!(rpc.stats().serial_dropped, 4 * 496 - 1024);
    assert_eq!(rpc.serial().available(), 1024);
}

#[test]
fn backpressure_policy_holds_rpc_behind_unread_serial_data() {
    // The documented trade-off: with a full ring, an RPC request queued behind raw data waits
    // until the application reads.
    let (a, mut peer) = pair();
    let add = |a: i32, b: i32| a + b;
    let mut rpc: R = Rpc::new(a);
    rpc.bind("add", &add).unwrap();
    raw_then_request(&mut peer);
    rpc.poll().unwrap();
    assert!(peer.recv_wait(Duration::from_millis(20)).is_none());
    let mut buf = [0u8; 2048];
    let n = rpc.serial().read(&mut buf).unwrap();
    assert!(n >= 496);
    // Reading made room: the request behind the data is served.
    let _ = read_exactly(&mut rpc, 4 * 496 - n);
    rpc.poll().unwrap();
    let (_, r) = peer.recv_wait(Duration::from_secs(1)).unwrap();
    assert_eq!(r, [0x94, 0x01, 0x01, 0xC0, 0x04]);
}

/// A full raw buffer (496 bytes) written while no transport buffer is free, then a switch to
/// tty mode: the bytes go out as two `"tty"` notifications that each fit one payload.
#[test]
fn switching_to_tty_with_a_full_raw_buffer_sends_it_split() {
    let (a, mut peer) = pair();
    let mut rpc: R = Rpc::new(a);
    let data = suite::pattern(496);
    peer.shared
        .capacity
        .store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(rpc.serial().write(&data), Ok(496));
    assert_eq!(rpc.serial().pending_tx(), 496);
    rpc.serial().set_tty(true);
    peer.shared
        .capacity
        .store(64, std::sync::atomic::Ordering::SeqCst);
    rpc.serial().flush().unwrap();
    assert_eq!(rpc.serial().pending_tx(), 0);
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while let Some((ep, msg)) = peer.recv_wait(Duration::from_millis(50)) {
        assert_eq!(ep, Endpoint::Rpc);
        assert!(msg.len() <= 496);
        match parse(&msg).unwrap() {
            (Message::Notification { method, params }, used) => {
                assert_eq!((method, used), ("tty", msg.len()));
                let mut d = params.decoder();
                assert_eq!(d.read_array_len(), Ok(1));
                let bin = d.read_bin().unwrap();
                sizes.push(bin.len());
                got.extend_from_slice(bin);
            }
            m => panic!("{m:?}"),
        }
    }
    assert_eq!(sizes, [486, 10]);
    assert_eq!(got, data);
}

/// `available()` with an empty ring counts a raw payload but leaves it in the transport, and
/// `read` then copies it once, straight into the reader's buffer. A later engine step that is
/// not the reader's moves the rest into the ring as usual; every byte arrives once, in order,
/// and the request behind the data is served.
#[test]
fn available_leaves_a_payload_for_a_one_copy_read() {
    let (a, mut peer) = pair();
    let add = |a: i32, b: i32| a + b;
    let mut rpc: R = Rpc::new(a);
    rpc.bind("add", &add).unwrap();
    let data = suite::pattern(3 * 496);
    for c in data.chunks(496) {
        peer.try_send(Endpoint::Raw, c).unwrap();
    }
    peer.try_send(
        Endpoint::Rpc,
        &[0x94, 0x00, 0x01, 0xA3, b'a', b'd', b'd', 0x92, 2, 2],
    )
    .unwrap();
    assert_eq!(rpc.serial().available(), 496);
    assert_eq!(rpc.transport().queued(), 4);
    let mut buf = [0u8; 512];
    assert_eq!(rpc.serial().read(&mut buf), Ok(496));
    assert_eq!(&buf[..496], &data[..496]);
    assert_eq!(rpc.transport().queued(), 3);
    // An ordinary poll takes the other two payloads into the ring (then it is full: the
    // request waits behind them, as backpressure does).
    rpc.poll().unwrap();
    assert_eq!(rpc.transport().queued(), 1);
    assert_eq!(rpc.serial().available(), 992);
    assert_eq!(read_exactly(&mut rpc, 992), &data[496..]);
    rpc.poll().unwrap();
    let (_, r) = peer.recv_wait(Duration::from_secs(1)).unwrap();
    assert_eq!(r, [0x94, 0x01, 0x01, 0xC0, 0x04]);
    let s = rpc.stats();
    assert_eq!(s.received[Endpoint::Raw as usize].messages, 3);
    assert_eq!(s.received[Endpoint::Raw as usize].bytes, 3 * 496);
    assert_eq!(s.serial_dropped, 0);
}

/// Reads of every size around a payload's (smaller ones leave the rest of a payload in the
/// ring), mixed with `available()` and with notifications between the payloads: every byte
/// arrives once and in order, and every notification is handled.
#[test]
fn reads_of_any_size_between_notifications_keep_every_byte_in_order() {
    let (a, mut peer) = pair();
    let ticks = std::cell::Cell::new(0);
    let tick = || ticks.set(ticks.get() + 1);
    let mut rpc: R = Rpc::new(a);
    rpc.bind("tick", &tick).unwrap();
    let data = suite::pattern(40 * 496 - 123);
    let (mut sent, mut notes, mut got) = (0, 0, Vec::new());
    let sizes = [1usize, 100, 495, 496, 497, 700, 2048];
    let mut i = 0;
    while got.len() < data.len() {
        // Keep a few payloads queued, each followed by a notification `[2, "tick", []]`.
        while sent < data.len() && rpc.transport().queued() < 12 {
            let n = (data.len() - sent).min(496 - (sent % 7));
            peer.try_send(Endpoint::Raw, &data[sent..sent + n]).unwrap();
            peer.try_send(
                Endpoint::Rpc,
                &[0x93, 0x02, 0xA4, b't', b'i', b'c', b'k', 0x90],
            )
            .unwrap();
            sent += n;
            notes += 1;
        }
        let mut s = rpc.serial();
        if i % 3 == 0 {
            let _ = s.available();
        }
        let mut buf = vec![0u8; sizes[i % sizes.len()]];
        let n = s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        i += 1;
    }
    rpc.poll().unwrap();
    assert_eq!(got, data);
    assert_eq!(ticks.get(), notes);
    assert_eq!(rpc.stats().serial_dropped, 0);
    assert_eq!(
        rpc.stats().received[Endpoint::Raw as usize].bytes as usize,
        data.len()
    );
}

/// 256-byte writes fill each transport buffer to its 496 bytes (the buffered bytes and the
/// start of the next write go out together); without a free buffer the bytes stay buffered,
/// a write then times out, and a flush later sends everything in order.
#[test]
fn writes_fill_whole_buffers_and_wait_without_a_free_one() {
    let (a, mut peer) = pair();
    let mut rpc: R = Rpc::new(a);
    let data = suite::pattern(10 * 256);
    let mut s = rpc.serial();
    s.set_timeout(Duration::from_millis(5));
    for c in data[..5 * 256].chunks(256) {
        s.write_all(c).unwrap();
    }
    assert_eq!(s.pending_tx(), 5 * 256 - 2 * 496);
    let cap = &peer.shared.capacity;
    cap.store(0, std::sync::atomic::Ordering::SeqCst);
    // 288 bytes are buffered: this write fills the buffer but finds no transport buffer.
    assert_eq!(s.write(&data[5 * 256..6 * 256]), Ok(208));
    assert_eq!(s.pending_tx(), 496);
    assert_eq!(
        s.write(&data[5 * 256 + 208..6 * 256]),
        Err(duet::SerialError::Timeout)
    );
    cap.store(64, std::sync::atomic::Ordering::SeqCst);
    s.write_all(&data[5 * 256 + 208..]).unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut lens = Vec::new();
    while let Some((ep, msg)) = peer.recv_wait(Duration::from_millis(20)) {
        assert_eq!(ep, Endpoint::Raw);
        lens.push(msg.len());
        got.extend_from_slice(&msg);
    }
    assert_eq!(got, data);
    assert_eq!(lens, [496, 496, 496, 496, 496, 80]);
}

/// A caller that waits with `available()` for more bytes than one payload holds sees them
/// arrive: a payload offered once and not read goes to the ring at the next call, with the
/// ones behind it.
#[test]
fn available_alone_keeps_pulling_when_the_offer_is_not_taken() {
    let (a, mut peer) = pair();
    let mut rpc: R = Rpc::new(a);
    let data = suite::pattern(3 * 496);
    for c in data.chunks(496) {
        peer.try_send(Endpoint::Raw, c).unwrap();
    }
    assert_eq!(rpc.serial().available(), 496);
    assert_eq!(rpc.transport().queued(), 3);
    assert_eq!(rpc.serial().available(), 992);
    assert_eq!(rpc.transport().queued(), 1);
    assert_eq!(rpc.serial().available(), 992);
    let mut buf = [0u8; 1000];
    assert_eq!(rpc.serial().read(&mut buf), Ok(992));
    assert_eq!(&buf[..992], &data[..992]);
    assert_eq!(rpc.serial().available(), 496);
    assert_eq!(rpc.serial().read(&mut buf), Ok(496));
    assert_eq!(&buf[..496], &data[992..]);
    assert_eq!(rpc.transport().queued(), 0);
}

#[test]
fn an_empty_raw_payload_is_not_end_of_stream() {
    // `read` may return 0 only at end of stream (embedded-io): an empty "raw" message from the
    // peer, met on the one-copy path, is consumed and the read goes on to the bytes behind it.
    let (a, mut peer) = pair();
    let mut rpc: R = Rpc::new(a);
    peer.try_send(Endpoint::Raw, &[]).unwrap();
    peer.try_send(Endpoint::Raw, b"after").unwrap();
    let mut buf = [0u8; 16];
    let n = rpc.serial().read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
    assert_eq!(rpc.stats().serial_dropped, 0);
}
