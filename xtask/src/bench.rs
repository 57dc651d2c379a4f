//! `cargo xtask bench [--json]`: every performance figure of issue 7 in one run.
//!
//! - the simulator, the physical floor and the peers: the `duet-bench` binary (release build),
//!   which measures them in alternating rounds and reports medians and ratios;
//! - the sizes: `cargo xtask size --json` (the `size_*` keys), when that command supports it;
//! - the emulated chip's instruction counts (the `emu_*` keys), when the emulator exists.
//!
//! Prints a table, or with `--json` one JSON object with every key on stdout (progress on
//! stderr). A figure whose source is missing is left out (the table says why).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::root;

/// Options of `cargo xtask bench`.
#[derive(Default)]
pub struct Options {
    /// Print one JSON object instead of the table.
    pub json: bool,
    /// `--plot DIR`: also write pictures of the samples there (see `plot.rs`).
    pub plot: Option<PathBuf>,
}

impl Options {
    /// Parses the arguments after `bench`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--json" => o.json = true,
                "--plot" => {
                    let dir = it.next().ok_or("--plot needs a directory")?;
                    o.plot = Some(PathBuf::from(dir));
                }
                other => return Err(format!("bench: unknown argument {other:?}")),
            }
        }
        Ok(o)
    }
}

/// One figure: key, value, unit, meaning.
struct Figure {
    key: String,
    value: f64,
    unit: &'static str,
    what: String,
}

/// Units and meanings of the keys the sources report (a key not listed is shown bare).
const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    (
        "sim_rtt_ns",
        "ns",
        "simulator: call(\"add\", 1, 2) round trip M7 -> M4 -> M7, two threads on two CPUs",
    ),
    (
        "sim_pingpong_ns",
        "ns",
        "floor: bare cache-line ping-pong round trip between the same two threads",
    ),
    (
        "sim_rtt_over_pingpong",
        "x",
        "sim_rtt_ns / sim_pingpong_ns (median of per-round ratios; target <= 3)",
    ),
    (
        "sim_rtt_one_thread_ns",
        "ns",
        "simulator: the same round trip with both cores driven by one thread (CPU cost)",
    ),
    (
        "sim_stream_mbps",
        "MB/s",
        "simulator: Serial byte stream M4 -> M7, 4 KiB writes and reads",
    ),
    (
        "memcpy_ring_mbps",
        "MB/s",
        "floor: bare SPSC memcpy ring (32 KiB) between the same two threads",
    ),
    (
        "sim_stream_over_memcpy_ring",
        "x",
        "sim_stream_mbps / memcpy_ring_mbps (median of per-round ratios)",
    ),
    (
        "peer_socket_rtt_ns",
        "ns",
        "peer: the msgpack-rpc crate (tokio) add(1, 2) round trip over a Unix socket",
    ),
    (
        "peer_channel_rtt_ns",
        "ns",
        "peer: std::sync::mpsc request/reply round trip between two threads",
    ),
    (
        "codec_pair_over_rmp_serde",
        "x",
        "duet-codec / rmp-serde time, both sides of add(a, b), one thread",
    ),
    (
        "size_transport_text",
        "B",
        "size: .text of the transport (duet-rpmsg) on the M4",
    ),
    (
        "size_codec_text",
        "B",
        "size: .text of the codec (duet-codec) on the M4",
    ),
    (
        "size_stack_text",
        "B",
        "size: .text of the whole stack on the M4 (target <= 8192)",
    ),
    (
        "size_stack_bss",
        "B",
        "size: .bss of the whole stack on the M4",
    ),
    (
        "size_transport_m7_text",
        "B",
        "size: .text of the transport on the M7 (host role)",
    ),
    (
        "size_stack_m7_text",
        "B",
        "size: .text of the whole stack on the M7",
    ),
    (
        "size_stack_m7_bss",
        "B",
        "size: .bss of the whole stack on the M7",
    ),
    (
        "emu_rtt_instructions",
        "instr",
        "emulator: both cores, one add(1, 2) round trip M4 -> M7 -> M4 (target <= 2000)",
    ),
    (
        "emu_notify_instructions",
        "instr",
        "emulator: both cores, one notification M4 -> M7",
    ),
    (
        "emu_stream_instructions_per_kib",
        "instr",
        "emulator: both cores, per KiB streamed M4 -> M7 (target <= 1500)",
    ),
    (
        "emu_rtt_us_estimate",
        "us",
        "estimate: emu_rtt_instructions at 1 instruction/cycle, M7 480 MHz, M4 240 MHz",
    ),
    (
        "emu_notify_us_estimate",
        "us",
        "estimate: emu_notify_instructions converted the same way",
    ),
    (
        "emu_stream_us_per_kib_estimate",
        "us",
        "estimate: emu_stream_instructions_per_kib converted the same way",
    ),
];

fn figure(key: &str, value: f64) -> Figure {
    let (unit, what) = DESCRIPTIONS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(("", String::new()), |(_, u, w)| (*u, (*w).to_string()));
    Figure {
        key: key.to_string(),
        value,
        unit,
        what,
    }
}

/// Runs `cargo xtask bench` with `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let mut figures = Vec::new();
    let mut missing: Vec<String> = Vec::new();

    // 1. Simulator, floor and peers.
    let out = run_capture(
        cargo_command()
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "duet-bench",
                "--bin",
                "duet-bench",
                "--",
                "--json",
            ])
            .current_dir(root()),
        "cargo run -p duet-bench",
    )?;
    let sim = json_numbers(&out);
    if sim.is_empty() {
        return Err(format!("duet-bench printed no figures: {out:?}"));
    }
    figures.extend(sim.into_iter().map(|(k, v)| figure(&k, v)));

    // 2. Sizes, from `cargo xtask size --json` (this same binary).
    let exe = std::env::current_exe().map_err(|e| format!("xtask's own path: {e}"))?;
    let size = Command::new(exe)
        .args(["size", "--json", "--no-check"])
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output();
    let sizes: Vec<(String, f64)> = match size {
        Ok(o) if o.status.success() => json_numbers(&String::from_utf8_lossy(&o.stdout))
            .into_iter()
            // The summary keys (per-probe details stay in `cargo xtask size --json`).
            .filter(|(k, _)| k.starts_with("size_") && !k.starts_with("size_probe_"))
            .collect(),
        _ => Vec::new(),
    };
    if sizes.is_empty() {
        missing.push("size_*: `cargo xtask size --json` gave no size_* keys".into());
    }
    figures.extend(sizes.into_iter().map(|(k, v)| figure(&k, v)));

    // 3. The emulated chip: instruction counts of the benchmark firmware pair.
    match emu_figures() {
        Ok(emu) if !emu.is_empty() => figures.extend(emu.into_iter().map(|(k, v)| figure(&k, v))),
        Ok(_) => missing.push("emu_*: the emulator printed no figures".into()),
        Err(e) => missing.push(format!("emu_*: {e}")),
    }

    // `--plot DIR`: pictures of the samples (see `plot.rs`).
    if let Some(dir) = &opts.plot {
        let (paths, not_drawn) = crate::plot::write(dir)?;
        for path in paths {
            eprintln!("bench: wrote {}", path.display());
        }
        missing.extend(not_drawn.into_iter().map(|m| format!("--plot: {m}")));
    }

    if opts.json {
        let body: Vec<String> = figures
            .iter()
            .map(|f| format!("\"{}\": {}", f.key, number(f.value)))
            .collect();
        println!("{{{}}}", body.join(", "));
    } else {
        println!("{:<32} {:>12} {:<5} what", "key", "value", "unit");
        for f in &figures {
            println!(
                "{:<32} {:>12} {:<5} {}",
                f.key,
                number(f.value),
                f.unit,
                f.what
            );
        }
        println!("(simulator and peer figures: medians of alternating rounds on this machine; compare the ratios)");
    }
    for m in &missing {
        eprintln!("bench: left out: {m}");
    }
    Ok(())
}

/// The benchmark firmware pair (`bench_m7`, `bench_m4`), built in release mode: their image
/// paths. Fails if the emulator is not in this tree (nothing could run them) or the build fails.
pub(crate) fn bench_images() -> Result<(PathBuf, PathBuf), String> {
    let root = root();
    if !root.join("crates/duet-emu/examples/bench.rs").exists() {
        return Err("the emulator (crates/duet-emu, example bench) is not in this tree".into());
    }
    let fw = root.join("firmware");
    // An explicit target dir, as `cargo xtask size` does, so the images are where we look.
    let dir = fw.join("target");
    let dir_s = dir.to_str().ok_or("the repository path is not UTF-8")?;
    crate::cargo(
        &fw,
        &[
            "build",
            "--release",
            "-p",
            "duet-firmware",
            "--bin",
            "bench_m7",
            "--bin",
            "bench_m4",
            "--target-dir",
            dir_s,
        ],
    )?;
    let images = dir.join(crate::TARGET).join("release");
    Ok((images.join("bench_m7"), images.join("bench_m4")))
}

/// The emulator's figures: runs the benchmark firmware pair ([`bench_images()`]) on the emulated
/// chip (`duet-emu`'s `bench` example), which prints one JSON object.
fn emu_figures() -> Result<Vec<(String, f64)>, String> {
    let (m7, m4) = bench_images()?;
    let out = run_capture(
        cargo_command()
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "duet-emu",
                "--example",
                "bench",
                "--",
            ])
            .arg(m7)
            .arg(m4)
            .current_dir(root()),
        "cargo run -p duet-emu --example bench",
    )?;
    Ok(json_numbers(&out)
        .into_iter()
        .filter(|(k, _)| k.starts_with("emu_"))
        .collect())
}

/// `cargo` (the one running xtask, if known).
pub(crate) fn cargo_command() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs `cmd` with stderr passed through and returns its stdout; fails if it fails.
pub(crate) fn run_capture(cmd: &mut Command, what: &str) -> Result<String, String> {
    eprintln!("==> {what}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A number for the table and the JSON: integers as such, others with up to 3 decimals;
/// not finite as `null`.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "null".into();
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Every `"key": number` pair in `text` (a JSON object, flat or nested), in order; `null`
/// values and non-numbers are skipped. Enough for the objects our own tools print.
fn json_numbers(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(q) = rest.find('"') {
        let after = &rest[q + 1..];
        let Some(end) = after.find('"') else { break };
        let key = &after[..end];
        let tail = after[end + 1..].trim_start();
        rest = &after[end + 1..];
        let Some(value) = tail.strip_prefix(':') else {
            continue;
        };
        let value = value.trim_start();
        let len = value
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(value.len());
        if let Ok(v) = value[..len].parse::<f64>() {
            out.push((key.to_string(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_from_flat_and_nested_json() {
        let got = json_numbers(
            r#"{"a": 1, "b_c": -2.5e3, "s": "x", "n": null, "o": {"size_x": 7}, "t": true}"#,
        );
        assert_eq!(
            got,
            vec![
                ("a".to_string(), 1.0),
                ("b_c".to_string(), -2500.0),
                ("size_x".to_string(), 7.0)
            ]
        );
    }

    #[test]
    fn parses_options() {
        let o = Options::parse(&["--json".into(), "--plot".into(), "d".into()]).unwrap();
        assert!(o.json);
        assert_eq!(o.plot, Some(PathBuf::from("d")));
        assert!(Options::parse(&["--plot".into()]).is_err());
        assert!(Options::parse(&["--x".into()]).is_err());
    }

    #[test]
    fn numbers_print_without_trailing_zeros() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1.23456), "1.235");
        assert_eq!(number(f64::NAN), "null");
    }
}
