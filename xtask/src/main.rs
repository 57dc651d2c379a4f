//! `cargo xtask <command>`: the project's build, check, size and benchmark orchestration.
//!
//! Commands:
//! - `ci`    everything CI checks: the target and the emulator's build tools (cmake,
//!   libclang-dev via apt-get, only when missing) are installed, fmt, clippy -D warnings (host
//!   workspace and firmware), all tests, rustdoc -D warnings, the no_std crates built for
//!   thumbv7em-none-eabihf, the size report with its limits, a 10 s run of each fuzz target
//!   and the Miri tests (both skipped with a message if nightly tools cannot be installed).
//! - `size [--no-check] [--json]`  .text/.rodata/.data/.bss of each duet code path on
//!   thumbv7em-none-eabihf (opt-level "z", LTO), measured as the difference to an empty image; fails if a probe is
//!   over its regression limit unless `--no-check` (targets are shown beside the limits).
//! - `bench [--json] [--plot DIR]`  every performance figure in one run (see `bench.rs`): the
//!   simulator against the physical floor and peers, sizes, and the emulator's instruction
//!   counts; `--plot DIR` also writes SVG pictures of the samples (see `plot.rs`).
//! - `plot DIR`  only the pictures of `bench --plot DIR`.
//! - `soak [ARGS]` the full soak on the simulator (release build; see `soak.rs`).
//! - `firmware [cargo build options]` builds every example firmware pair (ELF files in
//!   `firmware/target/thumbv7em-none-eabihf/release/<example>_m7` / `_m4`) and prints each
//!   image's flash and RAM use.
//! - `emu EXAMPLE [--trace] [--trace-out FILE]` runs an example's M7/M4 images on the emulated
//!   chip (duet-emu); `--trace-out` writes the traffic between the cores (docs/tracing.md).
//! - `fuzz [--seconds N] [--update-corpus] [TARGET..]`  each cargo-fuzz target for N s (30).
//! - `miri`  the simulator's shared-memory accessor and the ring code under Miri.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod emu;
mod firmware;
mod fuzz;
mod miri;
mod plot;
mod size;
mod soak;

/// The bare-metal target of both cores.
pub const TARGET: &str = "thumbv7em-none-eabihf";
/// The crates that must build without std for [`TARGET`].
const NO_STD_CRATES: &[&str] = &["duet-codec", "duet-rpmsg", "duet", "duet-stm32h7"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("size") => size::run_args(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("plot") => plot::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("firmware") => firmware::run(&args[1..]),
        Some("emu") => emu::run(&args[1..]),
        Some("fuzz") => fuzz::Options::parse(&args[1..]).and_then(|o| fuzz::run(&o)),
        Some("miri") => miri::run(),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | size [--no-check] [--json] | bench [--json] [--plot DIR] | plot DIR | soak [ARGS] | firmware [cargo build options] | emu EXAMPLE [--trace] [--trace-out FILE] | fuzz [--seconds N] | miri>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Runs `cargo` with `args` in `dir`, failing with a message naming the step.
pub fn cargo(dir: &Path, args: &[&str]) -> Result<(), String> {
    cargo_env(dir, args, &[])
}

/// [`cargo`] with extra environment variables.
fn cargo_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("==> cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// Installs the bare-metal target if the pinned toolchain lacks it (rustup normally does this
/// from rust-toolchain.toml; this covers older rustup versions).
fn ensure_target() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output();
    match out {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => {
            eprintln!("==> rustup target add {TARGET}");
            let ok = Command::new("rustup")
                .args(["target", "add", TARGET])
                .current_dir(root())
                .status()
                .map_err(|e| format!("cannot run rustup: {e}"))?
                .success();
            ok.then_some(())
                .ok_or_else(|| format!("rustup target add {TARGET} failed"))
        }
        // No rustup: trust that the toolchain has the target; the build below says if not.
        Err(_) => Ok(()),
    }
}

fn ci() -> Result<(), String> {
    let root = root();
    let fw = root.join("firmware");
    ensure_target()?;
    emu::ensure_build_deps()?;
    cargo(&root, &["fmt", "--all", "--check"])?;
    cargo(&fw, &["fmt", "--all", "--check"])?;
    cargo(
        &root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut no_std = vec!["clippy", "--target", TARGET];
    for c in NO_STD_CRATES {
        no_std.extend(["-p", c]);
    }
    no_std.extend(["--", "-D", "warnings"]);
    cargo(&root, &no_std)?;
    cargo(&fw, &["clippy", "--release", "--", "-D", "warnings"])?;
    firmware::lint_variants()?;
    firmware::run(&[])?;
    cargo(&root, &["test", "--workspace"])?;
    cargo_env(
        &root,
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    let mut build = vec!["build", "--release", "--target", TARGET];
    for c in NO_STD_CRATES {
        build.extend(["-p", c]);
    }
    cargo(&root, &build)?;
    size::run(true)?;
    fuzz::ci()?;
    match miri::ensure_tools() {
        Ok(()) => miri::run()?,
        Err(e) => eprintln!("==> miri: SKIPPED: {e}"),
    }
    eprintln!("==> ci: all checks passed");
    Ok(())
}
