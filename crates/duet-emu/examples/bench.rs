//! `cargo run -p duet-emu --example bench -- bench_m7 bench_m4`: runs duet-firmware's benchmark
//! pair on the emulated chip and prints one JSON object of instruction counts (what
//! `cargo xtask bench` reads as its `emu_*` figures).
//!
//! Both images call `duet_bench_mark(phase)` at the phase boundaries 1..=5 (see
//! firmware/duet-firmware/src/bin/bench_m4.rs); a probe on that symbol records each core's exact
//! instruction count at every call. A phase's cost is the sum over both cores of the
//! instructions between their own marks, divided by the phase's size (`DUET_BENCH_SIZES` in the
//! image: calls, notifications, KiB streamed).

use duet_emu::{Config, CoreId, Emulator, Image};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [m7, m4] = args.as_slice() else {
        return Err("usage: bench BENCH_M7.elf BENCH_M4.elf".into());
    };
    let m7 = Image::load(m7.as_ref())?;
    let m4 = Image::load(m4.as_ref())?;
    let sizes = m4
        .u32_array("DUET_BENCH_SIZES", 3)
        .ok_or("the M4 image has no DUET_BENCH_SIZES")?;
    let (calls, notes, kib) = (sizes[0] as f64, sizes[1] as f64, sizes[2] as f64);
    let mut emu = Emulator::new(&m7, Some(&m4), Config::default()).map_err(|e| e.to_string())?;
    let p7 = emu
        .probe_symbol(CoreId::M7, "duet_bench_mark")
        .map_err(|e| e.to_string())?;
    let p4 = emu
        .probe_symbol(CoreId::M4, "duet_bench_mark")
        .map_err(|e| e.to_string())?;
    let outcome = emu.run().map_err(|e| {
        format!(
            "{e}\nM7 console:\n{}",
            String::from_utf8_lossy(&emu.console(CoreId::M7))
        )
    })?;
    if outcome.m7_exit != 0 {
        return Err(format!(
            "the M7 exited with {}\n{}",
            outcome.m7_exit,
            String::from_utf8_lossy(&emu.console(CoreId::M7))
        ));
    }
    let (h7, h4) = (emu.probe_hits(p7), emu.probe_hits(p4));
    if h7.len() != 5 || h4.len() != 5 {
        return Err(format!(
            "expected 5 marks per core, got M7 {} and M4 {}",
            h7.len(),
            h4.len()
        ));
    }
    // Instructions of each core between marks `a` and `b` (1-based phases).
    let d = |h: &[u64], a: usize, b: usize| (h[b - 1] - h[a - 1]) as f64;
    let phase = |a: usize, b: usize, n: f64| (d(&h7, a, b) / n, d(&h4, a, b) / n);
    let hz = emu.core_hz();
    let (rtt7, rtt4) = phase(1, 2, calls);
    let (not7, not4) = phase(2, 3, notes);
    let (str7, str4) = phase(4, 5, kib);
    // Estimates at one instruction per cycle on the contract's 480 MHz M7 / 240 MHz M4.
    let us = |m7: f64, m4: f64| m7 / 480.0 + m4 / 240.0;
    let keys = [
        ("emu_rtt_instructions", rtt7 + rtt4),
        ("emu_rtt_instructions_m7", rtt7),
        ("emu_rtt_instructions_m4", rtt4),
        ("emu_notify_instructions", not7 + not4),
        ("emu_notify_instructions_m7", not7),
        ("emu_notify_instructions_m4", not4),
        ("emu_stream_instructions_per_kib", str7 + str4),
        ("emu_stream_instructions_per_kib_m7", str7),
        ("emu_stream_instructions_per_kib_m4", str4),
        ("emu_rtt_us_estimate", us(rtt7, rtt4)),
        ("emu_notify_us_estimate", us(not7, not4)),
        ("emu_stream_us_per_kib_estimate", us(str7, str4)),
        (
            "emu_total_instructions_m7",
            emu.counters(CoreId::M7).instructions as f64,
        ),
        (
            "emu_total_instructions_m4",
            emu.counters(CoreId::M4).instructions as f64,
        ),
        ("emu_virtual_time_ms", outcome.time_ns as f64 / 1e6),
        ("emu_core_hz_m7", hz[0] as f64),
        ("emu_core_hz_m4", hz[1] as f64),
    ];
    let body: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("\"{k}\":{}", (v * 100.0).round() / 100.0))
        .collect();
    Ok(format!("{{{}}}", body.join(",")))
}
