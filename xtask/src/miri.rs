//! `cargo xtask miri`: the unsafe shared-memory accessor of the simulator and the ring code
//! under Miri (nightly), which checks them for undefined behaviour, out-of-bounds pointer use
//! and data races.
//!
//! Runs `cargo +nightly miri test` on duet-sim's `tests/miri.rs` (`SimMemory` at the region's
//! edges, two threads on neighbouring words, the real host and remote on two threads over it)
//! and on duet-rpmsg's layout tests and three small round-trip tests (the ring code over an
//! in-memory region).
//!
//! `TMPDIR` points into the target dir, because Miri's sysroot build searches parent
//! directories of its temporary directory for a workspace (a stray `/tmp/Cargo.toml` breaks it).
//! Installs the nightly `miri` and `rust-src` components when missing; if that fails, `ci`
//! skips the step with a message and `miri` fails.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Whether `cargo +nightly miri` works, installing the components if missing.
pub fn ensure_tools() -> Result<(), String> {
    let works = || {
        Command::new("cargo")
            .args(["+nightly", "miri", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works() {
        return Ok(());
    }
    eprintln!("==> rustup component add --toolchain nightly miri rust-src");
    let ok = Command::new("rustup")
        .args([
            "component",
            "add",
            "--toolchain",
            "nightly",
            "miri",
            "rust-src",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if ok && works() {
        Ok(())
    } else {
        Err(
            "Miri is missing and `rustup component add --toolchain nightly miri rust-src` \
             failed"
                .into(),
        )
    }
}

/// The test runs: (package, test binaries, arguments after `--`). Chosen to take about a
/// minute under Miri (the longer ring tests take many minutes there).
const RUNS: &[(&str, &[&str], &[&str])] = &[
    ("duet-sim", &["miri"], &[]),
    (
        "duet-rpmsg",
        &["layout", "roundtrip"],
        &[
            "--exact",
            "resource_table_after_host_new",
            "rings_after_host_new",
            "announcements_and_first_messages",
            "data_message_bytes",
            "buffer_too_small_keeps_message",
            "oversize_refused",
            "not_ready_before_handshake_and_connect_timeout",
        ],
    ),
];

/// Runs the Miri tests.
pub fn run() -> Result<(), String> {
    ensure_tools()?;
    let root = crate::root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let tmp = target.join("miri-tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    for (package, tests, filters) in RUNS {
        let mut args = vec!["+nightly", "miri", "test", "-p", package];
        for t in *tests {
            args.extend(["--test", t]);
        }
        args.push("--");
        args.extend(filters.iter().copied());
        eprintln!("==> cargo {}", args.join(" "));
        let ok = Command::new("cargo")
            .args(&args)
            .current_dir(&root)
            .env("TMPDIR", &tmp)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("Miri found a problem in {package} ({tests:?})"));
        }
    }
    Ok(())
}
