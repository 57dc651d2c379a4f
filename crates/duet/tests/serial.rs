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
