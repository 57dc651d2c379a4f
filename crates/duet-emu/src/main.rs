//! `duet-emu M7.elf [M4.elf] [options]`: runs a firmware pair on the emulated STM32H747 and
//! prints both cores' console output and counters. Exits non-zero if the M7 exits non-zero,
//! a core faults, an unmodelled register is accessed or the run stalls.
//!
//! Options: `--trace` (print register-level events), `--no-m4-boot` (ignore BOOT_C2),
//! `--bcm4` (M4 autoboots), `--max-ms N` (virtual-time budget, default 60000),
//! `--profile` (instructions per function).

use duet_emu::{Config, CoreId, Emulator, Image, M4Boot, RunError};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut config = Config::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trace" => config.trace = true,
            "--no-m4-boot" => config.m4_boot = M4Boot::Suppressed,
            "--bcm4" => config.m4_boot = M4Boot::Autoboot,
            "--profile" => config.profile = true,
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
    let mut emu = match Emulator::new(&m7, m4.as_ref(), config) {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string()),
    };
    let result = emu.run();
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
    if profile {
        for core in [CoreId::M7, CoreId::M4] {
            println!("--- {core} profile (instructions per function) ---");
            for (name, n) in emu.profile(core).iter().take(25) {
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

fn fail(msg: &str) -> ExitCode {
    eprintln!("duet-emu: {msg}");
    ExitCode::FAILURE
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: duet-emu M7.elf [M4.elf] [--trace] [--no-m4-boot] [--bcm4] [--max-ms N] [--profile]"
    );
    ExitCode::from(2)
}
