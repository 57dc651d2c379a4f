//! Host <-> remote traffic in one thread: random sizes, both endpoints, multi-buffer messages,
//! content and order checked, pools back to full; backpressure, timeouts, zero-copy paths.

mod common;

use common::*;
use duet_rpmsg::{Config, Endpoint, Error, Instant, Platform, Transport};
use std::collections::VecDeque;

fn message(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize * 31 + i * 7) as u8)
        .collect()
}

/// Sends `n` random messages each way, polling the receivers irregularly, and checks that the
/// buffer stream reassembles into exactly the sent messages, in order, per endpoint.
fn traffic(config: Config, n: u32, seed: u64) {
    let mut p = pair(config);
    let max = config.max_message_len;
    let per = config.payload_per_buffer();
    let mut rng = Rng(seed);
    // Expected buffers per direction and endpoint.
    let mut to_remote: [VecDeque<Vec<u8>>; 2] = Default::default();
    let mut to_host: [VecDeque<Vec<u8>>; 2] = Default::default();
    let (mut sent_h, mut sent_r) = (0, 0);
    let mut buf = [0u8; 512];
    let mut guard = 0;
    while sent_h < n || sent_r < n || to_remote.iter().chain(&to_host).any(|q| !q.is_empty()) {
        guard += 1;
        assert!(guard < 100 * n as usize, "no progress");
        for from_host in [true, false] {
            let sent = if from_host { &mut sent_h } else { &mut sent_r };
            if *sent < n && rng.below(3) != 0 {
                let len = match rng.below(8) {
                    0 => 0,
                    1 => max,
                    2 => per,
                    _ => rng.below(max as u64 + 1) as usize,
                };
                let ep = Endpoint::ALL[rng.below(2) as usize];
                let msg = message(*sent, len);
                let r = if from_host {
                    p.host.try_send(ep, &msg)
                } else {
                    p.remote.try_send(ep, &msg)
                };
                match r {
                    Ok(()) => {
                        *sent += 1;
                        let q = if from_host {
                            &mut to_remote
                        } else {
                            &mut to_host
                        };
                        let chunks: Vec<Vec<u8>> = if msg.is_empty() {
                            vec![vec![]]
                        } else {
                            msg.chunks(per).map(|c| c.to_vec()).collect()
                        };
                        q[ep as usize].extend(chunks);
                    }
                    Err(Error::NoBuffer) => {}
                    Err(e) => panic!("send: {e:?}"),
                }
            }
        }
        for _ in 0..rng.below(4) {
            if let Some(r) = p.remote.try_recv(&mut buf).unwrap() {
                let want = to_remote[r.endpoint as usize]
                    .pop_front()
                    .expect("unexpected");
                assert_eq!(&buf[..r.len], &want[..]);
            }
            if let Some(r) = p.host.try_recv(&mut buf).unwrap() {
                let want = to_host[r.endpoint as usize]
                    .pop_front()
                    .expect("unexpected");
                assert_eq!(&buf[..r.len], &want[..]);
            }
        }
    }
    assert!(recv_all(&mut p.host).is_empty() && recv_all(&mut p.remote).is_empty());
    let (tx, num) = (
        config.host_tx_buffers as usize,
        config.num_descriptors as usize,
    );
    assert_eq!(p.host.free_tx_buffers().unwrap(), tx, "host pool full");
    assert_eq!(p.host.rx_buffers_posted(), num);
    assert_eq!(p.remote.free_tx_buffers().unwrap(), num, "remote pool full");
    let (h, r) = (p.host.stats(), p.remote.stats());
    assert_eq!(h.messages_sent, n + 2);
    assert_eq!(r.messages_sent, n + 2);
    assert_eq!(h.buffers_received, r.buffers_sent - 2);
    assert_eq!(r.buffers_received, h.buffers_sent - 2);
    assert_eq!(h.corrupt + r.corrupt, 0);
}

#[test]
fn thousands_single_buffer() {
    traffic(Config::arduino(), 3000, 1);
}

#[test]
fn thousands_multi_buffer() {
    let config = Config {
        max_message_len: 4000,
        ..Config::arduino()
    };
    traffic(config, 2000, 2);
}

#[test]
fn small_rings() {
    // A reduced profile: 4 descriptors, 64-byte buffers, 3-buffer messages.
    traffic(common::small(), 2000, 3);
}

#[test]
fn oversize_refused() {
    let mut p = pair(Config::arduino());
    let big = [0u8; 497];
    assert!(is_err(
        p.host.try_send(Endpoint::Rpc, &big),
        Error::MessageTooLarge { len: 497, max: 496 }
    ));
    assert!(is_err(
        p.remote.try_send(Endpoint::Raw, &big),
        Error::MessageTooLarge { len: 497, max: 496 }
    ));
    assert!(is_err(
        p.remote.send(Endpoint::Raw, &big, Instant::MAX),
        Error::MessageTooLarge { len: 497, max: 496 }
    ));
    assert!(recv_all(&mut p.remote).is_empty() && recv_all(&mut p.host).is_empty());
    p.host.try_send(Endpoint::Rpc, &big[..496]).unwrap();
    assert_eq!(recv_all(&mut p.remote)[0].1.len(), 496);
}

#[test]
fn backpressure_and_recovery() {
    let config = Config {
        max_message_len: 496 * 3,
        ..Config::arduino()
    };
    let mut p = pair(config);
    for i in 0..46u32 {
        p.host.try_send(Endpoint::Raw, &i.to_le_bytes()).unwrap();
    }
    assert!(is_err(
        p.host.try_send(Endpoint::Raw, b"x"),
        Error::NoBuffer
    ));
    let deadline = p
        .host
        .platform()
        .now()
        .saturating_add(std::time::Duration::from_millis(5));
    assert!(is_err(
        p.host.send(Endpoint::Raw, b"x", deadline),
        Error::Timeout
    ));
    assert_eq!(p.host.free_tx_buffers().unwrap(), 0);
    // Remote drains two: a 2-buffer message fits, a 3-buffer one does not (all-or-nothing).
    let mut buf = [0u8; 496];
    for _ in 0..2 {
        p.remote.try_recv(&mut buf).unwrap().unwrap();
    }
    assert!(is_err(
        p.host.try_send(Endpoint::Raw, &[7; 496 * 3]),
        Error::NoBuffer
    ));
    p.host.try_send(Endpoint::Raw, &[7; 496 * 2]).unwrap();
    let got = recv_all(&mut p.remote);
    assert_eq!(got.len(), 44 + 2);
    assert_eq!(got[0].1, 2u32.to_le_bytes());
    assert_eq!(got[44].1, vec![7; 496]);
    assert_eq!(p.host.free_tx_buffers().unwrap(), 46);
    assert!(p.host.stats().no_buffer >= 2);

    // Remote side: 64 buffers.
    for i in 0..64u32 {
        p.remote.try_send(Endpoint::Rpc, &i.to_le_bytes()).unwrap();
    }
    assert!(is_err(
        p.remote.try_send(Endpoint::Rpc, b""),
        Error::NoBuffer
    ));
    assert_eq!(recv_all(&mut p.host).len(), 64);
    p.remote
        .send(Endpoint::Rpc, b"again", Instant::MAX)
        .unwrap();
    assert_eq!(
        recv_all(&mut p.host),
        vec![(Endpoint::Rpc, b"again".to_vec())]
    );
}

#[test]
fn buffer_too_small_keeps_message() {
    let mut p = pair(Config::arduino());
    p.host.try_send(Endpoint::Rpc, &[5; 100]).unwrap();
    let mut small = [0u8; 10];
    assert!(is_err(
        p.remote.try_recv(&mut small),
        Error::BufferTooSmall { needed: 100 }
    ));
    assert_eq!(recv_all(&mut p.remote), vec![(Endpoint::Rpc, vec![5; 100])]);
}

#[test]
fn zero_copy_paths() {
    let config = Config {
        max_message_len: 1000,
        ..Config::arduino()
    };
    let mut p = pair(config);
    p.host
        .send_with(Endpoint::Rpc, 1000, |w| {
            assert_eq!(w.len(), 1000);
            w.write(0, &[1; 500]).unwrap();
            w.write(500, &[2; 500]).unwrap();
            assert!(w.write(999, &[0, 0]).is_err());
        })
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = p
        .remote
        .recv_with(|ep, payload| {
            assert_eq!(ep, Endpoint::Rpc);
            let mut v = vec![0; payload.len()];
            payload.read(0, &mut v).unwrap();
            assert!(payload.read(payload.len(), &mut [0]).is_err());
            v
        })
        .unwrap()
    {
        got.extend(chunk);
    }
    let mut want = vec![1; 500];
    want.extend([2; 500]);
    assert_eq!(got, want);
    p.remote
        .send_with(Endpoint::Raw, 3, |w| w.write(0, b"xyz").unwrap())
        .unwrap();
    let r = p.host.recv_with(|ep, pl| (ep, pl.len())).unwrap();
    assert_eq!(r, Some((Endpoint::Raw, 3)));
}

#[test]
fn not_ready_before_handshake_and_connect_timeout() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mem = Mem::new(0x10000);
    let clock = Rc::new(Cell::new(0));
    let mut remote = duet_rpmsg::Remote::new(Plat::new(&mem, &clock), Config::arduino());
    assert!(is_err(
        remote.try_send(Endpoint::Rpc, b"x"),
        Error::NotReady
    ));
    let deadline = Instant::from_micros(50_000);
    assert!(is_err(
        duet_rpmsg::connect(&mut remote, deadline),
        Error::Timeout
    ));
    assert!(clock.get() >= 50_000);
    let mut host = duet_rpmsg::Host::new(Plat::new(&mem, &clock), Config::arduino()).unwrap();
    assert!(is_err(host.try_send(Endpoint::Rpc, b"x"), Error::NotReady));
    // connect drives one side; the other is polled by hand in between.
    remote.poll().unwrap();
    duet_rpmsg::connect(&mut host, Instant::MAX).unwrap();
    duet_rpmsg::connect(&mut remote, Instant::MAX).unwrap();
}
