//! The platform layer on its own: memory accessor, doorbells, both modes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duet_rpmsg::{Instant, OutOfBounds, Platform, SharedMemory};
use duet_sim::{pair, process, CpuId, OpenError, SimMemory, SimPlatform, SHM_SIZE};

/// A fresh path in Cargo's per-test temporary directory.
fn tmp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("platform-{}-{name}.shm", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Both modes: `(M7, M4)` sharing one region and doorbells.
fn both_modes(name: &str) -> Vec<(&'static str, SimPlatform, SimPlatform)> {
    let (m7, m4) = pair();
    let path = tmp(name);
    let f7 = SimPlatform::open_file(&path, CpuId::Cm7, true).unwrap();
    let f4 = SimPlatform::open_file(&path, CpuId::Cm4, false).unwrap();
    vec![("thread", m7, m4), ("process", f7, f4)]
}

fn after(p: &SimPlatform, d: Duration) -> Instant {
    p.now().saturating_add(d)
}

#[test]
fn bounds_are_checked() {
    let m = SimMemory::new();
    assert_eq!(m.size(), SHM_SIZE);
    let mut buf = [0u8; 8];
    assert_eq!(m.read(SHM_SIZE - 8, &mut buf), Ok(()));
    assert_eq!(
        m.read(SHM_SIZE - 7, &mut buf),
        Err(OutOfBounds {
            offset: SHM_SIZE - 7,
            len: 8
        })
    );
    assert!(m.write(SHM_SIZE, &[1]).is_err());
    assert_eq!(m.write(SHM_SIZE, &[]), Ok(()));
    assert!(m.write(SHM_SIZE + 1, &[]).is_err());
    assert!(m.read(usize::MAX, &mut buf).is_err());
    assert!(m.write(usize::MAX - 2, &buf).is_err());
    assert!(m.read_u32(SHM_SIZE - 4).is_ok());
    assert!(m.read_u32(SHM_SIZE).is_err());
    assert!(m.write_u16(SHM_SIZE - 2, 7).is_ok());
    assert!(m.write_u16(SHM_SIZE, 7).is_err());
    assert!(m.read_u16(usize::MAX - 1).is_err());
    // Nothing outside was written by the refused accesses: the region is still zero except
    // the one u16 written in bounds.
    let snap = m.snapshot();
    assert_eq!(snap.len(), SHM_SIZE);
    assert!(snap[..SHM_SIZE - 2].iter().all(|&b| b == 0));
    assert_eq!(&snap[SHM_SIZE - 2..], &[7, 0]);
}

#[test]
fn file_region_stops_before_control_page() {
    let path = tmp("bounds");
    let p = SimPlatform::open_file(&path, CpuId::Cm7, true).unwrap();
    let m = p.memory();
    assert_eq!(m.size(), SHM_SIZE);
    // The control page follows the region in the file but is not reachable through it.
    assert!(m.read_u32(SHM_SIZE).is_err());
    assert!(m.write(SHM_SIZE - 2, &[0; 4]).is_err());
    assert!(m.write(SHM_SIZE - 4, &[9; 4]).is_ok());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[SHM_SIZE - 4..SHM_SIZE], &[9; 4]);
    assert_eq!(&bytes[SHM_SIZE..SHM_SIZE + 4], b"DUET");
}

#[test]
fn misaligned_single_accesses_are_refused() {
    let m = SimMemory::new();
    for off in [1, 3, 0x101] {
        assert_eq!(
            m.read_u16(off),
            Err(OutOfBounds {
                offset: off,
                len: 2
            })
        );
        assert_eq!(
            m.write_u16(off, 1),
            Err(OutOfBounds {
                offset: off,
                len: 2
            })
        );
    }
    for off in [1, 2, 3, 0x102] {
        assert_eq!(
            m.read_u32(off),
            Err(OutOfBounds {
                offset: off,
                len: 4
            })
        );
        assert_eq!(
            m.write_u32(off, 1),
            Err(OutOfBounds {
                offset: off,
                len: 4
            })
        );
    }
    assert!(m.snapshot().iter().all(|&b| b == 0));
}

#[test]
fn values_are_little_endian_and_shared() {
    for (mode, m7, m4) in both_modes("le") {
        let a = m7.memory();
        let b = m4.memory();
        a.write_u32(0x48, 0x3800_0400).unwrap();
        a.write_u16(0x32, 0xBEEF).unwrap();
        let mut raw = [0u8; 4];
        b.read(0x48, &mut raw).unwrap();
        assert_eq!(raw, [0x00, 0x04, 0x00, 0x38], "{mode}");
        assert_eq!(b.read_u32(0x48), Ok(0x3800_0400), "{mode}");
        assert_eq!(b.read_u16(0x32), Ok(0xBEEF), "{mode}");
        b.write(0x2400, b"hello").unwrap();
        let mut got = [0u8; 5];
        a.clone().read(0x2400, &mut got).unwrap();
        assert_eq!(&got, b"hello", "{mode}");
        assert_eq!(a.snapshot(), b.snapshot(), "{mode}");
    }
}

#[test]
fn address_of_maps_offsets_to_sram4() {
    assert_eq!(SimMemory::address_of(0), Some(0x3800_0000));
    assert_eq!(SimMemory::address_of(0x400), Some(0x3800_0400));
    assert_eq!(SimMemory::address_of(0xFFFF), Some(0x3800_FFFF));
    assert_eq!(SimMemory::address_of(0x1_0000), None);
}

#[test]
fn doorbells_are_sticky_and_directed() {
    for (mode, m7, m4) in both_modes("sticky") {
        // No ring yet: a wait with a passed deadline returns false at once.
        assert!(!m4.wait(Instant::from_micros(0)), "{mode}");
        assert!(!m7.wait(Instant::from_micros(0)), "{mode}");

        // A ring before the wait is not lost, and is consumed by one wait.
        m7.notify();
        assert!(
            !m7.wait(Instant::from_micros(0)),
            "{mode}: own ring must not wake M7"
        );
        assert!(m4.wait(Instant::from_micros(0)), "{mode}");
        assert!(!m4.wait(Instant::from_micros(0)), "{mode}: event consumed");

        // Several rings collapse into (at least) one event; the other direction is separate.
        m4.notify();
        m4.notify();
        assert!(m7.wait(after(&m7, Duration::from_secs(10))), "{mode}");
        assert!(!m4.wait(Instant::from_micros(0)), "{mode}");

        // A far-future deadline with a pending ring still returns at once.
        m7.notify();
        assert!(m4.wait(Instant::MAX), "{mode}");
        assert_eq!(m7.rings_sent(), 2, "{mode}");
        assert_eq!(m4.rings_sent(), 2, "{mode}");
    }
}

#[test]
fn wait_without_ring_times_out() {
    for (mode, m7, m4) in both_modes("timeout") {
        assert!(!m4.wait(after(&m4, Duration::from_millis(30))), "{mode}");
        assert!(!m7.wait(after(&m7, Duration::from_millis(30))), "{mode}");
        // The deadline really passed (checked with the platform's own clock, no duration).
        let deadline = after(&m7, Duration::from_millis(20));
        assert!(!m7.wait(deadline));
        assert!(m7.now() >= deadline, "{mode}");
    }
}

#[test]
fn ring_from_another_thread_wakes_a_waiter() {
    for (mode, m7, m4) in both_modes("wake") {
        let rung = Arc::new(AtomicBool::new(false));
        let flag = rung.clone();
        let waiter = std::thread::spawn(move || {
            let woke = m4.wait(after(&m4, Duration::from_secs(30)));
            // The only ring comes after the flag is set, so a true return saw the flag.
            (woke, flag.load(Ordering::SeqCst))
        });
        std::thread::sleep(Duration::from_millis(50));
        rung.store(true, Ordering::SeqCst);
        m7.notify();
        let (woke, saw_flag) = waiter.join().unwrap();
        assert!(woke, "{mode}");
        assert!(saw_flag, "{mode}: woke before the ring");
    }
}

#[test]
fn ping_pong_orders_memory_before_the_ring() {
    const ROUNDS: u32 = 500;
    for (mode, m7, m4) in both_modes("pingpong") {
        let remote = std::thread::spawn(move || {
            for i in 1..=ROUNDS {
                // Wait until the M7's value arrives (doorbells are hints: re-check memory).
                while m4.memory().read_u32(0x100).unwrap() != i {
                    assert!(m4.wait(after(&m4, Duration::from_secs(20))), "M4 timed out");
                }
                m4.memory().write(0x200, &i.to_le_bytes()).unwrap();
                m4.notify();
            }
        });
        for i in 1..=ROUNDS {
            m7.memory().write_u32(0x100, i).unwrap();
            m7.notify();
            loop {
                let mut b = [0; 4];
                m7.memory().read(0x200, &mut b).unwrap();
                if u32::from_le_bytes(b) == i {
                    break;
                }
                assert!(
                    m7.wait(after(&m7, Duration::from_secs(20))),
                    "{mode}: M7 timed out"
                );
            }
        }
        remote.join().unwrap();
    }
}

#[test]
fn process_file_header_and_errors() {
    let path = tmp("header");
    let p = SimPlatform::open_file(&path, CpuId::Cm4, true).unwrap();
    assert!(p.is_file_backed());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), process::FILE_SIZE);
    assert_eq!(bytes.len(), 0x11000);
    let word = |off: usize| u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
    let c = process::CONTROL_OFFSET;
    assert_eq!(&bytes[c..c + 4], b"DUET");
    assert_eq!(word(c + 4), 1);
    assert_eq!(word(c + 8), 0x1_0000);
    assert_eq!(word(c + 12), 0x3800_0000);
    assert_eq!(word(c + 0x10), 0);
    assert_eq!(word(c + 0x14), 0);
    assert_eq!(word(c + 0x18), 0, "no M7 attached");
    assert_eq!(word(c + 0x1C), std::process::id(), "M4 pid");
    assert!(bytes[..c].iter().all(|&b| b == 0));

    // The M7 side sees the M4's pid; dropping the M4 clears it.
    let m7 = SimPlatform::open_file(&path, CpuId::Cm7, false).unwrap();
    assert_eq!(m7.peer_pid(), Some(std::process::id()));
    drop(p);
    assert_eq!(m7.peer_pid(), None);
    m7.notify();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(word_at(&bytes, c + 0x10), 1, "M7 -> M4 counter");
    drop(m7);

    // Not a duet-sim file.
    let bad = tmp("bad");
    std::fs::write(&bad, vec![0u8; process::FILE_SIZE]).unwrap();
    assert!(matches!(
        SimPlatform::open_file(&bad, CpuId::Cm7, false),
        Err(OpenError::BadMagic { found: 0 })
    ));
    let mut v = vec![0u8; process::FILE_SIZE];
    v[c..c + 4].copy_from_slice(b"DUET");
    v[c + 4] = 9;
    std::fs::write(&bad, &v).unwrap();
    assert!(matches!(
        SimPlatform::open_file(&bad, CpuId::Cm7, false),
        Err(OpenError::BadVersion { found: 9 })
    ));
    std::fs::write(&bad, [0u8; 100]).unwrap();
    assert!(matches!(
        SimPlatform::open_file(&bad, CpuId::Cm7, false),
        Err(OpenError::TooSmall { len: 100 })
    ));
    // Re-creating over an existing file initialises it.
    let p = SimPlatform::open_file(&bad, CpuId::Cm7, true).unwrap();
    assert!(p.memory().snapshot().iter().all(|&b| b == 0));
    // Missing file, attach gives up after its timeout.
    let missing = tmp("missing");
    assert!(matches!(
        SimPlatform::attach_file(&missing, CpuId::Cm4, Duration::from_millis(30)),
        Err(OpenError::Io(_))
    ));
}

fn word_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap())
}

#[test]
fn attach_waits_for_the_creator() {
    let path = tmp("attach");
    let p2 = path.clone();
    let attacher = std::thread::spawn(move || {
        SimPlatform::attach_file(&p2, CpuId::Cm4, Duration::from_secs(30))
    });
    std::thread::sleep(Duration::from_millis(50));
    let m7 = SimPlatform::open_file(&path, CpuId::Cm7, true).unwrap();
    let m4 = attacher.join().unwrap().unwrap();
    m7.memory().write_u32(0x10, 0xA5A5_0001).unwrap();
    assert_eq!(m4.memory().read_u32(0x10), Ok(0xA5A5_0001));
}

/// The documented limit and its remedy: an attacher takes a leftover file at once, with the
/// old run's contents; after the leftover is deleted it waits for this run's creator.
#[test]
fn leftover_file_is_attached_at_once_deleting_it_makes_attach_wait() {
    let path = tmp("leftover");
    {
        let old = SimPlatform::open_file(&path, CpuId::Cm7, true).unwrap();
        old.memory().write_u32(0x30, 0x0000_0004).unwrap();
    }
    let stale = SimPlatform::attach_file(&path, CpuId::Cm4, Duration::from_millis(30)).unwrap();
    assert_eq!(stale.memory().read_u32(0x30), Ok(4), "the old run's bytes");
    drop(stale);

    std::fs::remove_file(&path).unwrap();
    let p2 = path.clone();
    let attacher = std::thread::spawn(move || {
        SimPlatform::attach_file(&p2, CpuId::Cm4, Duration::from_secs(30))
    });
    std::thread::sleep(Duration::from_millis(50));
    let m7 = SimPlatform::open_file(&path, CpuId::Cm7, true).unwrap();
    let m4 = attacher.join().unwrap().unwrap();
    assert_eq!(m4.memory().read_u32(0x30), Ok(0), "only this run's bytes");
    m7.memory().write_u32(0x30, 7).unwrap();
    assert_eq!(m4.memory().read_u32(0x30), Ok(7));
}

#[test]
fn platform_is_send_and_core_ids_match_hsem() {
    fn is_send<T: Send>() {}
    is_send::<SimPlatform>();
    is_send::<SimMemory>();
    assert_eq!(CpuId::Cm7 as u8, 3);
    assert_eq!(CpuId::Cm4 as u8, 1);
    assert_eq!(duet_sim::platform::outgoing_doorbell(CpuId::Cm7), 0);
    assert_eq!(duet_sim::platform::outgoing_doorbell(CpuId::Cm4), 1);
    let (m7, m4) = pair();
    assert_eq!((m7.core(), m4.core()), (CpuId::Cm7, CpuId::Cm4));
    assert!(!m7.is_file_backed());
}

#[test]
fn duet_doorbell_rings_in_both_modes_and_process_mode_sees_the_peer_leave() {
    for (mode, m7, m4) in both_modes("duet-bell") {
        let bell = m4.duet_doorbell();
        assert!(
            !duet_sim::machine::wait_doorbell(&bell, Duration::from_millis(5)),
            "{mode}: not rung yet"
        );
        m7.notify();
        assert!(
            duet_sim::machine::wait_doorbell(&bell, Duration::from_secs(5)),
            "{mode}: the M7's ring reaches the M4's duet doorbell"
        );
        // Platform::wait still sees the ring too (the watcher keeps its own `seen`).
        assert!(m4.wait(after(&m4, Duration::from_secs(5))), "{mode}");
        // A ring from another thread, later, wakes it again.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            m7.notify();
            m7
        });
        assert!(
            duet_sim::machine::wait_doorbell(&bell, Duration::from_secs(5)),
            "{mode}: second ring"
        );
        let m7 = t.join().unwrap();
        match m4.peer_watch() {
            None => assert_eq!(mode, "thread"),
            Some(watch) => {
                assert!(!watch.gone(), "the M7 is attached");
                drop(m7);
                assert!(watch.gone(), "the M7 detached (pid word cleared)");
            }
        }
    }
}
