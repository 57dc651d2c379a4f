//! `cargo xtask size`: code size of duet's paths on the chip, as the difference between a probe
//! image that links one path and the empty baseline image (both opt-level "z", LTO).

use crate::{cargo, root, TARGET};
use object::{Object, ObjectSection};

/// One measured path: the probe binary, the target and the regression limit, in bytes
/// of .text. `ci` fails above `limit`; `target` is the goal, shown so a miss stays visible.
struct Probe {
    bin: &'static str,
    what: &'static str,
    target: u64,
    limit: u64,
}

const PROBES: &[Probe] = &[
    Probe {
        bin: "codec",
        what: "duet-codec: encode+parse of a request/response pair (i32 args)",
        target: 3 * 1024,
        limit: 3 * 1024,
    },
    Probe {
        bin: "rpmsg",
        what: "duet-rpmsg: host and remote roles, send/recv/poll",
        // Target missed today (about 7.8 KiB); the limit only guards against regressions.
        target: 3 * 1024,
        limit: 8 * 1024,
    },
];

/// Sizes of the loadable code and constant data of one image.
#[derive(Clone, Copy, Default)]
struct Sizes {
    text: u64,
    rodata: u64,
}

fn measure(bin: &str) -> Result<Sizes, String> {
    let path = root()
        .join("firmware/target")
        .join(TARGET)
        .join("release")
        .join(bin);
    let data = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let mut s = Sizes::default();
    for sec in file.sections() {
        match sec.name().unwrap_or("") {
            ".text" => s.text += sec.size(),
            ".rodata" => s.rodata += sec.size(),
            _ => {}
        }
    }
    Ok(s)
}

/// Builds all probes, prints the table and, if `check`, fails when a budget is exceeded.
pub fn run(check: bool) -> Result<(), String> {
    let fw = root().join("firmware");
    cargo(&fw, &["build", "--release", "-p", "size-probe", "--bins"])?;
    let base = measure("baseline")?;
    println!(
        "{:<8} {:>7} {:>7} {:>7} {:>7}  path (bytes over the empty image; opt-level z, LTO, {TARGET})",
        "probe", ".text", ".rodata", "target", "limit"
    );
    let mut over = Vec::new();
    for p in PROBES {
        let s = measure(p.bin)?;
        let text = s.text.saturating_sub(base.text);
        let rodata = s.rodata.saturating_sub(base.rodata);
        let mark = if text > p.target {
            " (over target)"
        } else {
            ""
        };
        println!(
            "{:<8} {:>7} {:>7} {:>7} {:>7}  {}{mark}",
            p.bin, text, rodata, p.target, p.limit, p.what
        );
        if text > p.limit {
            over.push(format!("{}: .text {text} B > limit {} B", p.bin, p.limit));
        }
    }
    if check && !over.is_empty() {
        return Err(format!("size limit exceeded: {}", over.join("; ")));
    }
    Ok(())
}
