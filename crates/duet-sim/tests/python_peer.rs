//! An independent peer proves PROCESS-MODE.md: `tests/peers/mpy_host.py` (Python 3, standard
//! library only, written from the document and the wire spec) is the MicroPython-style host
//! (M7) on a process-mode file, and `duet-sim rpc-remote` runs the duet engine as
//! the M4 on the same file. Needs `python3` on PATH (the tests fail, not skip, without it).
//!
//! Messages over one buffer go both ways: the host sends them as consecutive 496-byte payloads
//! (the last shorter) and reassembles `"rpc"` by MessagePack completeness, MicroPython's
//! `streaming=True`; the remote's transport allows 2048-byte messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_duet-sim");

/// Kill either process after this long (a hang must fail the test, never stall the suite).
const LIMIT: Duration = Duration::from_secs(30);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/mpy_host.py")
}

fn tmp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("python-peer-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn python(shm: &Path, extra: &[&str]) -> Child {
    Command::new("python3")
        .arg(script())
        .arg(shm)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `python3` ({e}): this test needs Python 3 (standard library only) \
                 on PATH to run the independent peer tests/peers/mpy_host.py"
            )
        })
}

fn remote(shm: &Path) -> Child {
    Command::new(BIN)
        .args(["rpc-remote", "--timeout", "20", "--shm"])
        .arg(shm)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` up to [`LIMIT`], killing it past that; returns its output.
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn python_host_and_duet_remote_exchange_messages() {
    let shm = tmp("ok.shm");
    // The remote starts first and waits for the host to create the file, as an M4 spins.
    let r = remote(&shm);
    std::thread::sleep(Duration::from_millis(20));
    let p = python(&shm, &[]);
    let (p, r) = (finish(p), finish(r));
    let (pt, rt) = (text(&p), text(&r));
    assert!(
        p.status.success(),
        "python host failed:\n{pt}\nremote:\n{rt}"
    );
    assert!(
        r.status.success(),
        "duet remote failed:\n{rt}\npython:\n{pt}"
    );
    assert!(!pt.contains("FAIL"), "{pt}");
    for line in [
        "ok: announcements are raw@0x400 then rpc@0x401, flags 0",
        "ok: add(1, 2) reply bytes are 94 01 00 c0 03",
        "ok: add(1, 2) == 3",
        "ok: nope(1) fails with rpclib's text",
        "ok: echo(str) returns it",
        "ok: 100 more add calls all correct",
        "ok: 60 pipelined add calls all correct (msgids matched)",
        "ok: echo(1500-char str): request in 4 buffers, 1508-byte reply back intact in \
         [496, 496, 496, 20]",
        "ok: echo: 495-byte request in 1 buffer answered intact",
        "ok: echo: 496-byte request in 1 buffer answered intact",
        "ok: echo: 497-byte request in 2 buffers answered intact",
        "ok: echo: 992-byte request in 2 buffers answered intact",
        "ok: echo: 993-byte request in 3 buffers answered intact",
        "ok: blob(495): 503-byte reply in 2 buffers [496, 7], every byte right",
        "ok: blob(496): 504-byte reply in 2 buffers [496, 8], every byte right",
        "ok: blob(497): 505-byte reply in 2 buffers [496, 9], every byte right",
        "ok: blob(992): 1000-byte reply in 3 buffers [496, 496, 8], every byte right",
        "ok: blob(1800): 1808-byte reply in 4 buffers [496, 496, 496, 320], every byte right",
        "ok: blob(488): 496-byte reply in 1 buffer [496], every byte right",
        "ok: blob(489): 497-byte reply in 2 buffers [496, 1], every byte right",
        "ok: blob(984): 992-byte reply in 2 buffers [496, 496], every byte right",
        "ok: blob(985): 993-byte reply in 3 buffers [496, 496, 1], every byte right",
        "ok: blob(5000) fails with duet's error text",
        "ok: 6 pipelined multi-buffer calls (echo 1500 / blob 1800) all intact",
        "ok: raw: remote's line received",
        "ok: raw: our line echoed back",
        "ok: remote called led(True), led(False), nope_host()",
        "ok: done() returns True",
        "payloads received, all 64 rx buffers posted again",
        "ok: every used.len is 512 (the buffer's desc.len)",
        "ok: every rpmsg header valid",
        "host: sent 209, received 229, reclaimed 209, re-posted 229",
        "mpy_host: all 38 checks passed",
    ] {
        assert!(pt.contains(line), "missing {line:?} in\n{pt}");
    }
    for line in [
        "remote: raw and rpc bound by the host",
        "remote: led(true) -> true",
        "remote: led(false) -> false",
        "remote: nope_host() -> unknown method: Unbound function called nope_host",
        "remote: raw from host: hello from python",
        "remote: done; served 185 calls",
        "remote: stats: 0 framing errors, 0 oversized, 0 malformed, 0 reply failures",
    ] {
        assert!(rt.contains(line), "missing {line:?} in\n{rt}");
    }
    // The file as both left it: DRIVER_OK set, both doorbells rung, both pids cleared.
    let b = std::fs::read(&shm).unwrap();
    assert_eq!(b[48], 0x04);
    assert_eq!(u32_at(&b, 0x48), 0x3800_0400);
    assert!(u32_at(&b, 0x10010) > 0 && u32_at(&b, 0x10014) > 0);
    assert_eq!((u32_at(&b, 0x10018), u32_at(&b, 0x1001C)), (0, 0));
}

#[test]
fn python_host_reports_a_wrong_result() {
    // Host first this time; it expects add(1, 2) == 4, so exactly that check must fail while
    // the rest of the exchange (and the duet remote) still completes.
    let shm = tmp("wrong.shm");
    let p = python(&shm, &["--expect-sum", "4"]);
    std::thread::sleep(Duration::from_millis(20));
    let r = remote(&shm);
    let (p, r) = (finish(p), finish(r));
    let (pt, rt) = (text(&p), text(&r));
    assert!(!p.status.success(), "{pt}");
    assert!(pt.contains("FAIL: add(1, 2) == 4 (got 3)"), "{pt}");
    assert!(pt.contains("1 of 38 checks FAILED"), "{pt}");
    assert!(r.status.success(), "{rt}");
}

#[test]
fn short_non_final_payloads_break_the_framing() {
    // With 400-byte payloads the first part of the 1500-char echo request is not a full
    // buffer, so the duet remote must drop it as a framing error (only a full buffer says
    // "more follows"); the call gets no reply and the host's deadline fails the exchange.
    let shm = tmp("chunk.shm");
    let r = remote(&shm);
    std::thread::sleep(Duration::from_millis(20));
    let p = finish(python(&shm, &["--chunk", "400", "--timeout", "3"]));
    let mut r = r;
    let _ = r.kill(); // it waits for done() until its own timeout
    let r = r.wait_with_output().unwrap();
    let (pt, rt) = (text(&p), text(&r));
    assert!(!p.status.success(), "{pt}");
    assert!(
        pt.contains("ok: 60 pipelined add calls all correct"),
        "{pt}"
    );
    assert!(
        pt.contains("FAIL: exchange completed (no reply to echo('<1500 chars>',))"),
        "{pt}\nremote:\n{rt}"
    );
    assert!(!rt.contains("remote: done"), "{rt}");
}

#[test]
fn python_host_alone_times_out() {
    let shm = tmp("alone.shm");
    let p = finish(python(&shm, &["--timeout", "1"]));
    let pt = text(&p);
    assert!(!p.status.success(), "{pt}");
    assert!(
        pt.contains("FAIL: exchange completed (name-service announcements"),
        "{pt}"
    );
}

// ---- `duet-sim --role`: one core of an example per process ----

/// `duet-sim [extra...] --role ROLE --shm SHM EXAMPLE`.
fn side(role: &str, shm: &Path, example: &str, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(extra)
        .args(["--limit", "20", "--role", role, "--shm"])
        .arg(shm)
        .arg(example)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The `[core stats]` line of `out`.
fn stats_of<'a>(out: &'a str, core: &str) -> &'a str {
    let tag = format!("[{core} stats]");
    out.lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("no {tag} line in\n{out}"))
}

#[test]
fn two_duet_sim_processes_run_the_sensor_example_together() {
    let shm = tmp("roles.shm");
    let r = side("remote", &shm, "sensor", &[]);
    std::thread::sleep(Duration::from_millis(20));
    let h = side("host", &shm, "sensor", &[]);
    let (h, r) = (finish(h), finish(r));
    let (ht, rt) = (text(&h), text(&r));
    assert!(h.status.success(), "host:\n{ht}\nremote:\n{rt}");
    assert!(r.status.success(), "remote:\n{rt}\nhost:\n{ht}");
    // The M7 prints what the M4 sent through RPC serial, one line per reading; the values
    // follow each process's clock, so only their form is checked.
    let readings: Vec<&str> = ht
        .lines()
        .filter(|l| l.starts_with("Sensor value: "))
        .collect();
    assert_eq!(readings.len(), 5, "{ht}");
    assert!(readings.iter().all(|l| l["Sensor value: ".len()..]
        .parse::<u16>()
        .is_ok_and(|v| v <= 1023)));
    // What one process sent is what the other received, byte for byte.
    let (m7, m4) = (stats_of(&ht, "M7"), stats_of(&rt, "M4"));
    let field = |line: &str, key: &str| -> String {
        let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
        line[at..].split([' ', ';']).next().unwrap().to_string()
    };
    assert_eq!(field(m7, "rpc sent "), field(m4, "recv "), "{m7}\n{m4}");
    assert_eq!(
        field(m4, "rpc sent "),
        "5/75",
        "five 15-byte requests: {m4}"
    );
    assert_eq!(field(m7, "recv "), "5/75");
    assert!(m4.contains("calls 5 ok 0 failed"), "{m4}");
}

#[test]
fn python_host_answers_a_duet_sim_remote_and_the_remote_is_traced() {
    // The remote calls the host: sensorRead five times, and prints each answer on "raw".
    let shm = tmp("py-sensor.shm");
    let trace = tmp("py-sensor.json");
    let r = side(
        "remote",
        &shm,
        "sensor",
        &["--trace", trace.to_str().unwrap()],
    );
    std::thread::sleep(Duration::from_millis(20));
    let p = finish(python(&shm, &["--example", "sensor"]));
    let r = finish(r);
    let (pt, rt) = (text(&p), text(&r));
    assert!(p.status.success(), "python:\n{pt}\nremote:\n{rt}");
    assert!(r.status.success(), "remote:\n{rt}\npython:\n{pt}");
    for line in [
        "ok: the remote called sensorRead five times",
        "ok: it printed each answer in order on raw",
        "mpy_host: all 5 checks passed",
    ] {
        assert!(pt.contains(line), "missing {line:?} in\n{pt}");
    }
    assert!(stats_of(&rt, "M4").contains("calls 5 ok 0 failed"), "{rt}");
    // One core's trace: its calls (request out, reply in) and its prints.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let names: Vec<&str> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == 2)
        .filter_map(|e| e["name"].as_str())
        .collect();
    for k in 1..=5 {
        assert!(
            names.contains(&format!("call sensorRead #{k}").as_str()),
            "{names:?}"
        );
        assert!(names.contains(&format!("<- sensorRead #{k} reply").as_str()));
    }
    assert_eq!(names.iter().filter(|n| n.starts_with("-> raw")).count(), 5);
}

#[test]
fn python_host_calls_a_duet_sim_remote() {
    // The host calls the remote: led(True/False) switches the M4's green LED; the remote's
    // serve loop ends when the host detaches.
    let shm = tmp("py-led.shm");
    let r = side("remote", &shm, "led", &[]);
    std::thread::sleep(Duration::from_millis(20));
    let p = finish(python(&shm, &["--example", "led"]));
    let r = finish(r);
    let (pt, rt) = (text(&p), text(&r));
    assert!(p.status.success(), "python:\n{pt}\nremote:\n{rt}");
    assert!(r.status.success(), "remote:\n{rt}\npython:\n{pt}");
    assert!(pt.contains("mpy_host: all 6 checks passed"), "{pt}");
    let leds: Vec<bool> = rt
        .lines()
        .filter(|l| l.contains("LED green (LEDG)"))
        .map(|l| l.ends_with(" on"))
        .collect();
    assert_eq!(leds, [true, false, true, false], "{rt}");
    assert!(
        stats_of(&rt, "M4").contains("rpc sent 4/20 B recv 4/36 B"),
        "{rt}"
    );
}

#[test]
fn role_needs_an_example() {
    let shm = tmp("noexample.shm");
    let out = Command::new(BIN)
        .args(["--role", "host", "--shm"])
        .arg(&shm)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role runs one core of an example"));
}
