//! Links each example binary with its core's memory layout: `*_m7` binaries with the M7's
//! memory.x, `*_m4` with the M4's, both taken from duet-stm32h7's `link/` directory for the
//! selected flash split (and bootloader option).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let link = manifest.join("../../crates/duet-stm32h7/link");
    let split = if env::var_os("CARGO_FEATURE_SPLIT_75_25").is_some() {
        "three_quarters"
    } else {
        "half"
    };
    let bootloader = if env::var_os("CARGO_FEATURE_ARDUINO_BOOTLOADER").is_some() {
        "_bootloader"
    } else {
        ""
    };
    let layouts = [
        ("m7", format!("m7_{split}{bootloader}.x")),
        ("m4", format!("m4_{split}.x")),
    ];
    for (core, file) in &layouts {
        let dir = out.join(core);
        fs::create_dir_all(&dir).expect("create the layout directory");
        let src = link.join(file);
        fs::copy(&src, dir.join("memory.x"))
            .unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        println!("cargo:rerun-if-changed={}", src.display());
    }
    let bins = manifest.join("src/bin");
    for entry in fs::read_dir(&bins).expect("read src/bin") {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let core = if name.ends_with("_m7") {
            "m7"
        } else if name.ends_with("_m4") {
            "m4"
        } else {
            panic!("firmware binary {name}: the name must end in _m7 or _m4");
        };
        println!(
            "cargo:rustc-link-arg-bin={name}=-L{}",
            out.join(core).display()
        );
    }
    println!("cargo:rerun-if-changed=src/bin");
    println!("cargo:rerun-if-changed=build.rs");
}
