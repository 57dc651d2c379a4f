//! The emulator's own firmware (firmware/emu-selftest) end to end: boot, HSEM round trips with
//! interrupts both ways, SysTick deadlines, the M4 not booted, BCM4 autoboot, a fault.

mod common;

use common::{build, run};
use duet_emu::{Config, CoreId, M4Boot, RunError};

const PKG: &str = "emu-selftest";

#[test]
fn pair_runs_round_trips_and_is_deterministic() {
    let dir = build(PKG);
    let a = run(&dir, "selftest_m7", Some("selftest_m4"), Config::default());
    let o = a.result.as_ref().expect("run ends with an exit");
    assert_eq!(o.m7_exit, 0, "M7 console:\n{}", a.m7);
    assert_eq!(
        a.m7,
        "M7: start\nM7: booting M4\nM7: M4 is up after 0 ms\nM7: 20 round trips ok\n"
    );
    assert_eq!(a.m4, "M4: up\n");
    let [m7, m4] = a.counters;
    assert!(m7.booted && m4.booted);
    // 20 doorbells each way; the M4 takes exactly one interrupt per request.
    assert_eq!(m4.interrupts, 20);
    assert!(m7.interrupts >= 20, "{m7:?}");
    assert!(m4.handler_instructions > 0 && m4.handler_instructions < m4.instructions);
    assert!(m7.asleep_cycles > 0 && m4.asleep_cycles > 0);
    // The LED toggled once per round.
    let leds = a.emu.gpio_events();
    assert_eq!(leds.len(), 20);
    assert!(leds
        .iter()
        .all(|e| e.port == 'I' && e.pin == 12 && e.core == CoreId::M7));
    assert!(leds
        .windows(2)
        .all(|w| w[0].high != w[1].high && w[0].time_ns < w[1].time_ns));
    // Same images, same everything.
    let b = run(&dir, "selftest_m7", Some("selftest_m4"), Config::default());
    assert_eq!(a.counters, b.counters);
    assert_eq!(a.result, b.result);
    assert_eq!(a.emu.gpio_events(), b.emu.gpio_events());
}

#[test]
fn results_do_not_depend_on_the_quantum_beyond_timing() {
    let dir = build(PKG);
    for q in [400, 40_000] {
        let r = run(
            &dir,
            "selftest_m7",
            Some("selftest_m4"),
            Config {
                quantum_ns: q,
                ..Config::default()
            },
        );
        assert_eq!(r.result.map(|o| o.m7_exit), Ok(0), "quantum {q}: {}", r.m7);
        assert!(r.m7.ends_with("20 round trips ok\n"));
    }
}

#[test]
fn m4_not_booted_is_reported_by_the_m7_within_its_deadline() {
    let dir = build(PKG);
    let config = Config {
        m4_boot: M4Boot::Suppressed,
        trace: true,
        ..Config::default()
    };
    let r = run(&dir, "selftest_m7", Some("selftest_m4"), config);
    let o = r.result.as_ref().expect("the M7 exits by itself");
    assert_eq!(o.m7_exit, 3);
    assert!(
        r.m7.contains("peer did not come up within 5 ms"),
        "{}",
        r.m7
    );
    // The deadline is 5 SysTick periods of 1 ms: the exit comes right after 5 ms.
    assert!((5_000_000..5_100_000).contains(&o.time_ns), "{}", o.time_ns);
    assert!(!r.counters[1].booted);
    assert_eq!(r.m4, "");
    // The M7 slept while waiting.
    assert!(r.counters[0].asleep_cycles > r.counters[0].instructions);
    assert!(r.emu.trace().iter().any(|t| t.what.contains("ignored")));
}

#[test]
fn bcm4_option_byte_starts_the_m4_by_itself() {
    let dir = build(PKG);
    let config = Config {
        m4_boot: M4Boot::Autoboot,
        trace: true,
        ..Config::default()
    };
    let r = run(&dir, "selftest_m7", Some("selftest_m4"), config);
    assert_eq!(r.result.as_ref().map(|o| o.m7_exit), Ok(0), "{}", r.m7);
    assert!(r.m7.contains("M4 boots by itself"), "{}", r.m7);
    assert_eq!(r.m4, "M4: up\n");
    let trace = r.emu.trace();
    let boot = trace
        .iter()
        .find(|t| t.what.contains("out of reset"))
        .expect("boot traced");
    assert_eq!((boot.core, boot.time_ns), (CoreId::M4, 0));
    assert!(!trace.iter().any(|t| t.what.contains("BOOT_C2")));
}

#[test]
fn fault_is_reported_with_core_and_pc() {
    let dir = build(PKG);
    let r = run(&dir, "fault_m7", None, Config::default());
    assert_eq!(r.m7, "M7: about to fault\n");
    let img = duet_emu::Image::load(&dir.join("fault_m7")).expect("image");
    match r.result {
        Err(RunError::Fault {
            core, pc, address, ..
        }) => {
            assert_eq!(core, CoreId::M7);
            assert_eq!(address, Some(0x0040_0000));
            let sym = img.symbol_at(pc).expect("pc inside a function");
            assert_eq!(sym.name, "do_fault");
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn profile_and_probe_measure_the_round_trip() {
    let dir = build(PKG);
    let load = |n: &str| duet_emu::Image::load(&dir.join(n)).expect("image");
    let (m7, m4) = (load("selftest_m7"), load("selftest_m4"));
    let config = Config {
        profile: true,
        ..Config::default()
    };
    let mut emu = duet_emu::Emulator::new(&m7, Some(&m4), config).expect("emulator");
    let ring = emu
        .probe_symbol(CoreId::M7, "DefaultHandler")
        .expect("probe");
    let handler = emu
        .probe_symbol(CoreId::M4, "DefaultHandler")
        .expect("probe");
    emu.run().expect("run");
    assert_eq!(emu.probe_hits(ring).len(), 20);
    assert_eq!(emu.probe_hits(handler).len(), 20);
    // M7 instructions from one response interrupt to the next are the same every round.
    let h = emu.probe_hits(ring);
    let d: Vec<u64> = h.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(d[1..].iter().all(|&x| x.abs_diff(d[1]) <= 8), "{d:?}");
    let prof = emu.profile(CoreId::M4);
    assert!(
        prof.iter()
            .any(|(n, c)| n.contains("DefaultHandler") && *c > 0),
        "{prof:?}"
    );
    let total: u64 = prof.iter().map(|(_, c)| c).sum();
    assert_eq!(total, emu.counters(CoreId::M4).instructions);
    // A window between two hits of the M7 probe: one round of the M7, within one translation
    // block (the probed block counts on the side where it began) of the probe's own figure.
    let window = emu.profile_between(ring, 3, CoreId::M7).expect("window");
    let in_window: u64 = window.iter().map(|(_, c)| c).sum();
    assert!(in_window.abs_diff(d[3]) <= 32, "{in_window} vs {}", d[3]);
    assert!(
        window.iter().any(|(n, _)| n.contains("DefaultHandler")),
        "{window:?}"
    );
    assert!(emu.profile_between(ring, 19, CoreId::M7).is_none());
}

#[test]
fn cli_json_report_has_exit_counters_probes_and_consoles() {
    let dir = build(PKG);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duet-emu"))
        .arg(dir.join("selftest_m7"))
        .arg(dir.join("selftest_m4"))
        .args(["--json", "--probe", "M4:DefaultHandler", "--profile"])
        .output()
        .expect("run duet-emu");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    // The profile: per core, `["function", instructions]` rows, the handler among the M4's.
    let prof = text.split("\"profile\":{").nth(1).expect("profile");
    assert!(prof.starts_with("\"M7\":[[\""), "{text}");
    let m4 = prof.split("\"M4\":[").nth(1).expect("M4 profile");
    assert!(m4.contains("[\"DefaultHandler\","), "{text}");
    assert!(
        text.starts_with("{\"m7_exit\":0,\"m4_exit\":null,"),
        "{text}"
    );
    assert!(text.contains("\"interrupts\":20,"), "{text}");
    assert!(text.contains("\"console\":\"M4: up\\n\""), "{text}");
    let hits = text.split("\"hits\":[").nth(1).expect("probe hits");
    let hits = hits.split("]]").next().expect("end of the hits");
    assert_eq!(hits.matches('[').count(), 20, "{text}");
    // A failing run exits non-zero and names the fault.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duet-emu"))
        .arg(dir.join("fault_m7"))
        .arg("--json")
        .output()
        .expect("run duet-emu");
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("\"error\":\"M7 fault at pc 0x"), "{text}");
}
