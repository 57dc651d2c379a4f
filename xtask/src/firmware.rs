//! `cargo xtask firmware [cargo build options]`: builds every example firmware pair of
//! `firmware/duet-firmware` into `firmware/target/thumbv7em-none-eabihf/release/<example>_m7`
//! and `<example>_m4` (ELF), then prints each image's flash and RAM use. Extra options go to
//! `cargo build` (for example `--features split-75-25` or
//! `--no-default-features --features board-disco`).

use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

use crate::{cargo, root, TARGET};

/// Where the images are written.
pub fn image_dir() -> PathBuf {
    root().join("firmware/target").join(TARGET).join("release")
}

/// The example binaries (`src/bin/*.rs` of duet-firmware), sorted.
pub fn binaries() -> Result<Vec<String>, String> {
    let dir = root().join("firmware/duet-firmware/src/bin");
    let mut bins = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("read {}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                bins.push(stem.to_string());
            }
        }
    }
    bins.sort();
    Ok(bins)
}

/// Flash and RAM bytes of one image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes stored in flash: vector table, code, constants and the initial values of .data.
    pub flash: u64,
    /// Bytes of RAM reserved statically: .data + .bss + .uninit (the stack is the rest).
    pub ram: u64,
    /// Start of the image's vector table.
    pub origin: u64,
}

/// Reads the section table of the ELF at `path`.
pub fn usage(path: &Path) -> Result<Usage, String> {
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let mut u = Usage::default();
    for sec in file.sections() {
        match sec.name().unwrap_or("") {
            ".vector_table" => {
                u.origin = sec.address();
                u.flash += sec.size();
            }
            ".text" | ".rodata" => u.flash += sec.size(),
            ".data" => {
                u.flash += sec.size();
                u.ram += sec.size();
            }
            ".bss" | ".uninit" => u.ram += sec.size(),
            _ => {}
        }
    }
    Ok(u)
}

/// Builds every image and prints the table.
pub fn run(extra: &[String]) -> Result<(), String> {
    let fw = root().join("firmware");
    // An explicit target dir, so a CARGO_TARGET_DIR in the environment cannot move the images.
    let dir = fw.join("target");
    let dir = dir.to_str().ok_or("the repository path is not UTF-8")?;
    let mut args = vec![
        "build",
        "--release",
        "-p",
        "duet-firmware",
        "--bins",
        "--target-dir",
        dir,
    ];
    args.extend(extra.iter().map(String::as_str));
    cargo(&fw, &args)?;
    let images = image_dir();
    println!(
        "{:<14} {:>10} {:>8} {:>8}  image ({})",
        "firmware",
        "origin",
        "flash",
        "ram",
        images.display()
    );
    for bin in binaries()? {
        let u = usage(&images.join(&bin))?;
        println!("{:<14} 0x{:08X} {:>8} {:>8}", bin, u.origin, u.flash, u.ram);
    }
    Ok(())
}

/// The feature sets besides the default that must keep compiling: the other boards, the other
/// flash split and the bootloader layout (checked with clippy; `run` builds the default images).
const VARIANTS: &[&str] = &[
    "board-portenta",
    "board-disco,split-75-25,arduino-bootloader",
];

/// Lints duet-firmware with every feature set of [`VARIANTS`].
pub fn lint_variants() -> Result<(), String> {
    let fw = root().join("firmware");
    for features in VARIANTS {
        cargo(
            &fw,
            &[
                "clippy",
                "--release",
                "-p",
                "duet-firmware",
                "--no-default-features",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    Ok(())
}
