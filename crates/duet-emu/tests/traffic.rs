//! The traffic between the emulated cores as a duet-trace timeline (what
//! `duet-emu --trace-out FILE` writes): the sensor example's five calls, seen from the shared
//! memory alone, with both cores' activity and the doorbells.

#[allow(dead_code)] // only `build` is used here
mod common;

use common::build;
use duet_emu::{Config, Emulator, Image};
use duet_trace::{chrome, CpuId, Direction, MessageKind, SpanKind, Timeline};

#[test]
fn sensor_traffic_is_recorded_from_the_rings() {
    let dir = build("duet-firmware");
    let load = |n: &str| Image::load(&dir.join(n)).expect("load image");
    let (m7, m4) = (load("sensor_m7"), load("sensor_m4"));
    let config = Config {
        trace: true,
        ..Config::default()
    };
    let mut emu = Emulator::new(&m7, Some(&m4), config).expect("emulator");
    emu.record_traffic();
    let outcome = emu.run().expect("run");
    assert_eq!(outcome.m7_exit, 0);
    let t = Timeline::build(&emu.traffic());

    // Five sensorRead calls by the M4, each seen sent and received, each answered.
    let requests: Vec<_> = t
        .messages
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Request { .. }))
        .collect();
    assert_eq!(requests.len(), 10, "5 requests, each sent and received");
    assert!(requests
        .iter()
        .all(|m| m.method.as_deref() == Some("sensorRead") && m.other.is_some()));
    assert!(requests
        .iter()
        .filter(|m| m.direction == Direction::Sent)
        .all(|m| m.core == CpuId::Cm4));
    let rts = t.round_trips_ns();
    assert_eq!(rts.len(), 5);
    assert!(rts.iter().all(|&ns| ns > 0 && ns < 50_000_000), "{rts:?}");
    let served = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Serving && s.core == CpuId::Cm7)
        .count();
    assert_eq!(served, 5);
    // The prints on "raw" and the sleeps and doorbells of both cores.
    let raw: Vec<String> = t
        .messages
        .iter()
        .filter(|m| m.endpoint == duet_trace::Endpoint::Raw && m.direction == Direction::Sent)
        .map(|m| String::from_utf8_lossy(&m.bytes).into_owned())
        .collect();
    assert!(raw.concat().contains("Sensor value: "), "{raw:?}");
    for core in [CpuId::Cm7, CpuId::Cm4] {
        assert!(t
            .spans
            .iter()
            .any(|s| s.core == core && s.kind == SpanKind::Asleep));
        assert!(t.points.iter().any(|p| p.core == core && p.doorbell));
    }
    let json: serde_json::Value = serde_json::from_str(&chrome::write(&t)).unwrap();
    assert!(json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "call sensorRead #1" && e["pid"] == 2));
}
