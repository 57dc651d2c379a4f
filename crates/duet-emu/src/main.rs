//! `duet-emu M7.elf [M4.elf] [options]`: runs a firmware pair on the emulated STM32H747 and
//! prints both cores' console output and counters. Exits non-zero if the M7 exits non-zero,
//! a core faults, an unmodelled register is accessed or the run stalls.
//!
//! Options: `--trace` (print register-level events), `--no-m4-boot` (ignore BOOT_C2),
//! `--bcm4` (M4 autoboots), `--max-ms N` (virtual-time budget, default 60000),
//! `--profile` (instructions per function), `--probe M7:SYMBOL` / `--probe M4:SYMBOL`
//! (repeatable: instructions between consecutive entries of that function), `--json` (one JSON
//! object on stdout instead of the text report: exit, time, counters, probe hits, consoles, and
//! with `--profile` every function's instructions per core as
//! `"profile":{"M7":[["name",n],...],"M4":[...]}`, most first),
//! `--profile-window K` (with `--profile` and a `--probe`: the profile printed covers only
//! the instructions between hit K and hit K+1 of the first probe, counted from 0),
//! `--trace-out FILE` (the messages between the cores, doorbells and sleeps as Chrome/Perfetto
//! trace-event JSON; see docs/tracing.md).

use duet_emu::{Config, CoreId, Emulator, Image, M4Boot, RunError};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut config = Config::default();
    let mut files = Vec::new();
    let mut probes: Vec<(CoreId, String)> = Vec::new();
    let mut json = false;
    let mut trace_out: Option<PathBuf> = None;
    let mut window: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trace" => config.trace = true,
            "--no-m4-boot" => config.m4_boot = M4Boot::Suppressed,
            "--bcm4" => config.m4_boot = M4Boot::Autoboot,
            "--profile" => config.profile = true,
            "--json" => json = true,
            "--probe" => {
                let spec = args.next().unwrap_or_default();
                let core = match spec.split_once(':') {
                    Some(("M7" | "m7", name)) => (CoreId::M7, name.to_string()),
                    Some(("M4" | "m4", name)) => (CoreId::M4, name.to_string()),
                    _ => return usage(),
                };
                probes.push(core);
            }
            "--trace-out" => match args.next() {
                Some(f) => trace_out = Some(PathBuf::from(f)),
                None => return usage(),
            },
            "--profile-window" => match args.next().and_then(|v| v.parse::<usize>().ok()) {
                Some(k) => window = Some(k),
                None => return usage(),
            },
            "--max-ms" => match args.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) => config.max_time_ns = ms * 1_000_000,
                None => return usage(),
            },
            _ if a.starts_with("--") => return usage(),
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() || files.len() > 2 {
        return usage();
    }
    let load = |p: &PathBuf| Image::load(p);
    let m7 = match load(&files[0]) {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let m4 = match files.get(1).map(load).transpose() {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let profile = config.profile;
    let trace = config.trace;
    // The doorbells of the traffic trace come from the register trace.
    config.trace |= trace_out.is_some();
    let mut emu = match Emulator::new(&m7, m4.as_ref(), config) {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string()),
    };
    let mut ids = Vec::new();
    for (core, name) in &probes {
        match emu.probe_symbol(*core, name) {
            Ok(id) => ids.push(id),
            Err(e) => return fail(&e.to_string()),
        }
    }
    if trace_out.is_some() {
        emu.record_traffic();
    }
    let result = emu.run();
    if let Some(path) = &trace_out {
        let timeline = duet_trace::Timeline::build(&emu.traffic());
        if let Err(e) = std::fs::write(path, duet_trace::chrome::write(&timeline)) {
            return fail(&format!("{}: {e}", path.display()));
        }
        eprintln!(
            "duet-emu: trace of {} messages written to {} (open it in https://ui.perfetto.dev)",
            timeline.messages.len(),
            path.display()
        );
    }
    if json {
        println!("{}", report_json(&emu, &result, &probes, &ids, profile));
        return match result {
            Ok(o) if o.m7_exit == 0 => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        };
    }
    for core in [CoreId::M7, CoreId::M4] {
        let out = emu.console(core);
        if !out.is_empty() {
            println!("--- {core} console ---");
            print!("{}", String::from_utf8_lossy(&out));
            if !out.ends_with(b"\n") {
                println!();
            }
        }
    }
    if trace {
        println!("--- trace ---");
        for t in emu.trace() {
            println!("{:>12} ns {} {}", t.time_ns, t.core, t.what);
        }
    }
    println!("--- counters ---");
    println!(
        "{:<4} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "core", "instructions", "in handlers", "cycles", "asleep", "interrupts"
    );
    for core in [CoreId::M7, CoreId::M4] {
        let c = emu.counters(core);
        if !c.booted {
            println!("{core:<4} not booted");
            continue;
        }
        println!(
            "{:<4} {:>12} {:>12} {:>12} {:>12} {:>10}",
            core.to_string(),
            c.instructions,
            c.handler_instructions,
            c.cycles,
            c.asleep_cycles,
            c.interrupts
        );
    }
    for ((core, name), id) in probes.iter().zip(&ids) {
        let hits = emu.probe_hits_both(*id);
        let own: Vec<u64> = hits.iter().map(|h| h[*core as usize]).collect();
        let both: Vec<u64> = hits.iter().map(|h| h[0] + h[1]).collect();
        println!(
            "probe {core}:{name}: {} hits; instructions between consecutive hits: {} \
             (this core), {} (both cores)",
            hits.len(),
            spread(&own),
            spread(&both)
        );
    }
    if profile {
        for core in [CoreId::M7, CoreId::M4] {
            let rows = match (window, ids.first()) {
                (None, _) => emu.profile(core),
                (Some(k), Some(&id)) => match emu.profile_between(id, k, core) {
                    Some(rows) => {
                        println!("--- {core} profile between hits {k} and {} ---", k + 1);
                        rows
                    }
                    None => return fail(&format!("the first probe has no hits {k} and {}", k + 1)),
                },
                (Some(_), None) => return fail("--profile-window needs a --probe"),
            };
            let total: u64 = rows.iter().map(|r| r.1).sum();
            println!("--- {core} profile (instructions per function; {total} in all) ---");
            for (name, n) in rows.iter().take(usize::MAX) {
                println!("{n:>12} {name}");
            }
        }
    }
    match result {
        Ok(o) => {
            println!(
                "M7 exit {}{} at {} us",
                o.m7_exit,
                o.m4_exit
                    .map_or(String::new(), |c| format!(", M4 exit {c}")),
                o.time_ns / 1000
            );
            if o.m7_exit == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let at = match &e {
                RunError::Fault { core, pc, .. } | RunError::Unmodelled { core, pc, .. } => {
                    let img = if *core == CoreId::M7 {
                        Some(&m7)
                    } else {
                        m4.as_ref()
                    };
                    img.and_then(|i| i.symbol_at(*pc))
                        .map(|s| format!(" (in {})", s.name))
                }
                _ => None,
            };
            fail(&format!("{e}{}", at.unwrap_or_default()))
        }
    }
}

/// "min / median / max" of the differences of consecutive values, or "-".
fn spread(v: &[u64]) -> String {
    let mut d: Vec<u64> = v.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return "-".into();
    }
    d.sort_unstable();
    format!("{} / {} / {}", d[0], d[d.len() / 2], d[d.len() - 1])
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn report_json(
    emu: &Emulator,
    result: &Result<duet_emu::Outcome, RunError>,
    probes: &[(CoreId, String)],
    ids: &[duet_emu::ProbeId],
    profile: bool,
) -> String {
    let mut parts = Vec::new();
    match result {
        Ok(o) => {
            parts.push(format!("\"m7_exit\":{}", o.m7_exit));
            parts.push(format!(
                "\"m4_exit\":{}",
                o.m4_exit.map_or("null".into(), |c| c.to_string())
            ));
            parts.push(format!("\"time_ns\":{}", o.time_ns));
        }
        Err(e) => parts.push(format!("\"error\":{}", json_str(&e.to_string()))),
    }
    let mut cores = Vec::new();
    for core in [CoreId::M7, CoreId::M4] {
        let c = emu.counters(core);
        cores.push(format!(
            "{}:{{\"booted\":{},\"instructions\":{},\"handler_instructions\":{},\"cycles\":{},\"asleep_cycles\":{},\"interrupts\":{},\"console\":{}}}",
            json_str(&core.to_string()),
            c.booted,
            c.instructions,
            c.handler_instructions,
            c.cycles,
            c.asleep_cycles,
            c.interrupts,
            json_str(&String::from_utf8_lossy(&emu.console(core)))
        ));
    }
    parts.push(format!("\"cores\":{{{}}}", cores.join(",")));
    let mut ps = Vec::new();
    for ((core, name), id) in probes.iter().zip(ids) {
        let hits: Vec<String> = emu
            .probe_hits_both(*id)
            .iter()
            .map(|h| format!("[{},{}]", h[0], h[1]))
            .collect();
        ps.push(format!(
            "{{\"core\":{},\"symbol\":{},\"hits\":[{}]}}",
            json_str(&core.to_string()),
            json_str(name),
            hits.join(",")
        ));
    }
    parts.push(format!("\"probes\":[{}]", ps.join(",")));
    if profile {
        let per_core: Vec<String> = [CoreId::M7, CoreId::M4]
            .iter()
            .map(|&core| {
                let rows: Vec<String> = emu
                    .profile(core)
                    .iter()
                    .map(|(name, n)| format!("[{},{n}]", json_str(name)))
                    .collect();
                format!("{}:[{}]", json_str(&core.to_string()), rows.join(","))
            })
            .collect();
        parts.push(format!("\"profile\":{{{}}}", per_core.join(",")));
    }
    format!("{{{}}}", parts.join(","))
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("duet-emu: {msg}");
    ExitCode::FAILURE
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: duet-emu M7.elf [M4.elf] [--trace] [--no-m4-boot] [--bcm4] [--max-ms N] \
         [--profile [--profile-window K]] [--probe M7:SYMBOL|M4:SYMBOL]... [--json] \
         [--trace-out FILE]"
    );
    ExitCode::from(2)
}
