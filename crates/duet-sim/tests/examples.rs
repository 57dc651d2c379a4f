//! Each example of the dual-core guide runs on the simulator and prints what the guide's
//! Serial Monitor would show: content and order of the lines are checked, exactly where the
//! output is deterministic; hardware changes are checked per core (the two cores' changes
//! interleave in real time, but each core's own sequence and clock are fixed).
#![allow(clippy::result_large_err)]

use std::process::Command;

use duet_sim::board::{ctime, Change, Console, Event, Peripherals, Source, LEDB, LEDG};
use duet_sim::examples::{self, Example, ExampleError, EXAMPLES};
use duet_sim::machine::{M4, M7};
use duet_sim::CpuId;

/// Runs the example called `name` on a quiet console at the default speed.
fn run(name: &str) -> Peripherals {
    let e = examples::find(name).expect("example exists");
    let console = Console::new(false);
    examples::run(e, &console, duet_sim::board::DEFAULT_SPEED)
        .unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn monitor(hw: &Peripherals) -> Vec<String> {
    hw.console().monitor()
}

fn events_of(hw: &Peripherals, core: CpuId) -> Vec<Event> {
    hw.events().into_iter().filter(|e| e.core == core).collect()
}

/// `(clock, lit)` of every LED change of `core`, checking they are all on `pin`.
fn led_changes(hw: &Peripherals, core: CpuId, pin: duet_sim::board::Pin) -> Vec<(u64, bool)> {
    events_of(hw, core)
        .into_iter()
        .map(|e| match e.change {
            Change::Led { pin: p, on } if p == pin => (e.at_ms, on),
            other => panic!("{core:?} made an unexpected change: {other:?}"),
        })
        .collect()
}

/// On at 0, off at `period`, on at `2 * period`, ... `count` changes.
fn square_wave(period: u64, count: u64) -> Vec<(u64, bool)> {
    (0..count).map(|i| (i * period, i % 2 == 0)).collect()
}

#[test]
fn blink_each_core_blinks_its_own_led_chosen_by_cpu_id() {
    let hw = run("blink");
    assert_eq!(
        monitor(&hw),
        [
            "Hello from the M7 (cpu_id 3): blinking the blue LED every 100 ms",
            "Hello from the M4 (cpu_id 1): blinking the green LED every 500 ms",
        ]
    );
    assert_eq!(led_changes(&hw, CpuId::Cm7, LEDB), square_wave(100, 20));
    assert_eq!(led_changes(&hw, CpuId::Cm4, LEDG), square_wave(500, 4));
    assert_eq!(hw.leds_lit(), [false, false, false], "every LED ends off");
}

#[test]
fn serial_m4_lines_arrive_whole_in_order_nothing_lost() {
    let hw = run("serial");
    let mut want: Vec<String> = (1..=examples::serial::SLOW_LINES)
        .map(|i| format!("Printed from M4 core ({i})"))
        .collect();
    want.extend((1..=examples::serial::BURST_LINES).map(examples::serial::burst_line));
    assert_eq!(monitor(&hw), want);
    // The burst is larger than one transport buffer, so it really was split and rejoined.
    let burst: usize = want.iter().map(|l| l.len() + 1).sum();
    assert!(burst > 496, "{burst}");
}

#[test]
fn sensor_m4_reads_a0_through_the_m7_every_second() {
    let hw = run("sensor");
    // The potentiometer is a triangle over 8 s: 1023 * t / 4000 ms on the way up.
    assert_eq!(
        monitor(&hw),
        [
            "Sensor value: 255",
            "Sensor value: 511",
            "Sensor value: 767",
            "Sensor value: 1023",
            "Sensor value: 767",
        ]
    );
    assert!(hw.events().is_empty(), "reading A0 changes nothing");
}

#[test]
fn servo_follows_the_m4s_sweep_clamped() {
    let hw = run("servo");
    assert_eq!(
        monitor(&hw),
        [
            "servoMove(0): servo at 0 degrees",
            "servoMove(45): servo at 45 degrees",
            "servoMove(90): servo at 90 degrees",
            "servoMove(135): servo at 135 degrees",
            "servoMove(180): servo at 180 degrees",
            "servoMove(90): servo at 90 degrees",
            "servoMove(270): servo at 180 degrees",
        ]
    );
    let moves: Vec<(u64, u8)> = events_of(&hw, CpuId::Cm7)
        .into_iter()
        .map(|e| match e.change {
            Change::Servo(a) => (e.at_ms, a),
            other => panic!("unexpected change {other:?}"),
        })
        .collect();
    let angles: Vec<u8> = moves.iter().map(|m| m.1).collect();
    assert_eq!(angles, [0, 45, 90, 135, 180, 90, 180]);
    // The M7 only serves; idling brings its clock up to the M4's (which waits 500 ms per
    // step), at the latest by the time the M4's next call arrives.
    assert!(moves.windows(2).all(|w| w[0].0 <= w[1].0), "{moves:?}");
    assert!(
        moves.iter().all(|m| m.0 % 500 == 0 && m.0 <= 3000),
        "{moves:?}"
    );
    assert_eq!(hw.chip_ms(), 500 * examples::servo::SWEEP.len() as u64);
    assert_eq!(hw.servo_angle(), Some(180));
    assert!(events_of(&hw, CpuId::Cm4).is_empty());
}

#[test]
fn rtc_set_by_the_m4_runs_and_the_m7_prints_it() {
    let hw = run("rtc");
    let start = examples::rtc::START;
    assert_eq!(ctime(start), "Wed Jan  1 00:00:00 2025");
    let want: Vec<String> = (0..=i64::from(examples::rtc::READINGS))
        .map(|s| format!("RTC time (from the M4): {}", ctime(start + s)))
        .collect();
    assert_eq!(monitor(&hw), want);
    let ev = hw.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].core, ev[0].change),
        (CpuId::Cm4, Change::RtcSet(start))
    );
}

#[test]
fn led_host_switches_the_m4s_led() {
    let hw = run("led");
    let want: Vec<&str> = [
        "led(true) -> the M4's LED is on",
        "led(false) -> the M4's LED is off",
    ]
    .repeat(examples::led::TOGGLES as usize);
    assert_eq!(monitor(&hw), want);
    let changes = led_changes(&hw, CpuId::Cm4, LEDG);
    let lit: Vec<bool> = changes.iter().map(|c| c.1).collect();
    assert_eq!(lit, [true, false].repeat(examples::led::TOGGLES as usize));
    assert!(
        events_of(&hw, CpuId::Cm7).is_empty(),
        "the M7 drives no LED"
    );
    assert_eq!(hw.leds_lit(), [false, false, false]);
}

#[test]
fn objects_methods_by_qualified_name_and_async_calls_joined() {
    let hw = run("objects");
    assert_eq!(
        monitor(&hw),
        [
            "call(\"foo1.add\", 1, 2) = 3",
            "4 calls in flight",
            "call_async(\"foo1.add\", 10, 5).join() = 15",
            "call_async(\"foo1.sub\", 10, 5).join() = 5",
            "call_async(\"foo2.add\", 100, 23).join() = 123",
            "call_async(\"foo2.sub\", 100, 23).join() = 77",
            "foo1 served 3 calls, foo2 served 2",
        ]
    );
}

#[test]
fn errors_are_values_timeouts_return_big_messages_whole() {
    let hw = run("errors");
    assert_eq!(
        monitor(&hw),
        [
            "call(\"nope\", 1) -> error: unknown method: rpclib: server could not find \
             function 'nope' with argument count 1.",
            "call(\"add\", \"two\", 2) -> error: wrong argument type: duet: wrong argument \
             type for function 'add': argument 1: unexpected MessagePack type",
            "call(\"slow\") with a 100 ms timeout -> error: timed out waiting for the reply",
            "call(\"add\", 2, 2) -> 4",
            "late replies dropped so far: 1",
            "call(\"length\", <1200 bytes>) -> 1200 bytes arrived",
            "call(\"repeat\", \"ab\", 600) -> 1200 bytes back, all \"ab\": true",
            "call(\"length\", <4000 bytes>) -> error: message too large (over the 2048-byte limit)",
        ]
    );
}

#[test]
fn demo_runs_every_example_in_order_and_finishes() {
    let console = Console::new(false);
    examples::demo(&console, duet_sim::board::DEFAULT_SPEED).expect("demo");
    let headers: Vec<String> = console
        .texts(Source::Demo)
        .into_iter()
        .filter(|l| l.starts_with("=== "))
        .collect();
    let want: Vec<String> = EXAMPLES
        .iter()
        .map(|e| format!("=== {}: {} ===", e.name, e.title))
        .collect();
    assert_eq!(headers, want);
    let lines = console.lines();
    assert_eq!(
        lines.last().map(|l| l.text.as_str()),
        Some("all 8 examples done")
    );
    // Each example's first Serial Monitor line comes after its own header.
    let pos = |text: &str| lines.iter().position(|l| l.text == text).expect(text);
    assert!(pos("Sensor value: 255") > pos(&want[2]));
    assert!(pos("Sensor value: 255") < pos(&want[3]));
    assert!(pos("call(\"foo1.add\", 1, 2) = 3") > pos(&want[6]));
}

fn m7_boots_nothing(core: M7) -> examples::Outcome {
    let mut boot = core.boot;
    let mut rpc: duet_sim::machine::M7Rpc<'_> = duet::Rpc::new(core.transport);
    rpc.start(&mut boot, 0x0812_0000, std::time::Duration::from_millis(20))?;
    Ok(())
}

fn m7_serves(core: M7) -> examples::Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let mut rpc: duet_sim::machine::M7Rpc<'_> = duet::Rpc::new(transport);
    rpc.start(&mut boot, 0x0810_0000, examples::BOOT_TIMEOUT)?;
    examples::m7_serve(&mut rpc, &boot, &board, &serial, examples::BOOT_TIMEOUT)?;
    Ok(())
}

fn m4_calls_unbound(core: M4) -> examples::Outcome {
    let mut rpc: duet_sim::machine::M4Rpc<'_> = duet::Rpc::new(core.transport);
    examples::m4_begin(&mut rpc)?;
    rpc.call::<i32, _>("missing", ())?;
    Ok(())
}

#[test]
fn a_failing_program_is_reported_as_an_error_value() {
    let console = Console::new(false);
    let never_up = Example {
        name: "never-up",
        title: "",
        m4_address: 0x0810_0000,
        m7: m7_boots_nothing,
        m4: m4_calls_unbound,
    };
    let r = examples::run(&never_up, &console, 1000);
    assert_eq!(
        r.err(),
        Some(ExampleError::M7(duet::Error::NotReady.to_string()))
    );

    let unbound = Example {
        m7: m7_serves,
        ..never_up
    };
    match examples::run(&unbound, &console, 1000) {
        Err(ExampleError::M4(e)) => assert!(e.contains("'missing'"), "{e}"),
        other => panic!("expected the M4's error, got {:?}", other.err()),
    }
}

fn m7_serves_briefly(core: M7) -> examples::Outcome {
    let M7 {
        transport,
        mut boot,
        board,
        serial,
        ..
    } = core;
    let mut rpc: duet_sim::machine::M7Rpc<'_> = duet::Rpc::new(transport);
    rpc.start(&mut boot, 0x0810_0000, examples::BOOT_TIMEOUT)?;
    let limit = std::time::Duration::from_millis(200);
    examples::m7_serve(&mut rpc, &boot, &board, &serial, limit)?;
    Ok(())
}

fn m4_serves_until_power_off(core: M4) -> examples::Outcome {
    let mut rpc: duet_sim::machine::M4Rpc<'_> = duet::Rpc::new(core.transport);
    examples::m4_begin(&mut rpc)?;
    examples::m4_serve(&mut rpc, &core.board)?;
    Ok(())
}

/// An M4 program that never ends makes the M7's serve loop give up with an error value
/// (instead of waiting forever); the M4 then stops with the power.
#[test]
fn m7_serve_gives_up_when_the_m4_runs_past_its_limit() {
    let console = Console::new(false);
    let endless = Example {
        name: "endless",
        title: "",
        m4_address: 0x0810_0000,
        m7: m7_serves_briefly,
        m4: m4_serves_until_power_off,
    };
    let limit = std::time::Duration::from_millis(200);
    assert_eq!(
        examples::run(&endless, &console, 1000).err(),
        Some(ExampleError::M7(
            examples::M4StillRunning { limit }.to_string()
        ))
    );
}

#[test]
fn the_command_line_lists_and_runs_the_examples() {
    let exe = env!("CARGO_BIN_EXE_duet-sim");
    let help = Command::new(exe)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for e in &EXAMPLES {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{} ", e.name))),
            "--help does not list {}:\n{help}",
            e.name
        );
    }
    assert!(help.contains("stress") && help.contains("shm-image"));

    let out = Command::new(exe)
        .arg("sensor")
        .output()
        .expect("run sensor");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let values: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Sensor value: "))
        .collect();
    assert_eq!(
        values,
        [
            "Sensor value: 255",
            "Sensor value: 511",
            "Sensor value: 767",
            "Sensor value: 1023",
            "Sensor value: 767"
        ]
    );
}

/// The numbers of a `[core stats]` line: `(rpc sent, rpc recv, raw sent, raw recv)` as
/// `(messages, bytes)`, `(calls ok, calls failed)`, doorbells rung, and the whole line.
type StatsLine = ([(u32, u32); 4], (u32, u32), u32, String);

fn stats_line(hw: &Peripherals, core: &str) -> StatsLine {
    let tag = format!("[{core} stats] ");
    let lines: Vec<String> = hw
        .console()
        .texts(Source::Stats)
        .into_iter()
        .filter(|l| l.starts_with(&tag))
        .collect();
    assert_eq!(lines.len(), 1, "one stats line per core: {lines:?}");
    let line = lines[0].clone();
    let words: Vec<&str> = line.split([' ', ';']).filter(|w| !w.is_empty()).collect();
    let after = |i: usize| words[i + 1];
    let pair = |w: &str| {
        let (m, b) = w.split_once('/').expect("messages/bytes");
        (m.parse().unwrap(), b.parse().unwrap())
    };
    let mut traffic = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if (*w == "sent" || *w == "recv") && after(i).contains('/') {
            traffic.push(pair(after(i)));
        }
    }
    let at = |word: &str| words.iter().position(|w| *w == word).expect(word);
    let ok = words[at("ok") - 1].parse().unwrap();
    let failed = words[at("failed") - 1].parse().unwrap();
    let rung = words[at("rung") - 1].parse().unwrap();
    (
        traffic.try_into().expect("four traffic pairs"),
        (ok, failed),
        rung,
        line,
    )
}

#[test]
fn every_example_reports_counters_that_agree_between_the_cores() {
    for e in &EXAMPLES {
        let hw = run(e.name);
        let (m7, _, m7_rung, l7) = stats_line(&hw, "M7");
        let (m4, _, m4_rung, l4) = stats_line(&hw, "M4");
        // What one core sent on an endpoint is what the other received, byte for byte
        // (raw receipt counts payloads: a line may be split, never more bytes).
        assert_eq!(m7[0], m4[1], "{}: rpc M7 -> M4\n{l7}\n{l4}", e.name);
        assert_eq!(m4[0], m7[1], "{}: rpc M4 -> M7\n{l7}\n{l4}", e.name);
        assert_eq!(m7[2].1, m4[3].1, "{}: raw M7 -> M4 bytes", e.name);
        assert_eq!(m4[2].1, m7[3].1, "{}: raw M4 -> M7 bytes", e.name);
        assert_eq!(
            m7_rung,
            m7[0].0 + m7[2].0,
            "{}: one doorbell per message",
            e.name
        );
        assert_eq!(
            m4_rung,
            m4[0].0 + m4[2].0,
            "{}: one doorbell per message",
            e.name
        );
    }
    // Who calls whom, and how it ends.
    let calls = |name: &str, core: &str| stats_line(&run(name), core).1;
    assert_eq!(
        calls("sensor", "M4"),
        (examples::sensor::READINGS, 0),
        "sensorRead"
    );
    assert_eq!(calls("sensor", "M7"), (0, 0));
    assert_eq!(calls("objects", "M7"), (7, 0), "1 call, 4 async, 2 counts");
    let (_, (ok, failed), _, line) = stats_line(&run("errors"), "M7");
    assert_eq!((ok, failed), (3, 4), "{line}");
    for part in [
        "remote errors 2",
        "timeouts 1",
        "refused 1",
        "late replies 1",
    ] {
        assert!(line.contains(part), "{part}: {line}");
    }
}
