//! Golden layout tests: every number below is written literally from the spec
//! (`arduino-rpc-wire.md` §1 and §7), not taken from the crate's constants.
//! Offsets are from 0x3800_0000 (offset 0 of the region).

mod common;

use common::*;
use duet_rpmsg::{Arduino, Config, Endpoint, Host, Transport};
use std::cell::Cell;
use std::rc::Rc;

const VRING1: usize = 0x400; // 0x3800_0400, M7 -> M4
const VRING0: usize = 0x1400; // 0x3800_1400, M4 -> M7
const AVAIL: usize = 0x400;
const USED: usize = 0x4A0;

#[test]
fn resource_table_after_host_new() {
    let mem = Mem::new(0x10000);
    let clock = Rc::new(Cell::new(0));
    let _host = Host::new(Plat::new(&mem, &clock), Config::arduino()).unwrap();
    let expect: &[(usize, u32)] = &[
        (0, 1),
        (4, 1),
        (8, 0),
        (12, 0),
        (16, 24),
        (20, 0),
        (24, 3),
        (28, 7),
        (32, 0),
        (36, 1),
        (40, 1),
        (44, 0),
        (52, 0x3800_1400),
        (56, 32),
        (60, 64),
        (64, 0),
        (68, 0),
        (72, 0x3800_0400),
        (76, 32),
        (80, 64),
        (84, 1),
        (88, 0),
    ];
    for &(off, v) in expect {
        assert_eq!(mem.u32(off), v, "table offset {off}");
    }
    assert_eq!(mem.u8(48), 0x04, "status DRIVER_OK");
    assert_eq!(mem.u8(49), 2, "num_of_vrings");
    assert_eq!(mem.u32(0x48), 0x3800_0400, "the word the M4 spins on");
    assert!(
        mem.bytes(92, 1024 - 92).iter().all(|&b| b == 0),
        "rest of 1 KiB zeroed"
    );
}

#[test]
fn rings_after_host_new() {
    let mem = Mem::new(0x10000);
    let clock = Rc::new(Cell::new(0));
    let host = Host::new(Plat::new(&mem, &clock), Config::arduino()).unwrap();
    for i in 0..64usize {
        let d = VRING0 + 16 * i;
        assert_eq!(mem.u64(d), 0x2000 + 512 * i as u64, "rx desc {i} addr");
        assert_eq!(mem.u32(d + 8), 512);
        assert_eq!(mem.u16(d + 12), 2, "VRING_DESC_F_WRITE");
        let next = if i < 63 { i as u16 + 1 } else { 0x8000 };
        assert_eq!(mem.u16(d + 14), next, "rx desc {i} next");
        assert_eq!(mem.u16(VRING0 + AVAIL + 4 + 2 * i), i as u16, "avail ring");
        // vring1: zeroed except the chain.
        let d1 = VRING1 + 16 * i;
        assert_eq!(mem.u64(d1), 0);
        assert_eq!(mem.u32(d1 + 8), 0);
        assert_eq!(mem.u16(d1 + 12), 0);
        assert_eq!(mem.u16(d1 + 14), next, "tx desc {i} next");
    }
    assert_eq!(mem.u16(VRING0 + AVAIL), 0, "vring0 avail.flags");
    assert_eq!(mem.u16(VRING0 + AVAIL + 2), 64, "vring0 avail.idx");
    assert_eq!(
        mem.u16(VRING1 + AVAIL),
        1,
        "vring1 avail.flags = NO_INTERRUPT"
    );
    assert_eq!(mem.u16(VRING1 + AVAIL + 2), 0);
    for ring in [VRING0, VRING1] {
        assert_eq!(mem.u16(ring + USED), 0, "used.flags");
        assert_eq!(mem.u16(ring + USED + 2), 0, "used.idx");
        // The whole 1702-byte ring beyond the descriptors and avail ring is zero.
        assert!(mem.bytes(ring + USED, 1702 - USED).iter().all(|&b| b == 0));
    }
    assert_eq!(host.rx_buffers_posted(), 64);
}

#[test]
fn announcements_and_first_messages() {
    let mem = Mem::new(0x10000);
    let clock = Rc::new(Cell::new(0));
    let mut host = Host::new(Plat::new(&mem, &clock), Config::arduino()).unwrap();
    let mut remote = duet_rpmsg::Remote::new(Plat::new(&mem, &clock), Config::arduino());
    remote.poll().unwrap();
    // Remote set used.flags = NO_NOTIFY on vring0 and published two NS messages in buffers 0, 1.
    assert_eq!(mem.u16(VRING0 + USED), 1);
    assert_eq!(mem.u16(VRING0 + USED + 2), 2, "vring0 used.idx");
    for (i, (name, addr)) in [(&b"raw"[..], 0x400u32), (&b"rpc"[..], 0x401)]
        .iter()
        .enumerate()
    {
        let e = VRING0 + USED + 4 + 8 * i;
        assert_eq!(mem.u32(e), i as u32, "used id");
        assert_eq!(
            mem.u32(e + 4),
            512,
            "used.len = desc.len, not the payload length"
        );
        let buf = 0x2400 + 512 * i;
        assert_eq!(mem.u32(buf), *addr, "src");
        assert_eq!(mem.u32(buf + 4), 0x35, "dst");
        assert_eq!(mem.u32(buf + 8), 0, "reserved");
        assert_eq!(mem.u16(buf + 12), 40, "len");
        assert_eq!(mem.u16(buf + 14), 0, "flags");
        let mut rec = [0u8; 40];
        rec[..3].copy_from_slice(name);
        rec[32..36].copy_from_slice(&addr.to_le_bytes());
        assert_eq!(mem.bytes(buf + 16, 40), rec, "NS record");
    }
    host.poll().unwrap();
    assert_eq!(host.local_address(Endpoint::Raw), Some(0x400));
    assert_eq!(host.local_address(Endpoint::Rpc), Some(0x401));
    // Host sent one 0x00 byte per endpoint, in vring1 desc 0 and 1, buffers from 0x3800_A400.
    assert_eq!(mem.u16(VRING1 + AVAIL + 2), 2, "vring1 avail.idx");
    for i in 0..2usize {
        let d = VRING1 + 16 * i;
        assert_eq!(
            mem.u64(d),
            0xA000 + 512 * i as u64,
            "tx addr (offset from 0x38000400)"
        );
        assert_eq!(mem.u32(d + 8), 512);
        assert_eq!(mem.u16(d + 12), 0);
        assert_eq!(mem.u16(VRING1 + AVAIL + 4 + 2 * i), i as u16);
        let buf = 0xA400 + 512 * i;
        let (src, dst) = (0x400 + i as u32, 0x400 + i as u32);
        assert_eq!(
            mem.bytes(buf, 17),
            [
                &src.to_le_bytes()[..],
                &dst.to_le_bytes(),
                &[0, 0, 0, 0, 1, 0, 0, 0, 0]
            ]
            .concat()
        );
    }
    // Host re-posted both RX buffers: avail.idx 66, ring[64 % 64] = 0, ring[1] = 1.
    assert_eq!(mem.u16(VRING0 + AVAIL + 2), 66);
    assert!(!remote.is_ready(Endpoint::Raw));
    remote.poll().unwrap();
    assert!(remote.is_ready(Endpoint::Raw) && remote.is_ready(Endpoint::Rpc));
    assert_eq!(remote.remote_address(Endpoint::Rpc), Some(0x401));
    // The throw-away bytes were dropped (nothing delivered), both buffers returned, len 512.
    assert_eq!(remote.stats().buffers_received, 0);
    assert_eq!(mem.u16(VRING1 + USED + 2), 2);
    assert_eq!(mem.u32(VRING1 + USED + 4 + 4), 512);
    assert_eq!(mem.u32(VRING1 + USED + 12 + 4), 512);
    // Only new messages rang doorbells: 2 NS from the remote, 2 bytes from the host.
    assert_eq!(remote.platform().rings.get(), 2);
    assert_eq!(host.platform().rings.get(), 2);
    let mut p = Pair { mem, host, remote };
    assert!(recv_all(&mut p.host).is_empty());
    assert_eq!(p.host.free_tx_buffers().unwrap(), 46);
}

#[test]
fn data_message_bytes() {
    let mut p = pair(Config::arduino());
    p.host.try_send(Endpoint::Rpc, b"hello").unwrap();
    // Third host buffer: desc 0 reused after reclaim? The remote returned 0 and 1 at handshake.
    let idx = p.mem.u16(VRING1 + AVAIL + 2);
    assert_eq!(idx, 3);
    let id = p.mem.u16(VRING1 + AVAIL + 4 + 2 * 2) as usize;
    let addr = p.mem.u64(VRING1 + 16 * id) as usize;
    let buf = 0x400 + addr;
    assert_eq!(p.mem.u32(buf), 0x401);
    assert_eq!(p.mem.u32(buf + 4), 0x401);
    assert_eq!(p.mem.u16(buf + 12), 5);
    assert_eq!(p.mem.bytes(buf + 16, 5), b"hello");
    let got = recv_all(&mut p.remote);
    assert_eq!(got, vec![(Endpoint::Rpc, b"hello".to_vec())]);
    p.remote.try_send(Endpoint::Raw, b"abc").unwrap();
    let e = VRING0 + USED + 4 + 8 * 2;
    assert_eq!(p.mem.u32(e + 4), 512, "used.len stays 512 for data");
    let id = p.mem.u32(e) as usize;
    let buf = 0x2400 + 512 * id;
    assert_eq!(p.mem.u32(buf), 0x400);
    assert_eq!(p.mem.u32(buf + 4), 0x400);
    assert_eq!(p.mem.u16(buf + 12), 3);
    assert_eq!(
        recv_all(&mut p.host),
        vec![(Endpoint::Raw, b"abc".to_vec())]
    );
}

/// The compile-time `Arduino` profile writes exactly the bytes of the runtime
/// `Config::arduino()`: after the handshake, after traffic both ways on both endpoints (the
/// rings wrap), after a pool exhausted, and after a host re-initialisation.
#[test]
fn arduino_profile_writes_the_same_bytes_as_the_runtime_config() {
    let mut a = pair_with(Config::arduino(), 0x1_0000);
    let mut b = pair_with(Arduino, 0x1_0000);
    assert_eq!(a.mem.snapshot(), b.mem.snapshot());
    assert_eq!(b.host.max_message_len(), 496);
    assert_eq!(b.remote.payload_per_buffer(), 496);
    let mut rng = Rng(7);
    for i in 0..300 {
        let len = rng.below(497) as usize;
        let msg: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let ep = Endpoint::ALL[i % 2];
        if i % 3 == 0 {
            assert_eq!(a.remote.try_send(ep, &msg), b.remote.try_send(ep, &msg));
        } else {
            assert_eq!(a.host.try_send(ep, &msg), b.host.try_send(ep, &msg));
        }
        if i % 5 == 4 {
            assert_eq!(recv_all(&mut a.remote), recv_all(&mut b.remote));
            assert_eq!(recv_all(&mut a.host), recv_all(&mut b.host));
        }
        assert_eq!(a.mem.snapshot(), b.mem.snapshot(), "after message {i}");
    }
    // Exhaust the host's transmit pool: the same backpressure.
    loop {
        let (ra, rb) = (
            a.host.try_send(Endpoint::Raw, b"x"),
            b.host.try_send(Endpoint::Raw, b"x"),
        );
        assert_eq!(ra, rb);
        if ra.is_err() {
            break;
        }
    }
    assert_eq!(
        a.host.try_send(Endpoint::Raw, &[0; 497]),
        b.host.try_send(Endpoint::Raw, &[0; 497])
    );
    assert_eq!(a.mem.snapshot(), b.mem.snapshot());
    a.host.reinit().unwrap();
    b.host.reinit().unwrap();
    assert_eq!(a.remote.poll(), b.remote.poll());
    handshake(&mut a);
    handshake(&mut b);
    assert_eq!(a.mem.snapshot(), b.mem.snapshot());
    assert_eq!(a.host.stats(), b.host.stats());
    assert_eq!(a.remote.stats(), b.remote.stats());
}
