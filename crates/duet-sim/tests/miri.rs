//! Small runs of the simulator's unsafe shared-memory accessor (`SimMemory`, atomics on raw
//! pointers) and of the real ring code over it, sized for Miri (`cargo xtask miri`), which
//! checks them for undefined behaviour, out-of-bounds pointer use and data races. They also
//! run in the normal `cargo test` (they take milliseconds there).
//!
//! In-process memory only: Miri cannot map files (process mode).

use std::time::Duration;

use duet_rpmsg::{Platform, SharedMemory};
use duet_sim::runner;
use duet_sim::stress::StressConfig;
use duet_sim::{SimMemory, SHM_SIZE};

/// Every accessor at the region's edges, in and out of bounds, aligned and not.
#[test]
fn accessor_edges() {
    let m = SimMemory::new();
    let end = SHM_SIZE;
    m.write(end - 3, &[1, 2, 3]).unwrap();
    let mut b = [0; 3];
    m.read(end - 3, &mut b).unwrap();
    assert_eq!(b, [1, 2, 3]);
    assert!(m.write(end - 2, &[0; 3]).is_err());
    assert!(m.read(end, &mut [0; 1]).is_err());
    assert!(m.read(usize::MAX, &mut [0; 2]).is_err());
    m.write_u32(end - 4, 0xA1B2_C3D4).unwrap();
    assert_eq!(m.read_u32(end - 4), Ok(0xA1B2_C3D4));
    assert_eq!(m.read_u16(end - 2), Ok(0xA1B2));
    assert_eq!(m.read_u16(end - 4), Ok(0xC3D4));
    m.write_u16(0, 0xBEEF).unwrap();
    assert_eq!(m.read_u32(0), Ok(0xBEEF));
    assert!(m.read_u32(end).is_err());
    assert!(m.read_u32(2).is_err(), "misaligned");
    assert!(m.write_u16(1, 0).is_err(), "misaligned");
    assert!(m.write_u32(end - 2, 0).is_err());
    // A clone is the same region.
    let c = m.clone();
    c.write(100, b"duet").unwrap();
    let mut s = [0; 4];
    m.read(100, &mut s).unwrap();
    assert_eq!(&s, b"duet");
}

/// Two threads write and read neighbouring bytes and words of the region at once (byte copies
/// next to single-copy words): no data race, every value intact.
#[test]
fn concurrent_neighbours() {
    let (a, b) = duet_sim::pair();
    let t = std::thread::spawn(move || {
        for i in 0..20u32 {
            b.memory().write_u32(64, i).unwrap();
            b.memory().write(68, &[i as u8; 12]).unwrap();
            b.notify();
        }
    });
    for i in 0..20u32 {
        a.memory().write_u16(60, i as u16).unwrap();
        let v = a.memory().read_u32(64).unwrap();
        assert!(v < 20);
        let mut bytes = [0; 12];
        a.memory().read(68, &mut bytes).unwrap();
        assert!(bytes.iter().all(|&x| x < 20));
    }
    t.join().unwrap();
    assert_eq!(a.memory().read_u32(64), Ok(19));
}

/// duet-rpmsg's host and remote on two threads over the simulated SRAM4: a few messages each
/// way, some spanning buffers; everything arrives and both pools are full again.
///
/// Under Miri this found racing atomic accesses of different sizes to one location (the
/// host's byte-wise `write` of the status word against the remote's `read_u32`), which Rust's
/// memory model does not allow; `SimMemory` now accesses the region in 8-byte words only.
#[test]
fn ring_exchange_on_two_threads() {
    let count = 6;
    let cfg = StressConfig {
        count,
        seed: 7,
        max_len: 1200,
        timeout: Duration::from_secs(600),
    };
    let [host, remote] = runner::run_threads(&cfg).unwrap();
    for s in [&host, &remote] {
        assert_eq!(s.report.sent, [count; 2], "{s}");
        assert_eq!(s.report.received, [count; 2], "{s}");
        assert!(s.pools_full(), "{s}");
        assert_eq!(s.stats.corrupt, 0, "{s}");
    }
    assert_eq!(host.report.bytes_sent, remote.report.bytes_received);
    assert_eq!(remote.report.bytes_sent, host.report.bytes_received);
}
