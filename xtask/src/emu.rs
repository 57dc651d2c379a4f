//! `cargo xtask emu EXAMPLE [--trace] [--no-m4-boot] [--bcm4] [--max-ms N] [--profile]
//! [--trace-out FILE]`:
//! builds the example's firmware images and runs the M7/M4 pair on the emulated STM32H747
//! (crates/duet-emu), printing both cores' console output and the per-core counters. Fails if
//! the M7 exits non-zero, a core faults, an unmodelled register is accessed or the run stalls.
//!
//! Examples: every `<example>_m7`/`<example>_m4` pair of firmware/duet-firmware, plus the
//! emulator's own images from firmware/emu-selftest: `selftest` (boot, HSEM round trips, SysTick
//! deadline) and `fault` (an M7 image that reads unmapped memory).
//!
//! Also installs what building unicorn needs ([`ensure_build_deps`]); `cargo xtask ci` calls it.

use std::path::Path;
use std::process::Command;

use crate::{cargo, root, TARGET};

/// Debian packages the unicorn-engine build needs (cmake for its C build, libclang for bindgen).
const REQUIRED: &[&str] = &["cmake", "libclang-dev"];
/// Installed along with them when an install is needed (unicorn's build uses it if present).
const OPTIONAL: &[&str] = &["ninja-build"];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn have_cmake() -> bool {
    Command::new("cmake")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs cmake and libclang-dev with apt-get (as root, or through sudo) when they are
/// missing on a Debian-like machine; does nothing when they are present. On other systems it
/// only checks for cmake and says what is missing.
pub fn ensure_build_deps() -> Result<(), String> {
    let has_dpkg = Command::new("dpkg-query").arg("--version").output().is_ok();
    if !has_dpkg {
        return if have_cmake() {
            Ok(())
        } else {
            Err("building duet-emu needs cmake and libclang; install them".into())
        };
    }
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut pkgs = missing.clone();
    pkgs.extend(OPTIONAL.iter().copied().filter(|p| !installed(p)));
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let sudo: &[&str] = if root_user { &[] } else { &["sudo"] };
    eprintln!(
        "==> apt-get install {} (needed to build duet-emu)",
        pkgs.join(" ")
    );
    let run = |args: &[&str]| -> Result<(), String> {
        let all: Vec<&str> = sudo.iter().chain(args).copied().collect();
        let ok = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run {}: {e}", all[0]))?
            .success();
        ok.then_some(())
            .ok_or_else(|| format!("`{}` failed", all.join(" ")))
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&pkgs);
    run(&install)
}

/// The firmware package and the image names of `example`.
fn images(example: &str) -> (&'static str, String, Option<String>) {
    match example {
        "selftest" => (
            "emu-selftest",
            "selftest_m7".into(),
            Some("selftest_m4".into()),
        ),
        "fault" => ("emu-selftest", "fault_m7".into(), None),
        e => ("duet-firmware", format!("{e}_m7"), Some(format!("{e}_m4"))),
    }
}

/// Builds one firmware package the way `cargo xtask firmware` builds duet-firmware (release, explicit target
/// dir so a CARGO_TARGET_DIR in the environment cannot move the images).
pub fn build_firmware(package: &str) -> Result<(), String> {
    let fw = root().join("firmware");
    let dir = fw.join("target");
    let dir = dir.to_str().ok_or("the repository path is not UTF-8")?;
    cargo(
        &fw,
        &[
            "build",
            "--release",
            "-p",
            package,
            "--bins",
            "--target-dir",
            dir,
        ],
    )
}

/// `cargo xtask emu EXAMPLE [options]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(example) = args.first() else {
        return Err(
            "usage: cargo xtask emu EXAMPLE [--trace] [--no-m4-boot] [--bcm4] [--max-ms N] \
             [--profile] [--trace-out FILE]"
                .into(),
        );
    };
    ensure_build_deps()?;
    let (package, m7, m4) = images(example);
    if package == "duet-firmware" {
        crate::firmware::run(&[])?;
    } else {
        build_firmware(package)?;
    }
    let dir = root().join("firmware/target").join(TARGET).join("release");
    let path = |n: &str| -> Result<String, String> {
        let p = dir.join(n);
        if !Path::new(&p).exists() {
            return Err(format!(
                "no image {} (unknown example {example:?}?)",
                p.display()
            ));
        }
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| "the repository path is not UTF-8".to_string())
    };
    let mut run_args = vec![
        "run".to_string(),
        "--quiet".into(),
        "-p".into(),
        "duet-emu".into(),
        "--".into(),
        path(&m7)?,
    ];
    if let Some(m4) = m4 {
        run_args.push(path(&m4)?);
    }
    run_args.extend(args[1..].iter().cloned());
    let refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
    cargo(&root(), &refs)
}
