//! Builds firmware images for the emulator tests (once per test binary) and runs pairs.

use duet_emu::{Config, CoreId, Counters, Emulator, Image, Outcome, RunError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/duet-emu is two levels below the root")
        .to_path_buf()
}

static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Builds firmware package `package` (release, thumbv7em-none-eabihf, into firmware/target
/// like `cargo xtask firmware`) once, and returns the directory of its images.
pub fn build(package: &str) -> PathBuf {
    let fw = root().join("firmware");
    let target = fw.join("target");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&fw)
            .args([
                "build",
                "--release",
                "--bins",
                "-p",
                package,
                "--target-dir",
            ])
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("run cargo for the firmware");
        assert!(
            status.success(),
            "building firmware package {package} failed"
        );
        built.push(package.to_string());
    }
    target.join("thumbv7em-none-eabihf/release")
}

/// Everything a test looks at after a run.
pub struct Run {
    pub result: Result<Outcome, RunError>,
    pub m7: String,
    pub m4: String,
    pub counters: [Counters; 2],
    pub emu: Emulator,
}

/// Loads `m7` (and `m4`) from `dir` and runs them with `config`.
pub fn run(dir: &Path, m7: &str, m4: Option<&str>, config: Config) -> Run {
    let load = |n: &str| Image::load(&dir.join(n)).expect("load image");
    let m7 = load(m7);
    let m4 = m4.map(load);
    let mut emu = Emulator::new(&m7, m4.as_ref(), config).expect("emulator");
    let result = emu.run();
    let text = |c| String::from_utf8_lossy(&emu.console(c)).into_owned();
    Run {
        m7: text(CoreId::M7),
        m4: text(CoreId::M4),
        counters: [emu.counters(CoreId::M7), emu.counters(CoreId::M4)],
        result,
        emu,
    }
}
