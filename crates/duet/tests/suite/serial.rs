//! The byte stream between two threads: whole-buffer sends, `fmt::Write`, backpressure without
//! loss, tty mode, read timeout.

use std::thread;
use std::time::Duration;

use duet::{Endpoint, Rpc, SerialError};
use embedded_io::{Read, Write};

use super::{pattern, recv_wait, serve, spawn_peer, Harness, Link, Opts, ARDUINO};

/// The engine shape of the serial bodies (8 handlers, 1024-byte serial ring).
pub type R<'a, T> = Rpc<'a, T, 8, 4, 2048, 512, 1024>;

/// Reads until `n` bytes have arrived (10 s per read).
pub fn read_exactly<T: Link>(rpc: &mut R<'_, T>, n: usize) -> Vec<u8> {
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

/// 5000 bytes written 7 at a time (as `print()` would) leave in ceil(5000/496) buffers.
pub fn write_sends_whole_buffers_and_read_gets_every_byte<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let data = pattern(5000);
    let writer = thread::spawn({
        let data = data.clone();
        move || {
            let mut rpc: R<H::B> = Rpc::new(b);
            let before = rpc.transport().buffers_sent();
            let mut s = rpc.serial();
            for chunk in data.chunks(7) {
                s.write_all(chunk).unwrap();
            }
            s.flush().unwrap();
            rpc.transport().buffers_sent() - before
        }
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    assert_eq!(read_exactly(&mut rpc, data.len()), data);
    let messages = writer.join().unwrap();
    assert_eq!(
        messages,
        5000usize.div_ceil(496),
        "one message per full buffer"
    );
}

/// `fmt::Write` output is buffered until a poll sends it, as one message on `"raw"`.
pub fn fmt_write_and_poll_flush<H: Harness>() {
    let (a, mut peer) = H::pair(ARDUINO);
    let mut rpc: R<H::A> = Rpc::new(a);
    {
        let mut s = rpc.serial();
        // (Both Write traits are in scope here, so name the fmt one.)
        core::fmt::Write::write_fmt(&mut s, format_args!("value={}\n", 42)).unwrap();
        core::fmt::Write::write_fmt(&mut s, format_args!("x={:.2}", 1.23456)).unwrap();
        assert_eq!(s.pending_tx(), 15);
    }
    assert!(recv_wait(&mut peer, Duration::from_millis(10)).is_none());
    rpc.poll().unwrap();
    let (ep, data) = recv_wait(&mut peer, Duration::from_secs(5)).unwrap();
    assert_eq!(ep, Endpoint::Raw);
    assert_eq!(data, b"value=42\nx=1.23");
}

/// A reader that does not read for a while: the writer sees timeouts (never silent loss) and
/// every byte arrives in order. The data is larger than every queue (and than the simulator's
/// 64 receive buffers plus the serial ring).
pub fn backpressure_instead_of_loss<H: Harness>() {
    let (a, b) = H::pair(Opts {
        queue: 4,
        ..ARDUINO
    });
    let total = 48_000;
    let data = pattern(total);
    let writer = thread::spawn({
        let data = data.clone();
        move || {
            let mut rpc: R<H::B> = Rpc::new(b);
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
    let mut rpc: R<H::A> = Rpc::new(a);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(read_exactly(&mut rpc, total), data);
    let timeouts = writer.join().unwrap();
    assert!(timeouts > 0, "the writer must have been held back");
    assert_eq!(rpc.stats().serial_dropped, 0);
}

/// SerialRPC `"tty"` notifications on both sides: 10 bytes of overhead per buffer.
pub fn tty_mode_both_sides<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let writer = spawn_peer(b, |b, stop| {
        let mut rpc: R<H::B> = Rpc::new(b);
        let before = rpc.transport().buffers_sent();
        let mut s = rpc.serial();
        s.set_tty(true);
        s.write_all(b"hello over tty\n").unwrap();
        s.write_all(&pattern(1500)).unwrap();
        s.flush().unwrap();
        let sent = rpc.transport().buffers_sent() - before;
        let raw = rpc.transport().buffers_sent_on(Endpoint::Raw);
        serve(&mut rpc, stop);
        (sent, raw)
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    rpc.serial().set_tty(true);
    let got = read_exactly(&mut rpc, 15 + 1500);
    assert_eq!(&got[..15], b"hello over tty\n");
    assert_eq!(&got[15..], &pattern(1500)[..]);
    let (sent, raw) = writer.finish();
    assert_eq!(sent, 1515usize.div_ceil(486));
    assert!(
        matches!(raw, None | Some(0)),
        "tty mode sends nothing on \"raw\": {raw:?}"
    );
}

pub fn read_times_out_without_data<H: Harness>() {
    let (a, _peer) = H::pair(ARDUINO);
    let mut rpc: R<H::A> = Rpc::new(a);
    let mut s = rpc.serial();
    s.set_timeout(Duration::from_millis(30));
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf), Err(SerialError::Timeout));
    assert_eq!(
        embedded_io::Error::kind(&SerialError::Timeout),
        embedded_io::ErrorKind::TimedOut
    );
}
