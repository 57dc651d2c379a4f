//! Every firmware example pair of firmware/duet-firmware (default board: GIGA R1 WiFi, 1 MB +
//! 1 MB split) on the emulated chip, with the simulator's expectations
//! (crates/duet-sim/tests/examples.rs): the same console lines, the same LED sequences per core.
//! Where the simulator's zero-cost virtual time makes values exact (the potentiometer sampled at
//! whole seconds), the emulator's instruction-accurate timing is allowed a few milliseconds of
//! latency per reading; everything else is exact.

mod common;

use common::{build, run, Run};
use duet_emu::{Config, CoreId, GpioEvent, M4Boot};

const PKG: &str = "duet-firmware";

fn example(name: &str, config: Config) -> Run {
    let dir = build(PKG);
    run(
        &dir,
        &format!("{name}_m7"),
        Some(&format!("{name}_m4")),
        config,
    )
}

/// Runs `name`, checks it ends with M7 exit 0, and returns the run.
fn ok(name: &str) -> Run {
    let r = example(name, Config::default());
    match &r.result {
        Ok(o) => assert_eq!(o.m7_exit, 0, "{name}: console:\n{}{}", r.m7, r.m4),
        Err(e) => panic!("{name}: {e}\nconsole:\n{}{}", r.m7, r.m4),
    }
    r
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// The GIGA R1's LEDs are active low: (ms, lit) of `core`'s changes of `port``pin`, after the
/// initial switch-off the firmware does at start (not an Arduino-visible change).
fn led(events: &[GpioEvent], core: CoreId, port: char, pin: u8) -> Vec<(u64, bool)> {
    let mine: Vec<&GpioEvent> = events.iter().filter(|e| e.core == core).collect();
    assert!(
        mine.iter().all(|e| e.port == port && e.pin == pin),
        "{core} changed another pin: {mine:?}"
    );
    let skip = usize::from(mine.first().is_some_and(|e| e.high));
    mine[skip..]
        .iter()
        .map(|e| (e.time_ns / 1_000_000, !e.high))
        .collect()
}

/// `count` alternating changes starting with "lit", `period` ms apart (each gap at most 3 ms
/// longer: the firmware's millisecond delays plus instruction time).
fn assert_square_wave(changes: &[(u64, bool)], period: u64, count: usize) {
    assert_eq!(changes.len(), count, "{changes:?}");
    for (i, c) in changes.iter().enumerate() {
        assert_eq!(c.1, i % 2 == 0, "{changes:?}");
    }
    for w in changes.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!((period..=period + 3).contains(&gap), "{changes:?}");
    }
}

#[test]
fn blink_each_core_blinks_its_own_led() {
    let r = ok("blink");
    assert_eq!(
        lines(&r.m7),
        [
            "Hello from the M7 (cpu_id 3): blinking the blue LED every 100 ms",
            "Hello from the M4 (cpu_id 1): blinking the green LED every 500 ms",
        ]
    );
    let ev = r.emu.gpio_events();
    assert_square_wave(&led(&ev, CoreId::M7, 'E', 3), 100, 20);
    assert_square_wave(&led(&ev, CoreId::M4, 'J', 13), 500, 4);
    // Every LED ends off (high).
    for core in [CoreId::M7, CoreId::M4] {
        let last = ev.iter().rev().find(|e| e.core == core).expect("changes");
        assert!(last.high, "{core}'s LED ends lit: {ev:?}");
    }
    // Deterministic: a second run gives the same counters and the same LED times.
    let again = ok("blink");
    assert_eq!(r.counters, again.counters);
    assert_eq!(ev, again.emu.gpio_events());
    assert_eq!(r.result, again.result);
}

#[test]
fn serial_lines_arrive_whole_in_order() {
    let r = ok("serial");
    let mut want: Vec<String> = (1..=3)
        .map(|i| format!("Printed from M4 core ({i})"))
        .collect();
    want.extend(
        (1..=12).map(|i| format!("burst {i:02}/12: the quick brown fox jumps over the lazy dog")),
    );
    assert_eq!(lines(&r.m7), want);
}

#[test]
fn sensor_reads_the_potentiometer_every_second() {
    let r = ok("sensor");
    // The simulator's potentiometer: a triangle 0 -> 1023 -> 0 over 8 s, read at 1..5 s.
    let pot = |ms: u64| {
        let t = ms % 8000;
        let up = if t <= 4000 { t } else { 8000 - t };
        up * 1023 / 4000
    };
    let got: Vec<u64> = lines(&r.m7)
        .iter()
        .map(|l| {
            l.strip_prefix("Sensor value: ")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect();
    assert_eq!(got.len(), 5, "{}", r.m7);
    for (k, v) in got.iter().enumerate() {
        let second = 1000 * (k as u64 + 1);
        assert!(
            (second..second + 20).any(|ms| pot(ms) == *v),
            "reading {k}: {v} is not the potentiometer within 20 ms after {second} ms"
        );
    }
    assert!(r.emu.gpio_events().iter().all(|e| e.time_ns < 10_000_000));
}

#[test]
fn servo_follows_the_sweep_clamped() {
    let r = ok("servo");
    let want: Vec<String> = [
        (0, 0),
        (45, 45),
        (90, 90),
        (135, 135),
        (180, 180),
        (90, 90),
        (270, 180),
    ]
    .iter()
    .map(|(a, b)| format!("servoMove({a}): servo at {b} degrees"))
    .collect();
    assert_eq!(lines(&r.m7), want);
    // The pulse on the GIGA's D5 (PA7, TIM3_CH2): 20 ms period; 1 500 µs from attach (before
    // and after the pin is routed), then Arduino's 544..=2 400 µs for each angle of the sweep.
    type Pulse = (u64, u64, Option<(char, u8)>);
    let pulses: Vec<Pulse> = r
        .emu
        .pwm_events()
        .iter()
        .filter(|e| e.core == CoreId::M7 && e.timer == 3 && e.channel == 2)
        .map(|e| (e.period_ns, e.high_ns / 1000, e.pin))
        .collect();
    let pa7 = Some(('A', 7));
    let mut want = vec![(20_000_000, 1_500, None), (20_000_000, 1_500, pa7)];
    want.extend([544, 1_008, 1_472, 1_936, 2_400, 1_472, 2_400].map(|us| (20_000_000, us, pa7)));
    assert_eq!(pulses, want);
    assert!(r
        .emu
        .pwm_events()
        .iter()
        .all(|e| e.timer == 3 && e.channel == 2));
}

#[test]
fn rtc_set_by_the_m4_runs_and_the_m7_prints_it() {
    let r = ok("rtc");
    let want: Vec<String> = (0..=3)
        .map(|s| format!("RTC time (from the M4): Wed Jan  1 00:00:0{s} 2025"))
        .collect();
    assert_eq!(lines(&r.m7), want);
}

#[test]
fn led_host_switches_the_m4s_led() {
    let r = ok("led");
    let want = [
        "led(true) -> the M4's LED is on",
        "led(false) -> the M4's LED is off",
    ]
    .repeat(3);
    assert_eq!(lines(&r.m7), want);
    let ev = r.emu.gpio_events();
    let lit: Vec<bool> = led(&ev, CoreId::M4, 'J', 13).iter().map(|c| c.1).collect();
    assert_eq!(lit, [true, false].repeat(3));
    assert!(
        ev.iter().all(|e| e.core == CoreId::M4),
        "the M7 drives no LED"
    );
}

#[test]
fn m4_not_booted_the_m7_reports_it_after_its_deadline() {
    let config = Config {
        m4_boot: M4Boot::Suppressed,
        ..Config::default()
    };
    let r = example("blink", config);
    let o = r.result.as_ref().expect("the M7 exits by itself");
    assert_ne!(o.m7_exit, 0);
    assert!(
        r.m7.starts_with("the M4 did not come up within 5 s"),
        "{}",
        r.m7
    );
    // The deadline is 5 s of the M7's clock.
    assert!((5_000_000_000..5_100_000_000).contains(&o.time_ns), "{o:?}");
    assert!(!r.counters[1].booted);
}

#[test]
fn bcm4_set_the_m4_boots_by_itself_and_the_example_runs() {
    let config = Config {
        m4_boot: M4Boot::Autoboot,
        ..Config::default()
    };
    let r = example("blink", config);
    assert_eq!(r.result.as_ref().map(|o| o.m7_exit), Ok(0), "{}", r.m7);
    assert!(r.m7.contains("BCM4 option bit is set"), "{}", r.m7);
    assert!(
        r.m7.ends_with("blinking the green LED every 500 ms\n"),
        "{}",
        r.m7
    );
    assert!(r.counters[1].booted);
}

#[test]
fn bench_pair_marks_every_phase_on_both_cores() {
    let dir = build(PKG);
    let load = |n: &str| duet_emu::Image::load(&dir.join(n)).expect("image");
    let (m7, m4) = (load("bench_m7"), load("bench_m4"));
    let sizes = m4.u32_array("DUET_BENCH_SIZES", 3).expect("sizes");
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
    let mut emu = duet_emu::Emulator::new(&m7, Some(&m4), Config::default()).expect("emulator");
    let p7 = emu
        .probe_symbol(CoreId::M7, "duet_bench_mark")
        .expect("probe");
    let p4 = emu
        .probe_symbol(CoreId::M4, "duet_bench_mark")
        .expect("probe");
    let o = emu.run().expect("the benchmark runs to its end");
    assert_eq!(o.m7_exit, 0);
    for p in [p7, p4] {
        let h = emu.probe_hits(p);
        assert_eq!(h.len(), 5, "{h:?}");
        assert!(h.windows(2).all(|w| w[0] < w[1]), "{h:?}");
    }
    // Per call, both cores together spend more than a trivial amount and less than the run.
    let (h7, h4) = (emu.probe_hits(p7), emu.probe_hits(p4));
    let rtt = ((h7[1] - h7[0]) + (h4[1] - h4[0])) / u64::from(sizes[0]);
    assert!((100..1_000_000).contains(&rtt), "{rtt}");
}
