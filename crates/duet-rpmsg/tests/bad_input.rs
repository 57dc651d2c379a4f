//! Corrupt every field a peer writes and check the specific error, no panic, and that the
//! transport keeps working once the field holds a valid value again.

mod common;

use common::*;
use duet_rpmsg::{Arduino, Config, Corruption as C, Endpoint, Error, Profile, Transport};

const VRING1: usize = 0x400;
const VRING0: usize = 0x1400;
const AVAIL: usize = 0x400;
const USED: usize = 0x4A0;

/// Corrupts a field: (pair, entry or descriptor offset, buffer offset).
type Patch<P> = fn(&Pair<P>, usize, usize);
/// Corrupts a name-service record: (pair, record offset).
type NsPatch<P> = fn(&Pair<P>, usize);

fn corrupt(c: C) -> Error {
    Error::Corrupt(c)
}

/// After an error the pair still carries a message each way.
fn still_works<P: Profile>(p: &mut Pair<P>) {
    p.host.try_send(Endpoint::Rpc, b"ping").unwrap();
    assert_eq!(
        recv_all(&mut p.remote),
        vec![(Endpoint::Rpc, b"ping".to_vec())]
    );
    p.remote.try_send(Endpoint::Raw, b"pong").unwrap();
    assert_eq!(
        recv_all(&mut p.host),
        vec![(Endpoint::Raw, b"pong".to_vec())]
    );
}

/// The buffer offset of the latest remote -> host message.
fn last_to_host<P: Profile>(p: &Pair<P>) -> (usize, usize) {
    let idx = p.mem.u16(VRING0 + USED + 2).wrapping_sub(1) as usize % 64;
    let e = VRING0 + USED + 4 + 8 * idx;
    (e, 0x2400 + 512 * p.mem.u32(e) as usize)
}

/// The descriptor and buffer of the latest host -> remote message.
fn last_to_remote<P: Profile>(p: &Pair<P>) -> (usize, usize) {
    let idx = p.mem.u16(VRING1 + AVAIL + 2).wrapping_sub(1) as usize % 64;
    let d = VRING1 + 16 * p.mem.u16(VRING1 + AVAIL + 4 + 2 * idx) as usize;
    (d, 0x400 + p.mem.u32(d) as usize)
}

#[test]
fn host_side_fields() {
    host_side_fields_with(Config::arduino());
    host_side_fields_with(Arduino);
}

/// Run with the runtime Arduino config and with the compile-time profile: same errors.
fn host_side_fields_with<P: Profile + Copy>(profile: P) {
    let mut p = pair_with(profile, 0x1_0000);
    // (field patcher, expected error) for a message the remote just published.
    let cases: &[(Patch<P>, Error)] = &[
        (|p, e, _| p.mem.set32(e, 64), corrupt(C::DescriptorIndex)),
        // An id the remote holds but did not fill: its stale buffer names no endpoint. (A
        // used id the host does not hold cannot occur here: the host re-posts at once.)
        (|p, e, _| p.mem.set32(e, 63), corrupt(C::HeaderAddress)),
        (
            |p, e, _| p.mem.set32(e + 4, 513),
            corrupt(C::DescriptorLength),
        ),
        (
            |p, e, _| p.mem.set32(e + 4, 15),
            corrupt(C::DescriptorLength),
        ),
        (|p, _, b| p.mem.set16(b + 12, 497), corrupt(C::HeaderLength)),
        (
            |p, e, b| {
                p.mem.set32(e + 4, 20);
                p.mem.set16(b + 12, 5)
            },
            corrupt(C::HeaderLength),
        ),
        (
            |p, _, b| p.mem.set32(b + 4, 0x402),
            corrupt(C::HeaderAddress),
        ),
        (|p, _, b| p.mem.set32(b, 0x999), corrupt(C::HeaderAddress)),
    ];
    for (i, (patch, err)) in cases.iter().enumerate() {
        p.remote.try_send(Endpoint::Raw, b"data").unwrap();
        let (e, b) = last_to_host(&p);
        patch(&p, e, b);
        let mut buf = [0; 512];
        assert_eq!(p.host.try_recv(&mut buf), Err(*err), "case {i}");
        assert!(recv_all(&mut p.host).is_empty(), "case {i}: entry skipped");
        if i == 1 {
            // The host re-posted desc 63, which the remote still held: the remote sees the
            // same descriptor handed to it twice and drops the duplicate.
            assert_eq!(p.remote.free_tx_buffers(), Err(corrupt(C::DescriptorState)));
        }
        still_works(&mut p);
    }
    assert_eq!(p.host.stats().corrupt, cases.len() as u32);
    // No buffer leaked: the skipped entries were re-posted (except the never-handed-out ids,
    // which never named a real buffer). Desc 63 wrongly named is not double-posted.
    assert_eq!(p.host.rx_buffers_posted(), 64);

    // used.idx jumping by more than the ring size.
    let good = p.mem.u16(VRING0 + USED + 2);
    p.mem.set16(VRING0 + USED + 2, good.wrapping_add(65));
    assert_eq!(p.host.poll(), Err(corrupt(C::RingIndex)));
    p.mem.set16(VRING0 + USED + 2, good);
    still_works(&mut p);

    // vring1 used (buffer returns): bad id, id returned twice, bad len, index jump.
    let free = p.host.free_tx_buffers().unwrap();
    p.host.try_send(Endpoint::Rpc, b"1").unwrap();
    p.host.try_send(Endpoint::Rpc, b"2").unwrap();
    p.host.try_send(Endpoint::Rpc, b"3").unwrap();
    p.host.try_send(Endpoint::Rpc, b"4").unwrap();
    assert_eq!(recv_all(&mut p.remote).len(), 4);
    let idx = p.mem.u16(VRING1 + USED + 2);
    let entry = |k: u16| VRING1 + USED + 4 + 8 * (idx.wrapping_sub(k) as usize % 64);
    let first = p.mem.u32(entry(4));
    p.mem.set32(entry(3), first); // returned twice
    p.mem.set32(entry(2), 99); // never handed out
    p.mem.set32(entry(1) + 4, 513); // bad length (buffer still reclaimed)
    assert_eq!(p.host.free_tx_buffers(), Err(corrupt(C::DescriptorState)));
    assert_eq!(p.host.free_tx_buffers(), Err(corrupt(C::DescriptorIndex)));
    assert_eq!(p.host.free_tx_buffers(), Err(corrupt(C::DescriptorLength)));
    // Two buffers named by the corrupt entries are lost until re-init; the rest came back.
    assert_eq!(p.host.free_tx_buffers().unwrap(), free - 2);
    p.mem.set16(VRING1 + USED + 2, idx.wrapping_add(100));
    assert_eq!(p.host.free_tx_buffers(), Err(corrupt(C::RingIndex)));
    p.mem.set16(VRING1 + USED + 2, idx);
    still_works(&mut p);
}

#[test]
fn host_name_service_records() {
    host_name_service_records_with(Config::arduino());
    host_name_service_records_with(Arduino);
}

/// Run with the runtime Arduino config and with the compile-time profile: same errors.
fn host_name_service_records_with<P: Profile + Copy>(profile: P) {
    let mut p = pair_with(profile, 0x1_0000);
    let cases: &[(NsPatch<P>, Option<Error>)] = &[
        (|p, r| p.mem.set16(r - 4, 39), Some(corrupt(C::NameService))),
        // 32 bytes without a NUL: not "raw" or "rpc", so an unknown service, ignored.
        (|p, r| (0..32).for_each(|i| p.mem.set8(r + i, b'a')), None),
        (
            |p, r| p.mem.set32(r + 32, 0x10),
            Some(corrupt(C::NameService)),
        ),
        (
            |p, r| p.mem.set32(r + 32, 0xFFFF_FFFF),
            Some(corrupt(C::NameService)),
        ),
        (|p, r| p.mem.set32(r + 36, 2), Some(corrupt(C::NameService))),
        (|p, r| p.mem.set8(r, b'x'), None), // unknown name "xaw": ignored
    ];
    for (i, (patch, err)) in cases.iter().enumerate() {
        // Forge an NS announcement from the remote by re-labelling a data message.
        let mut rec = [0u8; 40];
        rec[..3].copy_from_slice(b"raw");
        rec[32..36].copy_from_slice(&0x400u32.to_le_bytes());
        p.remote.try_send(Endpoint::Raw, &rec).unwrap();
        let (_, b) = last_to_host(&p);
        p.mem.set32(b + 4, 0x35);
        patch(&p, b + 16);
        let r = p.host.poll();
        assert_eq!(r.err(), *err, "case {i}");
        still_works(&mut p);
    }
    assert_eq!(p.host.stats().ns_ignored, 2);
    // A destroy unbinds; a new create binds again and repeats the first-byte handshake.
    let mut rec = [0u8; 40];
    rec[..3].copy_from_slice(b"rpc");
    rec[32..36].copy_from_slice(&0x401u32.to_le_bytes());
    rec[36] = 1;
    p.remote.try_send(Endpoint::Raw, &rec).unwrap();
    let (_, b) = last_to_host(&p);
    p.mem.set32(b + 4, 0x35);
    p.host.poll().unwrap();
    assert!(!p.host.is_ready(Endpoint::Rpc));
    assert_eq!(p.host.try_send(Endpoint::Rpc, b"x"), Err(Error::NotReady));
    assert!(p.host.is_ready(Endpoint::Raw));
}

#[test]
fn remote_side_fields() {
    remote_side_fields_with(Config::arduino());
    remote_side_fields_with(Arduino);
}

/// Run with the runtime Arduino config and with the compile-time profile: same errors.
fn remote_side_fields_with<P: Profile + Copy>(profile: P) {
    let mut p = pair_with(profile, 0x1_0000);
    let cases: &[(Patch<P>, Error)] = &[
        (
            |p, d, _| p.mem.set32(d, 0x2001),
            corrupt(C::DescriptorAddress),
        ),
        (
            |p, d, _| p.mem.set32(d, 0x1F00),
            corrupt(C::DescriptorAddress),
        ),
        (
            |p, d, _| p.mem.set32(d, 0xFE00),
            corrupt(C::DescriptorAddress),
        ),
        (
            |p, d, _| p.mem.set32(d + 4, 1),
            corrupt(C::DescriptorAddress),
        ),
        (
            |p, d, _| p.mem.set32(d + 8, 513),
            corrupt(C::DescriptorLength),
        ),
        (
            |p, d, _| p.mem.set16(d + 12, 2),
            corrupt(C::DescriptorFlags),
        ),
        (
            |p, d, _| p.mem.set16(d + 12, 1),
            corrupt(C::DescriptorFlags),
        ),
        (|p, _, b| p.mem.set16(b + 12, 497), corrupt(C::HeaderLength)),
        (
            |p, d, b| {
                p.mem.set32(d + 8, 18);
                p.mem.set16(b + 12, 3)
            },
            corrupt(C::HeaderLength),
        ),
        (
            |p, _, b| p.mem.set32(b + 4, 0x402),
            corrupt(C::HeaderAddress),
        ),
        (|p, _, b| p.mem.set32(b, 0x777), corrupt(C::HeaderAddress)),
    ];
    for (i, (patch, err)) in cases.iter().enumerate() {
        p.host.try_send(Endpoint::Rpc, b"data").unwrap();
        let (d, b) = last_to_remote(&p);
        patch(&p, d, b);
        let mut buf = [0; 512];
        assert_eq!(p.remote.try_recv(&mut buf), Err(*err), "case {i}");
        assert!(recv_all(&mut p.remote).is_empty());
        still_works(&mut p);
    }
    // Bad descriptor index in vring1 avail: skipped.
    p.host.try_send(Endpoint::Rpc, b"data").unwrap();
    let idx = p.mem.u16(VRING1 + AVAIL + 2).wrapping_sub(1) as usize % 64;
    let slot = VRING1 + AVAIL + 4 + 2 * idx;
    let head = p.mem.u16(slot);
    p.mem.set16(slot, 64);
    assert_eq!(p.remote.poll(), Err(corrupt(C::DescriptorIndex)));
    // (That buffer is lost to the host until re-init: the remote never saw a valid id.)
    p.mem.set16(slot, head);
    still_works(&mut p);
    // avail.idx jump.
    let good = p.mem.u16(VRING1 + AVAIL + 2);
    p.mem.set16(VRING1 + AVAIL + 2, good.wrapping_add(65));
    assert_eq!(p.remote.poll(), Err(corrupt(C::RingIndex)));
    p.mem.set16(VRING1 + AVAIL + 2, good);
    still_works(&mut p);
}

#[test]
fn remote_tx_buffers_from_host() {
    remote_tx_buffers_from_host_with(Config::arduino());
    remote_tx_buffers_from_host_with(Arduino);
}

/// Run with the runtime Arduino config and with the compile-time profile: same errors.
fn remote_tx_buffers_from_host_with<P: Profile + Copy>(profile: P) {
    let mut p = pair_with(profile, 0x1_0000);
    // Each case: the remote sends one message, the host receives it and re-posts the buffer;
    // the test poisons that re-posted descriptor before the remote looks at it.
    let cases: [(usize, u32, Error); 4] = [
        (0, 0x2000 + 3, corrupt(C::DescriptorAddress)),
        (0, 0x10000, corrupt(C::DescriptorAddress)),
        (8, 100, corrupt(C::DescriptorLength)),
        (12, 0, corrupt(C::DescriptorFlags)),
    ];
    for (field, value, err) in cases {
        p.remote.try_send(Endpoint::Raw, b"a").unwrap();
        recv_all(&mut p.host);
        let idx = p.mem.u16(VRING0 + AVAIL + 2).wrapping_sub(1) as usize % 64;
        let d = VRING0 + 16 * p.mem.u16(VRING0 + AVAIL + 4 + 2 * idx) as usize;
        if field == 12 {
            p.mem.set16(d + field, value as u16);
        } else {
            p.mem.set32(d + field, value);
        }
        assert_eq!(p.remote.try_send(Endpoint::Raw, b"x"), Err(err));
        // The poisoned buffer was dropped; the others still work.
        p.remote.try_send(Endpoint::Raw, b"y").unwrap();
        assert_eq!(recv_all(&mut p.host), vec![(Endpoint::Raw, b"y".to_vec())]);
    }
    assert_eq!(p.remote.free_tx_buffers().unwrap(), 64 - 4);
    // Duplicate: host posts a descriptor the remote already holds.
    let free = p.remote.free_tx_buffers().unwrap();
    let idx = p.mem.u16(VRING0 + AVAIL + 2);
    let held = p
        .mem
        .u16(VRING0 + AVAIL + 4 + 2 * (idx.wrapping_sub(1) as usize % 64));
    p.mem
        .set16(VRING0 + AVAIL + 4 + 2 * (idx as usize % 64), held);
    p.mem.set16(VRING0 + AVAIL + 2, idx.wrapping_add(1));
    assert_eq!(p.remote.free_tx_buffers(), Err(corrupt(C::DescriptorState)));
    assert_eq!(p.remote.free_tx_buffers().unwrap(), free);
    // avail.idx jump.
    p.mem.set16(VRING0 + AVAIL + 2, idx.wrapping_add(200));
    assert_eq!(
        p.remote.try_send(Endpoint::Raw, b"x"),
        Err(corrupt(C::RingIndex))
    );
    p.mem.set16(VRING0 + AVAIL + 2, idx.wrapping_add(1));
    still_works(&mut p);
}

#[test]
fn resource_table_status_and_da() {
    resource_table_status_and_da_with(Config::arduino());
    resource_table_status_and_da_with(Arduino);
}

/// Run with the runtime Arduino config and with the compile-time profile: same errors.
fn resource_table_status_and_da_with<P: Profile + Copy>(profile: P) {
    let mut p = pair_with(profile, 0x1_0000);
    // Status drop: PeerReset, then not ready until the host re-initialises.
    p.mem.set8(48, 0);
    assert_eq!(p.remote.poll(), Err(Error::PeerReset));
    assert!(!p.remote.is_ready(Endpoint::Rpc));
    p.remote.poll().unwrap();
    assert!(!p.remote.is_running());
    p.host.reinit().unwrap();
    handshake(&mut p);
    still_works(&mut p);
    // vring1.da changed: PeerReset too.
    p.mem.set32(0x48, 0x3800_0800);
    assert_eq!(p.remote.poll(), Err(Error::PeerReset));
    p.host.reinit().unwrap();
    handshake(&mut p);
    still_works(&mut p);
    assert_eq!(p.remote.stats().peer_resets, 2);
    // A table with DRIVER_OK but a different vring0: refused, remote stays down.
    p.host.reinit().unwrap();
    let mut fresh = duet_rpmsg::Remote::new(p.remote.platform().clone(), profile);
    p.mem.set32(52, 0x3800_2000);
    assert_eq!(fresh.poll(), Err(corrupt(C::ResourceTable)));
    assert!(!fresh.is_running());
}

#[test]
fn invalid_configs() {
    let base = Config::arduino();
    for bad in [
        Config {
            num_descriptors: 48,
            ..base
        },
        Config {
            num_descriptors: 128,
            ..base
        },
        Config {
            buffer_size: 500,
            ..base
        },
        Config {
            buffer_size: 32,
            ..base
        },
        Config {
            vring_align: 3,
            ..base
        },
        Config {
            host_tx_buffers: 65,
            ..base
        },
        Config {
            vring0_addr: 0x3800_FF00,
            ..base
        },
        Config {
            host_tx_pool_addr: 0x3800_A404,
            ..base
        },
        Config {
            max_message_len: 496 * 47,
            ..base
        },
        Config {
            shm_base: 0x3900_0000,
            ..base
        },
    ] {
        assert_eq!(bad.validate(), Err(Error::InvalidConfig), "{bad:?}");
        let mem = Mem::new(0x10000);
        let clock = std::rc::Rc::new(std::cell::Cell::new(0));
        assert!(duet_rpmsg::Host::new(Plat::new(&mem, &clock), bad).is_err());
        let mut r = duet_rpmsg::Remote::new(Plat::new(&mem, &clock), bad);
        assert_eq!(r.poll(), Err(Error::InvalidConfig));
    }
    // A region smaller than the config says: memory errors, never a panic.
    let mem = Mem::new(0x1000);
    let clock = std::rc::Rc::new(std::cell::Cell::new(0));
    assert!(matches!(
        duet_rpmsg::Host::new(Plat::new(&mem, &clock), base),
        Err(Error::Memory(_))
    ));
}

#[test]
fn random_garbage_never_panics() {
    // Scribble random bytes over random peer-written fields; every call returns.
    let mut rng = Rng(99);
    for round in 0..300 {
        let mut p = pair(Config {
            max_message_len: 1500,
            ..Config::arduino()
        });
        for _ in 0..(round % 7) {
            let _ = p.host.try_send(Endpoint::Rpc, &[1; 700]);
            let _ = p.remote.try_send(Endpoint::Raw, &[2; 300]);
        }
        for _ in 0..20 {
            let off = match rng.below(3) {
                0 => VRING0 + rng.below(1702) as usize,
                1 => VRING1 + rng.below(1702) as usize,
                _ => 0x2400 + rng.below(0xDC00) as usize,
            };
            p.mem.set8(off, rng.next() as u8);
        }
        let mut buf = [0; 512];
        for _ in 0..30 {
            let _ = p.host.try_recv(&mut buf);
            let _ = p.remote.try_recv(&mut buf);
            let _ = p.host.try_send(Endpoint::Raw, &[3; 900]);
            let _ = p.remote.try_send(Endpoint::Rpc, &[4; 1000]);
            let _ = p.host.poll();
            let _ = p.remote.poll();
        }
    }
}
