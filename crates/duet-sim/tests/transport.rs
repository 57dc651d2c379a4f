//! duet-rpmsg's host and remote running on the simulator: thread mode, process mode (the built
//! `duet-sim` binary, twice) and the handshake image.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant as StdInstant};

use duet_rpmsg::{Config, Endpoint, Platform, SharedMemory, Transport};
use duet_sim::runner::{self, Role, RunError, Summary};
use duet_sim::stress::{StressConfig, StressError};
use duet_sim::{CpuId, SimPlatform};

const BIN: &str = env!("CARGO_BIN_EXE_duet-sim");

fn tmp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("transport-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}

/// Checks one side's summary of a complete, clean exchange of `count` messages each way.
fn check_summary(s: &Summary, count: u32) {
    let r = &s.report;
    assert_eq!(r.sent, [count; 2], "{s}");
    assert_eq!(r.received, [count; 2], "{s}");
    assert!(s.pools_full(), "{s}");
    assert_eq!(s.stats.corrupt, 0, "{s}");
    assert_eq!(
        s.stats.messages_sent,
        2 * count + 2,
        "{s}: data + 2 control messages"
    );
}

#[test]
fn two_threads_multi_buffer_exchange() {
    let count = 3000;
    let cfg = StressConfig {
        count,
        seed: 0x5EED,
        max_len: 2048,
        timeout: Duration::from_secs(60),
    };
    let [host, remote] = runner::run_threads(&cfg).unwrap();
    check_summary(&host, count);
    check_summary(&remote, count);
    assert_eq!(host.role, Role::Host);
    assert_eq!(host.tx_free, (46, 46));
    assert_eq!(host.rx_posted, Some((64, 64)));
    assert_eq!(remote.tx_free, (64, 64));
    // Sizes covered multi-buffer messages, and the two sides agree on every byte and buffer.
    assert!(host.report.multi_sent > 100 && remote.report.multi_sent > 100);
    assert_eq!(host.report.bytes_sent, remote.report.bytes_received);
    assert_eq!(remote.report.bytes_sent, host.report.bytes_received);
    // Data buffers: what one side sent minus its 2 control buffers, the other received.
    assert_eq!(host.stats.buffers_sent - 2, remote.stats.buffers_received);
    assert_eq!(remote.stats.buffers_sent - 2, host.stats.buffers_received);
    assert!(
        host.stats.buffers_received > 2 * count,
        "some messages spanned buffers"
    );
}

#[test]
fn two_threads_arduino_profile() {
    let cfg = StressConfig {
        count: 1000,
        seed: 3,
        max_len: 496,
        timeout: Duration::from_secs(60),
    };
    let [host, remote] = runner::run_threads(&cfg).unwrap();
    check_summary(&host, 1000);
    check_summary(&remote, 1000);
    assert_eq!(host.report.multi_sent, 0);
    // One buffer per message in this profile.
    assert_eq!(host.stats.buffers_sent, 2002);
    assert_eq!(remote.stats.buffers_received, 2000);
}

#[test]
fn oversized_stress_config_is_refused() {
    // max_len above the transport's limit: refused before anything is sent, not truncated.
    let (mut host, mut remote) =
        runner::handshake(Config::arduino(), Duration::from_secs(10)).unwrap();
    let cfg = StressConfig {
        count: 1,
        seed: 0,
        max_len: 497,
        timeout: Duration::from_secs(1),
    };
    let err =
        duet_sim::stress::run_side(&mut host, duet_sim::stress::Direction::HostToRemote, &cfg)
            .unwrap_err();
    assert!(matches!(err, StressError::Config(_)), "{err}");
    assert_eq!(remote.try_recv(&mut [0; 512]), Ok(None));
}

/// Waits for `child` up to `limit`, killing it past that; returns its output.
fn finish(mut child: Child, limit: Duration) -> Output {
    let start = StdInstant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn spawn_peer(role: &str, shm: &PathBuf, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["peer", "--role", role, "--shm"])
        .arg(shm)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_multi_buffer_exchange() {
    let shm = tmp("procs.shm");
    // The file exists before either process starts (created here through the library).
    drop(SimPlatform::open_file(&shm, CpuId::Cm7, true).unwrap());
    let args = [
        "--count",
        "3000",
        "--seed",
        "77",
        "--max-len",
        "2048",
        "--timeout",
        "60",
    ];
    // Remote first: it must wait for the host's table, as the M4 does.
    let remote = spawn_peer("remote", &shm, &args);
    std::thread::sleep(Duration::from_millis(20));
    let host = spawn_peer("host", &shm, &args);
    let host = finish(host, Duration::from_secs(90));
    let remote = finish(remote, Duration::from_secs(90));
    let (hout, rout) = (
        String::from_utf8_lossy(&host.stdout),
        String::from_utf8_lossy(&remote.stdout),
    );
    let herr = String::from_utf8_lossy(&host.stderr);
    let rerr = String::from_utf8_lossy(&remote.stderr);
    assert!(host.status.success(), "host: {hout} {herr}");
    assert!(remote.status.success(), "remote: {rout} {rerr}");
    let all = "sent raw=3000 rpc=3000 received raw=3000 rpc=3000 checked";
    assert!(hout.starts_with("host: ") && hout.contains(all), "{hout}");
    assert!(rout.starts_with("remote: ") && rout.contains(all), "{rout}");
    assert!(hout.contains("tx_free=46/46 rx_posted=64/64"), "{hout}");
    assert!(rout.contains("tx_free=64/64"), "{rout}");
    assert!(hout.contains(", 0 corrupt") && rout.contains(", 0 corrupt"));
    // The processes detached: their pid words are cleared.
    let bytes = std::fs::read(&shm).unwrap();
    assert_eq!(u32_at(&bytes, 0x10018), 0);
    assert_eq!(u32_at(&bytes, 0x1001C), 0);
    // Both rang their doorbells.
    assert!(u32_at(&bytes, 0x10010) > 0 && u32_at(&bytes, 0x10014) > 0);
}

#[test]
fn two_processes_detect_a_content_mismatch() {
    // Different seeds: the checks must fail (nothing else would tell the runs apart).
    let shm = tmp("mismatch.shm");
    let host = spawn_peer(
        "host",
        &shm,
        &["--create", "--count", "50", "--seed", "1", "--timeout", "5"],
    );
    let remote = spawn_peer(
        "remote",
        &shm,
        &["--count", "50", "--seed", "2", "--timeout", "5"],
    );
    let host = finish(host, Duration::from_secs(30));
    let remote = finish(remote, Duration::from_secs(30));
    assert!(!host.status.success());
    assert!(!remote.status.success());
    let herr = String::from_utf8_lossy(&host.stderr);
    assert!(herr.contains("bad message"), "{herr}");
}

#[test]
fn remote_alone_times_out_in_handshake() {
    let shm = tmp("alone.shm");
    drop(SimPlatform::open_file(&shm, CpuId::Cm7, true).unwrap());
    let err = runner::run_peer(
        Role::Remote,
        &shm,
        false,
        &StressConfig {
            count: 1,
            seed: 0,
            max_len: 496,
            timeout: Duration::from_millis(200),
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Transport {
                stage: "handshake",
                error: duet_rpmsg::Error::Timeout
            }
        ),
        "{err}"
    );
}

/// The handshake image against the spec's numbers (arduino-rpc-wire.md §1).
fn check_image(img: &[u8]) {
    assert_eq!(img.len(), 0x10000);
    // Resource table.
    assert_eq!(u32_at(img, 0), 1, "version");
    assert_eq!(u32_at(img, 4), 1, "num");
    assert_eq!(u32_at(img, 16), 24, "offset[0]");
    assert_eq!(u32_at(img, 24), 3, "RSC_VDEV");
    assert_eq!(u32_at(img, 28), 7, "VIRTIO_ID_RPMSG");
    assert_eq!(u32_at(img, 36), 1, "dfeatures = NS");
    assert_eq!(u32_at(img, 40), 1, "gfeatures = NS");
    assert_eq!(img[48], 0x04, "status = DRIVER_OK");
    assert_eq!(img[49], 2, "num_of_vrings");
    assert_eq!(
        [
            u32_at(img, 52),
            u32_at(img, 56),
            u32_at(img, 60),
            u32_at(img, 64)
        ],
        [0x3800_1400, 32, 64, 0],
        "vring0"
    );
    assert_eq!(&img[0x48..0x4C], &0x3800_0400u32.to_le_bytes(), "vring1 da");
    assert_eq!(
        [u32_at(img, 76), u32_at(img, 80), u32_at(img, 84)],
        [32, 64, 1]
    );

    // vring0 (M4 -> M7) at 0x1400: 64 write-only host receive buffers, desc.addr relative to
    // 0x3800_0400; two NS announcements used (used.len = 512) and re-posted (avail.idx 66).
    for i in 0..64usize {
        let d = 0x1400 + 16 * i;
        assert_eq!(u32_at(img, d), 0x2000 + 512 * i as u32, "desc {i} addr");
        assert_eq!(u32_at(img, d + 4), 0, "desc {i} addr high");
        assert_eq!(u32_at(img, d + 8), 512);
        assert_eq!(u16_at(img, d + 12), 2, "VRING_DESC_F_WRITE");
    }
    assert_eq!(u16_at(img, 0x1802), 66, "vring0 avail.idx");
    assert_eq!(u16_at(img, 0x18A0), 1, "vring0 used.flags = NO_NOTIFY");
    assert_eq!(u16_at(img, 0x18A2), 2, "vring0 used.idx");
    assert_eq!([u32_at(img, 0x18A4), u32_at(img, 0x18A8)], [0, 512]);
    assert_eq!([u32_at(img, 0x18AC), u32_at(img, 0x18B0)], [1, 512]);

    // The NS announcements in the first two host receive buffers.
    for (i, (name, addr)) in [(&b"raw"[..], 0x400u32), (b"rpc", 0x401)]
        .iter()
        .enumerate()
    {
        let b = 0x2400 + 512 * i;
        assert_eq!(u32_at(img, b), *addr, "src");
        assert_eq!(u32_at(img, b + 4), 0x35, "dst = NS");
        assert_eq!(u16_at(img, b + 12), 40, "len");
        assert_eq!(&img[b + 16..b + 19], *name);
        assert!(img[b + 19..b + 48].iter().all(|&c| c == 0), "NUL padded");
        assert_eq!(u32_at(img, b + 48), *addr, "announced address");
        assert_eq!(u32_at(img, b + 52), 0, "flags = create");
    }

    // vring1 (M7 -> M4) at 0x400: the two throw-away bytes in the first host transmit
    // buffers (0x3800_A400 = addr 0xA000), consumed by the remote (used.idx 2, len 512).
    assert_eq!(u16_at(img, 0x800), 1, "vring1 avail.flags = NO_INTERRUPT");
    assert_eq!(u16_at(img, 0x802), 2, "vring1 avail.idx");
    assert_eq!(u16_at(img, 0x8A2), 2, "vring1 used.idx");
    for (i, addr) in [0x400u32, 0x401].iter().enumerate() {
        let d = 0x400 + 16 * i;
        assert_eq!(u32_at(img, d), 0xA000 + 512 * i as u32);
        assert_eq!(u32_at(img, d + 8), 512);
        assert_eq!(u16_at(img, d + 12), 0, "read-only");
        let b = 0xA400 + 512 * i;
        assert_eq!(
            [u32_at(img, b), u32_at(img, b + 4)],
            [*addr, *addr],
            "src, dst"
        );
        assert_eq!(u16_at(img, b + 12), 1, "len");
        assert_eq!(img[b + 16], 0x00, "the throw-away byte");
        assert_eq!(u32_at(img, 0x8A4 + 8 * i + 4), 512, "used.len = desc.len");
    }
}

#[test]
fn shm_image_subcommand_writes_the_bound_state() {
    let file = tmp("image.bin");
    let out = Command::new(BIN)
        .arg("shm-image")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_image(&std::fs::read(&file).unwrap());
}

#[test]
fn handshake_binds_both_sides_and_traffic_flows() {
    let (mut host, mut remote) =
        runner::handshake(Config::arduino(), Duration::from_secs(10)).unwrap();
    check_image(&host.platform().memory().snapshot());
    for ep in Endpoint::ALL {
        assert!(host.is_ready(ep) && remote.is_ready(ep));
    }
    host.try_send(Endpoint::Rpc, b"ping").unwrap();
    let mut buf = [0u8; 496];
    let r = remote.try_recv(&mut buf).unwrap().unwrap();
    assert_eq!((r.endpoint, &buf[..r.len]), (Endpoint::Rpc, &b"ping"[..]));
    // Both platforms see one region.
    assert_eq!(
        remote.platform().memory().read_u32(0x48),
        host.platform().memory().read_u32(0x48)
    );
}
