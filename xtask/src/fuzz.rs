//! `cargo xtask fuzz [--seconds N] [--update-corpus] [TARGET...]`: runs each cargo-fuzz target
//! of `fuzz/` for `N` seconds (default 30) and prints what it tried.
//!
//! Each run starts from the committed corpus `fuzz/corpus/<target>` (read only) and writes what
//! it finds to a scratch directory under the target dir, so the tree stays clean; with
//! `--update-corpus` new inputs go to the committed corpus, which is then minimised with
//! `cargo fuzz cmin -- -set_cover_merge=1`. Needs the nightly toolchain and cargo-fuzz: both are installed when
//! missing (rustup, `cargo install --locked`); if that fails, `ci` skips the step with a
//! message and `fuzz` fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[&str] = &["decode", "rpc_parse", "dispatch", "transport"];

/// The cargo-fuzz version installed when it is missing.
const CARGO_FUZZ: &str = "0.13.2";

/// What one run reported (libFuzzer's last status line).
struct Report {
    target: String,
    seconds: u64,
    runs: u64,
    cov: u64,
    features: u64,
    corpus: u64,
}

/// Options of the `fuzz` command.
pub struct Options {
    /// Seconds per target.
    pub seconds: u64,
    /// Add what the runs find to the committed corpus and minimise it.
    pub update_corpus: bool,
    /// Targets to run (all if empty).
    pub targets: Vec<String>,
}

impl Options {
    /// Parses the arguments after `fuzz`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            seconds: 30,
            update_corpus: false,
            targets: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--seconds" => {
                    let v = it.next().ok_or("--seconds needs a value")?;
                    o.seconds = v.parse().map_err(|_| format!("bad --seconds {v}"))?;
                }
                "--update-corpus" => o.update_corpus = true,
                t if TARGETS.contains(&t) => o.targets.push(t.to_string()),
                other => return Err(format!("unknown fuzz argument {other}")),
            }
        }
        if o.targets.is_empty() {
            o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
        }
        Ok(o)
    }
}

/// Whether `cargo +nightly fuzz` works, installing nightly and cargo-fuzz if missing.
/// `Err` says what is missing and why it could not be installed.
pub fn ensure_tools() -> Result<(), String> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works(&["+nightly", "--version"]) {
        eprintln!("==> rustup toolchain install nightly --profile minimal");
        let ok = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !works(&["+nightly", "--version"]) {
            return Err(
                "the nightly toolchain is missing and `rustup toolchain install \
                        nightly` failed"
                    .into(),
            );
        }
    }
    if !works(&["+nightly", "fuzz", "--version"]) {
        eprintln!("==> cargo install cargo-fuzz --locked --version {CARGO_FUZZ}");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ])
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !works(&["+nightly", "fuzz", "--version"]) {
            return Err("cargo-fuzz is missing and `cargo install cargo-fuzz` failed".into());
        }
    }
    Ok(())
}

/// The `ci` step: every target for [`CI_SECONDS`] (its committed corpus, then new inputs);
/// skipped with a message if the tools cannot be installed.
pub fn ci() -> Result<(), String> {
    if let Err(e) = ensure_tools() {
        eprintln!("==> fuzz: SKIPPED: {e}");
        return Ok(());
    }
    run(&Options {
        seconds: CI_SECONDS,
        update_corpus: false,
        targets: TARGETS.iter().map(|t| t.to_string()).collect(),
    })
}

/// Seconds per target in `cargo xtask ci`.
pub const CI_SECONDS: u64 = 10;

/// The scratch directory for new inputs of `target` (under the cargo target dir).
fn scratch(target: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    base.join("fuzz-scratch").join(target)
}

/// Runs the targets as `o` says and prints one line per target.
pub fn run(o: &Options) -> Result<(), String> {
    ensure_tools()?;
    let root = crate::root();
    let mut reports = Vec::new();
    for t in &o.targets {
        reports.push(run_one(&root, t, o)?);
    }
    eprintln!(
        "==> fuzz: {:<10} {:>8} {:>10} {:>10} {:>8} {:>8}",
        "target", "seconds", "runs", "runs/s", "cov", "corpus"
    );
    for r in &reports {
        eprintln!(
            "==> fuzz: {:<10} {:>8} {:>10} {:>10} {:>8} {:>8}  (features {})",
            r.target,
            r.seconds,
            r.runs,
            r.runs / r.seconds.max(1),
            r.cov,
            r.corpus,
            r.features
        );
    }
    Ok(())
}

/// Builds and runs one target for `o.seconds`; fails if it found a crash.
fn run_one(root: &Path, target: &str, o: &Options) -> Result<Report, String> {
    let corpus = root.join("fuzz").join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let out = if o.update_corpus {
        corpus.clone()
    } else {
        let s = scratch(target);
        let _ = std::fs::remove_dir_all(&s);
        std::fs::create_dir_all(&s).map_err(|e| format!("{}: {e}", s.display()))?;
        s
    };
    let time = format!("-max_total_time={}", o.seconds);
    let mut args = vec![
        "+nightly".to_string(),
        "fuzz".into(),
        "run".into(),
        "-O".into(),
        "-a".into(),
        target.into(),
        out.display().to_string(),
    ];
    if !o.update_corpus {
        args.push(corpus.display().to_string());
    }
    args.extend([
        "--".into(),
        time,
        "-timeout=10".into(),
        "-print_final_stats=1".into(),
    ]);
    eprintln!("==> cargo {}", args.join(" "));
    let output = Command::new("cargo")
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        eprintln!("{log}");
        return Err(format!("fuzz target {target} failed (see the log above)"));
    }
    let report = parse(target, &log).ok_or_else(|| {
        eprintln!("{log}");
        format!("no libFuzzer summary in the output of {target}")
    })?;
    eprintln!(
        "    {target}: {} runs in {} s, cov {}, corpus {}",
        report.runs, report.seconds, report.cov, report.corpus
    );
    if o.update_corpus {
        eprintln!("==> cargo +nightly fuzz cmin -O -a {target} -- -set_cover_merge=1");
        let ok = Command::new("cargo")
            .args(["+nightly", "fuzz", "cmin", "-O", "-a", target])
            .args(["--", "-set_cover_merge=1"])
            .current_dir(root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("cargo fuzz cmin {target} failed"));
        }
    }
    Ok(report)
}

/// Reads libFuzzer's `#N DONE cov: C ft: F corp: K/...` and `Done N runs in S second(s)`.
fn parse(target: &str, log: &str) -> Option<Report> {
    let field = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?;
        let num: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        num.parse().ok()
    };
    let status = log
        .lines()
        .rev()
        .find(|l| l.contains("DONE") && l.contains("cov:"))?;
    let done = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let mut words = done.split_whitespace();
    let runs = words.nth(1)?.parse().ok()?;
    let seconds = words.nth(2)?.parse().ok()?;
    Some(Report {
        target: target.to_string(),
        seconds,
        runs,
        cov: field(status, "cov:")?,
        features: field(status, "ft:")?,
        corpus: field(status, "corp:")?,
    })
}
