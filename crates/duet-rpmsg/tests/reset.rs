//! Host-side resets: the two-step `begin_reset` → remote poll → `reinit` sequence, and a quick
//! `reinit` the remote did not poll through.

mod common;

use common::{handshake, pair, recv_all, Pair};
use duet_rpmsg::{layout as l, Config, Endpoint, Error, Transport};

/// Offset of the vdev status byte (resource table at region offset 0).
const STATUS: usize = l::VDEV_STATUS;

/// Sends a few messages both ways and checks they arrive intact, in order.
fn traffic(p: &mut Pair, tag: u8) {
    let a = [tag, 1, 2, 3];
    let b = [tag; 200];
    p.host.try_send(Endpoint::Rpc, &a).unwrap();
    p.host.try_send(Endpoint::Raw, &b).unwrap();
    p.remote.try_send(Endpoint::Raw, &a[..2]).unwrap();
    p.remote.try_send(Endpoint::Rpc, &b[..7]).unwrap();
    assert_eq!(
        recv_all(&mut p.remote),
        vec![(Endpoint::Rpc, a.to_vec()), (Endpoint::Raw, b.to_vec())]
    );
    assert_eq!(
        recv_all(&mut p.host),
        vec![
            (Endpoint::Raw, a[..2].to_vec()),
            (Endpoint::Rpc, b[..7].to_vec())
        ]
    );
}

/// Every buffer is back where it belongs.
fn pools_full(p: &mut Pair) {
    p.remote.poll().unwrap();
    p.host.poll().unwrap();
    assert_eq!(
        p.host.free_tx_buffers().unwrap(),
        l::HOST_TX_BUFFERS as usize
    );
    assert_eq!(p.host.rx_buffers_posted(), l::NUM_DESCRIPTORS as usize);
    assert_eq!(
        p.remote.free_tx_buffers().unwrap(),
        l::NUM_DESCRIPTORS as usize
    );
}

#[test]
fn two_step_reset() {
    let mut p = pair(Config::arduino());
    traffic(&mut p, 1);
    // Left in flight across the reset: one message each way.
    p.remote.try_send(Endpoint::Rpc, b"stale-up").unwrap();
    p.host.try_send(Endpoint::Rpc, b"stale-down").unwrap();

    let before = p.mem.snapshot();
    p.host.begin_reset().unwrap();
    let after = p.mem.snapshot();
    // Only the status byte changed.
    assert_eq!(after[STATUS], 0);
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert_eq!(changed, vec![STATUS]);
    // The host is parked: nothing sent, nothing received, no ring touched.
    assert!(!p.host.is_ready(Endpoint::Rpc) && !p.host.is_ready(Endpoint::Raw));
    assert_eq!(p.host.try_send(Endpoint::Rpc, b"x"), Err(Error::NotReady));
    assert_eq!(p.host.poll(), Ok(()));
    let mut buf = [0u8; 16];
    assert_eq!(p.host.try_recv(&mut buf), Ok(None));
    assert_eq!(p.host.remote_address(Endpoint::Rpc), None);
    assert_eq!(p.mem.snapshot(), after);

    // The remote's next poll sees the reset, once; then it waits for the table.
    assert_eq!(p.remote.poll(), Err(Error::PeerReset));
    assert!(!p.remote.is_running());
    assert_eq!(p.remote.try_send(Endpoint::Rpc, b"x"), Err(Error::NotReady));
    assert_eq!(p.remote.try_recv(&mut buf), Ok(None));
    p.remote.poll().unwrap();
    assert_eq!(p.remote.stats().peer_resets, 1);
    assert_eq!(p.mem.snapshot(), after, "a parked remote writes nothing");

    p.host.reinit().unwrap();
    assert_eq!(p.mem.u8(STATUS), l::DRIVER_OK);
    handshake(&mut p);
    assert_eq!(p.remote.stats().peer_resets, 1);
    assert_eq!(p.host.stats().peer_resets, 0);
    // The in-flight messages are gone; fresh traffic works both ways.
    traffic(&mut p, 2);
    pools_full(&mut p);
}

/// `reinit` without `begin_reset`, completed while the remote was not in a call: the remote
/// still reports `PeerReset` exactly once (vring0's `used.flags` was zeroed) and recovers.
#[test]
fn quick_reinit_between_remote_polls() {
    let mut p = pair(Config::arduino());
    for round in 1..=3u8 {
        traffic(&mut p, round);
        p.remote.try_send(Endpoint::Raw, b"stale").unwrap();
        p.host.reinit().unwrap();
        // Status and vring1's da are as before: only the zeroed flag tells.
        assert_eq!(p.mem.u8(STATUS), l::DRIVER_OK);
        assert_eq!(
            p.remote.try_send(Endpoint::Rpc, b"x"),
            Err(Error::PeerReset)
        );
        assert_eq!(p.remote.stats().peer_resets, round as u32);
        handshake(&mut p);
        assert_eq!(p.remote.stats().peer_resets, round as u32);
        traffic(&mut p, round + 10);
        pools_full(&mut p);
    }
    assert_eq!(p.host.stats().corrupt, 0);
    assert_eq!(p.remote.stats().corrupt, 0);
}

/// A reset held over many remote polls and repeated `begin_reset` calls still counts once.
#[test]
fn long_hold_counts_once() {
    let mut p = pair(Config::arduino());
    p.host.begin_reset().unwrap();
    p.host.begin_reset().unwrap();
    let mut resets = 0;
    for _ in 0..5 {
        match p.remote.poll() {
            Err(Error::PeerReset) => resets += 1,
            r => r.unwrap(),
        }
        p.host.poll().unwrap();
    }
    assert_eq!(resets, 1);
    p.host.reinit().unwrap();
    handshake(&mut p);
    traffic(&mut p, 7);
    pools_full(&mut p);
    assert_eq!(p.remote.stats().peer_resets, 1);
}
