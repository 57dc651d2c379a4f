//! `cargo run --release -p duet-emu --example bench -- BENCH_M7 BENCH_M4 [--profile]`: runs the
//! benchmark firmware pair (`firmware/duet-firmware/src/bin/bench_*.rs`) on the emulated chip and
//! prints one JSON object with the instruction counts of both cores together (what
//! `cargo xtask bench` reports as `emu_*`):
//!
//! - `emu_rtt_instructions`: per `call("add", 1, 2)` round trip M4 -> M7 -> M4;
//! - `emu_notify_instructions`: per notification M4 -> M7;
//! - `emu_stream_instructions_per_kib`: per KiB of RPC serial M4 -> M7;
//! - `*_us_estimate`: the same at one instruction per cycle, M7 at 480 MHz and M4 at 240 MHz
//!   (an estimate: it ignores wait states, and adds the cores' times as if they never overlap).
//!
//! Each phase lies between two calls of `duet_bench_mark` on each core (probed here); the M7
//! marks when the M4's phase notification arrives, so its share includes one notification per
//! phase (0.1% of 1000). With `--profile`, the instructions per function of each core over the
//! whole run go to stderr (where the instructions go).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use duet_emu::{Config, CoreId, Emulator, Image};

/// Phase boundaries each core marks: 1 before the calls, 2 after them (= before the
/// notifications), 3 after the notifications, 4 before the stream, 5 after it.
const MARKS: usize = 5;
/// Core clocks of the estimate, MHz.
const MHZ: [f64; 2] = [480.0, 240.0];

fn main() -> ExitCode {
    let mut files = Vec::new();
    let mut profile = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--profile" => profile = true,
            _ => files.push(PathBuf::from(a)),
        }
    }
    let [m7, m4] = files.as_slice() else {
        eprintln!("usage: bench BENCH_M7 BENCH_M4 [--profile]");
        return ExitCode::from(2);
    };
    match run(m7, m4, profile) {
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

fn run(m7: &Path, m4_path: &Path, profile: bool) -> Result<String, String> {
    let m7 = Image::load(m7)?;
    let m4 = Image::load(m4_path)?;
    let config = Config {
        profile,
        max_time_ns: 20_000_000_000,
        ..Config::default()
    };
    let mut emu = Emulator::new(&m7, Some(&m4), config).map_err(|e| format!("{e:?}"))?;
    let probes = [
        emu.probe_symbol(CoreId::M7, "duet_bench_mark")
            .map_err(|e| format!("{e:?}"))?,
        emu.probe_symbol(CoreId::M4, "duet_bench_mark")
            .map_err(|e| format!("{e:?}"))?,
    ];
    let consoles = |emu: &Emulator| {
        let text = |c| String::from_utf8_lossy(&emu.console(c)).into_owned();
        format!(
            "M7 console:\n{}\nM4 console:\n{}",
            text(CoreId::M7),
            text(CoreId::M4)
        )
    };
    let outcome = emu
        .run()
        .map_err(|e| format!("run failed: {e:?}; {}", consoles(&emu)))?;
    if outcome.m7_exit != 0 {
        return Err(format!(
            "the M7 exited with {}; {}",
            outcome.m7_exit,
            consoles(&emu)
        ));
    }
    let sizes = sizes(&emu, m4_path)?;
    let hits = probes.map(|p| emu.probe_hits(p));
    for (core, h) in ["M7", "M4"].iter().zip(&hits) {
        if h.len() != MARKS {
            return Err(format!(
                "{core} marked {} phase boundaries, not {MARKS}",
                h.len()
            ));
        }
    }
    // Instructions of core `c` from boundary `a` to boundary `b` (1-based).
    let span = |c: usize, a: usize, b: usize| (hits[c][b - 1] - hits[c][a - 1]) as f64;
    let both = |a, b| span(0, a, b) + span(1, a, b);
    let micros = |a, b| span(0, a, b) / MHZ[0] + span(1, a, b) / MHZ[1];
    let [calls, notes, kib] = sizes.map(f64::from);
    let figures = [
        ("emu_rtt_instructions", both(1, 2) / calls),
        ("emu_notify_instructions", both(2, 3) / notes),
        ("emu_stream_instructions_per_kib", both(4, 5) / kib),
        ("emu_rtt_m7_instructions", span(0, 1, 2) / calls),
        ("emu_rtt_m4_instructions", span(1, 1, 2) / calls),
        ("emu_rtt_us_estimate", micros(1, 2) / calls),
        ("emu_notify_us_estimate", micros(2, 3) / notes),
        ("emu_stream_us_per_kib_estimate", micros(4, 5) / kib),
    ];
    if profile {
        for core in [CoreId::M7, CoreId::M4] {
            eprintln!("{core}: instructions per function over the whole run (top 25)");
            for (name, n) in emu.profile(core).into_iter().take(25) {
                eprintln!("  {n:>10}  {name}");
            }
        }
    }
    let body: Vec<String> = figures
        .iter()
        .map(|(k, v)| format!("\"{k}\": {}", (v * 10.0).round() / 10.0))
        .collect();
    Ok(format!("{{{}}}", body.join(", ")))
}

/// `[calls, notifications, stream KiB]` as the M4 image defines them (`DUET_BENCH_SIZES`, a
/// data symbol: `Image` lists functions only, so the ELF's symbol table is read here).
fn sizes(emu: &Emulator, m4: &Path) -> Result<[u32; 3], String> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(m4).map_err(|e| format!("read {}: {e}", m4.display()))?;
    let elf = object::File::parse(&*data).map_err(|e| format!("parse {}: {e}", m4.display()))?;
    let addr = elf
        .symbols()
        .find(|s| s.name() == Ok("DUET_BENCH_SIZES"))
        .map(|s| s.address())
        .ok_or("the M4 image has no DUET_BENCH_SIZES")?;
    let b = u32::try_from(addr)
        .ok()
        .and_then(|a| emu.read_memory(CoreId::M4, a, 12))
        .ok_or("cannot read DUET_BENCH_SIZES")?;
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let s = [word(0), word(4), word(8)];
    if s.contains(&0) {
        return Err(format!("DUET_BENCH_SIZES is {s:?}"));
    }
    Ok(s)
}
