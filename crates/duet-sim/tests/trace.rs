//! Tracing the simulator: the sensor example traced through the library and through
//! `duet-sim --trace FILE --log`, the JSON parsed back and checked against the trace-event
//! format (phases, pid/tid, ts in µs, slices nesting on each track, flows bound to slices).

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use duet_sim::board::Console;
use duet_sim::examples;
use duet_trace::{chrome, Recorder, SpanKind};
use serde_json::Value;

fn traced(name: &str) -> Arc<Recorder> {
    let rec = Arc::new(Recorder::new());
    let e = examples::find(name).unwrap();
    examples::run_traced(e, &Console::new(false), 100, Some(rec.clone())).unwrap();
    rec
}

/// Checks `doc` against the trace-event format and returns its events.
fn check_format(doc: &Value) -> Vec<Value> {
    let ev = doc["traceEvents"]
        .as_array()
        .expect("traceEvents array")
        .clone();
    assert!(!ev.is_empty());
    for e in &ev {
        let ph = e["ph"].as_str().expect("ph");
        assert!(
            ["X", "b", "e", "i", "s", "t", "f", "M"].contains(&ph),
            "phase {ph}"
        );
        let pid = e["pid"].as_u64().expect("pid");
        assert!(pid == 1 || pid == 2, "{e}");
        assert_eq!(e["tid"].as_u64(), Some(pid), "one track per core: {e}");
        assert!(e["name"].is_string(), "{e}");
        if ph != "M" {
            let ts = e["ts"].as_f64().expect("ts");
            assert!(ts >= 0.0, "{e}");
        }
        if ph == "X" {
            assert!(e["dur"].as_f64().expect("dur") >= 0.0);
        }
        if ["b", "e", "s", "t", "f"].contains(&ph) {
            assert!(!e["id"].is_null(), "{e}");
        }
    }
    ev
}

/// `(start, end)` of the X slices per pid, ns-exact (µs with 3 decimals).
fn slices(ev: &[Value]) -> HashMap<u64, Vec<(i64, i64, String)>> {
    let mut out: HashMap<u64, Vec<(i64, i64, String)>> = HashMap::new();
    for e in ev.iter().filter(|e| e["ph"] == "X") {
        let ts = (e["ts"].as_f64().unwrap() * 1000.0).round() as i64;
        let dur = (e["dur"].as_f64().unwrap() * 1000.0).round() as i64;
        let name = e["name"].as_str().unwrap().to_string();
        out.entry(e["pid"].as_u64().unwrap())
            .or_default()
            .push((ts, ts + dur, name));
    }
    out
}

#[test]
fn the_sensor_example_traced_shows_every_call_on_both_tracks_with_flows() {
    let rec = traced("sensor");
    let t = rec.timeline();
    let reads = examples::sensor::READINGS as usize;
    // Every call seen four times (sent, received, reply sent, reply received), every print
    // twice.
    let rpc: Vec<_> = t
        .messages
        .iter()
        .filter(|m| m.endpoint == duet::Endpoint::Rpc)
        .collect();
    assert_eq!(rpc.len(), 4 * reads);
    assert!(rpc.iter().all(|m| m.other.is_some()), "all paired");
    assert_eq!(t.round_trips_ns().len(), reads);
    let calls = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Calling && s.core == duet::CpuId::Cm4)
        .count();
    let served = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Serving && s.core == duet::CpuId::Cm7)
        .count();
    assert_eq!((calls, served), (reads, reads));
    assert!(t
        .spans
        .iter()
        .any(|s| s.kind == SpanKind::Busy && s.name == "delay(1000)"));
    assert!(t.spans.iter().any(|s| s.kind == SpanKind::Asleep));
    assert!(t.points.iter().any(|p| p.doorbell));

    let doc: Value = serde_json::from_str(&chrome::write(&t)).unwrap();
    let ev = check_format(&doc);
    // Calls on the M4's track, serving on the M7's, by name.
    for k in 1..=reads {
        let has = |pid: u64, name: String| {
            ev.iter()
                .any(|e| e["ph"] == "X" && e["pid"] == pid && e["name"] == name.as_str())
        };
        assert!(has(2, format!("call sensorRead #{k}")), "call {k}");
        assert!(has(1, format!("serve sensorRead #{k}")), "serve {k}");
        assert!(has(2, format!("-> sensorRead #{k}")));
        assert!(has(1, format!("<- sensorRead #{k}")));
    }
    // Message args: decoded fields and the bytes as hex of the right size.
    let req = ev.iter().find(|e| e["name"] == "-> sensorRead #1").unwrap();
    assert_eq!(req["args"]["method"], "sensorRead");
    assert_eq!(req["args"]["msgid"], 1);
    assert_eq!(req["args"]["type"], "request");
    assert_eq!(req["args"]["endpoint"], "rpc");
    assert_eq!(req["args"]["decoded"], "[0, 1, \"sensorRead\", []]");
    let size = req["args"]["size"].as_u64().unwrap() as usize;
    assert_eq!(
        req["args"]["bytes"].as_str().unwrap().split(' ').count(),
        size
    );
    // Slices on one track nest: none starts inside another and ends after it.
    for (pid, mut s) in slices(&ev) {
        s.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut stack: Vec<&(i64, i64, String)> = Vec::new();
        for x in &s {
            while stack.last().is_some_and(|top| top.1 <= x.0) {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                assert!(x.1 <= top.1, "pid {pid}: {x:?} crosses {top:?}");
            }
            stack.push(x);
        }
    }
    // Flows: one chain per call, s on the caller, t t on the callee, f back on the caller,
    // each inside a slice of its track (so viewers bind the arrow to it).
    let tracks = slices(&ev);
    let mut chains: HashMap<u64, Vec<(String, u64)>> = HashMap::new();
    let mut times: HashMap<u64, Vec<i64>> = HashMap::new();
    for e in ev
        .iter()
        .filter(|e| ["s", "t", "f"].contains(&e["ph"].as_str().unwrap()))
    {
        let pid = e["pid"].as_u64().unwrap();
        let ts = (e["ts"].as_f64().unwrap() * 1000.0).round() as i64;
        assert!(
            tracks[&pid]
                .iter()
                .any(|s| s.0 <= ts && ts <= s.1 && s.2.starts_with(['-', '<'])),
            "flow point outside a message slice: {e}"
        );
        if e["ph"] == "f" {
            assert_eq!(e["bp"], "e");
        }
        times.entry(e["id"].as_u64().unwrap()).or_default().push(ts);
        chains
            .entry(e["id"].as_u64().unwrap())
            .or_default()
            .push((e["ph"].as_str().unwrap().to_string(), pid));
    }
    let call_chains = chains
        .values()
        .filter(|c| {
            c.iter()
                .map(|(p, pid)| (p.as_str(), *pid))
                .collect::<Vec<_>>()
                == [("s", 2), ("t", 1), ("t", 1), ("f", 2)]
        })
        .count();
    assert_eq!(call_chains, reads);
    for (id, t) in &times {
        assert!(
            t.windows(2).all(|w| w[0] <= w[1]),
            "flow {id} goes back in time: {t:?}"
        );
    }
}

#[test]
fn errors_example_trace_has_the_timeout_and_late_reply() {
    let t = traced("errors").timeline();
    let late = t
        .messages
        .iter()
        .filter(|m| m.method.as_deref() == Some("slow") && m.msgid().is_some())
        .count();
    assert!(late >= 2, "the slow call's request and its late reply");
    let _ = check_format(&serde_json::from_str(&chrome::write(&t)).unwrap());
}

#[test]
fn command_line_writes_the_trace_file_and_the_log() {
    let dir = std::env::temp_dir().join(format!("duet-trace-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sensor.json");
    let out = Command::new(env!("CARGO_BIN_EXE_duet-sim"))
        .args(["--trace", file.to_str().unwrap(), "--log", "sensor"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Sensor value: 255"), "the example ran");
    let log_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("sensorRead") && l.contains("M4 -> M7"))
        .collect();
    assert_eq!(
        log_lines.len(),
        examples::sensor::READINGS as usize,
        "{stdout}"
    );
    assert!(log_lines[0].contains("[0, 1, \"sensorRead\", []]"));
    assert!(stdout.contains("--- summary"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let ev = check_format(&doc);
    assert!(ev.iter().any(|e| e["name"] == "call sensorRead #5"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_ring_sniffer_sees_what_the_transports_send_and_take() {
    use duet::{CpuId, Endpoint};
    use duet_rpmsg::{Platform, SharedMemory, Transport};
    use duet_trace::{Direction, Event, EventKind, MessageKind, RingSniffer};

    let (mut m7, mut m4) = duet_sim::machine::transports();
    let mem = m7.platform().memory().clone();
    let read = |off: usize, buf: &mut [u8]| mem.read(off, buf).is_ok();
    let mut sniffer = RingSniffer::new();
    let mut all: Vec<Event> = Vec::new();
    // After the handshake: announcements and the host's 0x00 bytes are not reported.
    assert_eq!(sniffer.poll(1, read), []);

    let request = [0x94, 0x00, 0x07, 0xa3, b'a', b'd', b'd', 0x92, 0x01, 0x02];
    m4.try_send(Endpoint::Rpc, &request).unwrap();
    let e = sniffer.poll(2, read);
    assert_eq!(
        e,
        [Event::sent(
            2,
            CpuId::Cm4,
            Endpoint::Rpc,
            request.to_vec(),
            0
        )]
    );
    all.extend(e);

    let mut buf = [0u8; 512];
    let got = m7.try_recv(&mut buf).unwrap().unwrap();
    assert_eq!(got.len, request.len());
    let e = sniffer.poll(3, read);
    assert_eq!(
        e,
        [Event::received(
            3,
            CpuId::Cm7,
            Endpoint::Rpc,
            request.to_vec(),
            0
        )]
    );
    all.extend(e);

    // A message over one buffer: three buffers each way.
    let big: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
    m7.try_send(Endpoint::Raw, &big).unwrap();
    let sent = sniffer.poll(4, read);
    let sizes: Vec<usize> = sent
        .iter()
        .map(|e| match &e.kind {
            EventKind::Sent { bytes, .. } => bytes.len(),
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(sizes, [496, 496, 8]);
    assert!(sent.iter().all(|e| e.core == CpuId::Cm7));
    all.extend(sent);
    let mut parts = 0;
    while m4.try_recv(&mut buf).unwrap().is_some() {
        parts += 1;
    }
    assert_eq!(parts, 3);
    let taken = sniffer.poll(5, read);
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|e| e.core == CpuId::Cm4));
    all.extend(taken);
    assert_eq!(sniffer.poll(6, read), [], "nothing new");

    // The timeline pairs them as it pairs the transport wrapper's events.
    let t = duet_trace::Timeline::build(&all);
    assert_eq!(t.messages.len(), 8);
    assert!(t.messages.iter().all(|m| m.other.is_some()), "all paired");
    assert_eq!(t.messages[0].kind, MessageKind::Request { msgid: 7 });
    let raw_received = t
        .messages
        .iter()
        .filter(|m| m.endpoint == Endpoint::Raw && m.direction == Direction::Received)
        .count();
    assert_eq!(raw_received, 3);
}
