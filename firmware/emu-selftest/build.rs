//! Gives each core's binaries their own memory.x: M7 images in flash bank 1 with DTCM, M4
//! images in flash bank 2 with SRAM1.
use std::{env, fs, path::PathBuf};

const M7: &str = "MEMORY\n{\n  FLASH : ORIGIN = 0x08000000, LENGTH = 1024K\n  RAM   : ORIGIN = 0x20000000, LENGTH = 128K\n}\n";
const M4: &str = "MEMORY\n{\n  FLASH : ORIGIN = 0x08100000, LENGTH = 1024K\n  RAM   : ORIGIN = 0x30000000, LENGTH = 128K\n}\n";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (core, text, bins) in [
        ("m7", M7, &["selftest_m7", "fault_m7"][..]),
        ("m4", M4, &["selftest_m4"][..]),
    ] {
        let dir = out.join(core);
        fs::create_dir_all(&dir).expect("create dir");
        fs::write(dir.join("memory.x"), text).expect("write memory.x");
        for bin in bins {
            println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
