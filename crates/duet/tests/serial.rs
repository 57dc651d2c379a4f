//! The byte stream: embedded_io Read/Write, fmt::Write, whole-buffer sends, backpressure, tty.

mod common;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use common::{flag, pair, pair_with, MemTransport};
use duet::{Endpoint, Rpc, SerialError, SerialOverflow};
use duet_rpmsg::{Platform, Transport};
use embedded_io::{Read, Write};

type R<'a> = Rpc<'a, MemTransport, 8, 4, 2048, 512, 1024>;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn read_exactly(rpc: &mut R<'_>, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = rpc.serial();
    s.set_timeout(Duration::from_secs(10));
    let mut buf = [0u8; 300];
    while out.len() < n {
        let k = s.read(&mut buf).unwrap();
        out.extend_from_slice(&buf[..k]);
    }
    out
}

#[test]
fn write_sends_whole_buffers_and_read_gets_every_byte() {
    let (a, b) = pair();
    let data = pattern(5000);
    let writer = thread::spawn({
        let data = data.clone();
        move || {
            let mut rpc: R = Rpc::new(b);
            let mut s = rpc.serial();
            // Many small writes, as print() would do.
            for chunk in data.chunks(7) {
                s.write_all(chunk).unwrap();
            }
            s.flush().unwrap();
            rpc.transport().sent(Endpoint::Raw)
        }
    });
    let mut rpc: R = Rpc::new(a);
    assert_eq!(read_exactly(&mut rpc, data.len()), data);
    let messages = writer.join().unwrap();
    assert_eq!(
        messages,
        5000usize.div_ceil(496),
        "one message per full buffer"
    );
}

#[test]
fn fmt_write_and_poll_flush() {
    let (a, mut peer) = pair();
    let mut rpc: R = Rpc::new(a);
    {
        let mut s = rpc.serial();
        // (Both Write traits are in scope here, so name the fmt one.)
        core::fmt::Write::write_fmt(&mut s, format_args!("value={}\n", 42)).unwrap();
        core::fmt::Write::write_fmt(&mut s, format_args!("x={:.2}", 1.23456)).unwrap();
        assert_eq!(s.pending_tx(), 15);
    }
    // Not sent yet: buffered until flush or poll.
    assert!(peer.recv_wait(Duration::from_millis(10)).is_none());
    rpc.poll().unwrap();
    let (ep, data) = peer.recv_wait(Duration::from_secs(1)).unwrap();
    assert_eq!(ep, Endpoint::Raw);
    assert_eq!(data, b"value=42\nx=1.23");
}

#[test]
fn backpressure_instead_of_loss() {
    // Only 4 buffers may be queued toward the reader, which does not read for a while: the
    // writer must see timeouts (not silent loss), and every byte must arrive in order.
    let (a, b) = pair_with(4, 496);
    let total = 20_000;
    let data = pattern(total);
    let writer = thread::spawn({
        let data = data.clone();
        move || {
            let mut rpc: R = Rpc::new(b);
            let mut s = rpc.serial();
            s.set_timeout(Duration::from_millis(20));
            let mut timeouts = 0;
            let mut off = 0;
            while off < data.len() {
                match s.write(&data[off..]) {
                    Ok(n) => off += n,
                    Err(SerialError::Timeout) => timeouts += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
            loop {
                match s.flush() {
                    Ok(()) => break,
                    Err(SerialError::Timeout) => timeouts += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
            timeouts
        }
    });
    let mut rpc: R = Rpc::new(a);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(read_exactly(&mut rpc, total), data);
    let timeouts = writer.join().unwrap();
    assert!(timeouts > 0, "the writer must have been held back");
    assert_eq!(rpc.stats().serial_dropped, 0);
}

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

#[test]
fn drop_policy_never_holds_up_rpc() {
    let (a, mut peer) = pair();
    let add = |a: i32, b: i32| a + b;
    let mut rpc: R = Rpc::new(a);
    rpc.bind("add", &add).unwrap();
    rpc.serial().set_overflow(SerialOverflow::Drop);
    for _ in 0..4 {
        peer.try_send(Endpoint::Raw, &[7; 496]).unwrap();
    }
    peer.try_send(
        Endpoint::Rpc,
        &[0x94, 0x00, 0x01, 0xA3, b'a', b'd', b'd', 0x92, 2, 2],
    )
    .unwrap();
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
    for _ in 0..4 {
        peer.try_send(Endpoint::Raw, &[7; 496]).unwrap();
    }
    peer.try_send(
        Endpoint::Rpc,
        &[0x94, 0x00, 0x01, 0xA3, b'a', b'd', b'd', 0x92, 2, 2],
    )
    .unwrap();
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

#[test]
fn tty_mode_both_sides() {
    let (a, b) = pair();
    let stop = flag();
    let writer = thread::spawn({
        let stop = stop.clone();
        move || {
            let mut rpc: R = Rpc::new(b);
            let mut s = rpc.serial();
            s.set_tty(true);
            s.write_all(b"hello over tty\n").unwrap();
            s.write_all(&pattern(1500)).unwrap();
            s.flush().unwrap();
            while !stop.load(Ordering::SeqCst) {
                let _ = rpc.poll();
                thread::sleep(Duration::from_millis(2));
            }
            (
                rpc.transport().sent(Endpoint::Rpc),
                rpc.transport().sent(Endpoint::Raw),
            )
        }
    });
    let mut rpc: R = Rpc::new(a);
    rpc.serial().set_tty(true);
    let got = read_exactly(&mut rpc, 15 + 1500);
    assert_eq!(&got[..15], b"hello over tty\n");
    assert_eq!(&got[15..], &pattern(1500)[..]);
    stop.store(true, Ordering::SeqCst);
    let (rpc_msgs, raw_msgs) = writer.join().unwrap();
    assert_eq!(raw_msgs, 0);
    assert_eq!(rpc_msgs, 1515usize.div_ceil(486));
    let _ = rpc.transport().platform().now();
}

#[test]
fn read_times_out_without_data() {
    let (a, _peer) = pair();
    let mut rpc: R = Rpc::new(a);
    let mut s = rpc.serial();
    s.set_timeout(Duration::from_millis(30));
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf), Err(SerialError::Timeout));
    assert_eq!(
        embedded_io::Error::kind(&SerialError::Timeout),
        embedded_io::ErrorKind::TimedOut
    );
}
