//! `cargo xtask size`: code size of duet's paths on the chip, as the difference between a probe
//! image that links one path and the empty baseline image (both opt-level "z", LTO).

use crate::{cargo, root, TARGET};
use object::{Object, ObjectSection};

/// One measured path: the probe binary, the target and the regression limit, in bytes
/// of .text. `ci` fails above `limit`; `target` is the goal, shown so a miss stays visible.
/// A probe without a target or limit is a reference point (another crate doing the same job).
struct Probe {
    bin: &'static str,
    what: &'static str,
    target: Option<u64>,
    limit: Option<u64>,
}

const PROBES: &[Probe] = &[
    Probe {
        bin: "codec",
        what: "duet-codec: encode+parse of a request/response pair (i32 args)",
        target: Some(3 * 1024),
        limit: Some(3 * 1024),
    },
    Probe {
        bin: "rmp",
        what: "reference: the codec probe's path written with the rmp crate",
        target: None,
        limit: None,
    },
    Probe {
        bin: "rpmsg",
        what: "duet-rpmsg: host and remote roles, send/recv/poll",
        // Target missed today (3168 B with the compile-time Arduino profile); the limit (about
        // +5%, rounded up to 256) only guards against regressions.
        target: Some(3 * 1024),
        limit: Some(14 * 256),
    },
    Probe {
        bin: "rpmsg_host",
        what: "duet-rpmsg: host role alone (the M7 image)",
        target: None,
        limit: None,
    },
    Probe {
        bin: "rpmsg_remote",
        what: "duet-rpmsg: remote role alone (the M4 image)",
        target: None,
        limit: None,
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
    // An explicit target dir, so a CARGO_TARGET_DIR in the environment cannot hide the images.
    let dir = fw.join("target");
    let dir = dir.to_str().ok_or("the repository path is not UTF-8")?;
    cargo(
        &fw,
        &[
            "build",
            "--release",
            "-p",
            "size-probe",
            "--bins",
            "--target-dir",
            dir,
        ],
    )?;
    let base = measure("baseline")?;
    println!(
        "{:<12} {:>7} {:>7} {:>7} {:>7}  path (bytes over the empty image; opt-level z, LTO, {TARGET})",
        "probe", ".text", ".rodata", "target", "limit"
    );
    let mut over = Vec::new();
    for p in PROBES {
        let s = measure(p.bin)?;
        let text = s.text.saturating_sub(base.text);
        let rodata = s.rodata.saturating_sub(base.rodata);
        let mark = match p.target {
            Some(t) if text > t => " (over target)",
            _ => "",
        };
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<12} {:>7} {:>7} {:>7} {:>7}  {}{mark}",
            p.bin,
            text,
            rodata,
            show(p.target),
            show(p.limit),
            p.what
        );
        if let Some(limit) = p.limit.filter(|&l| text > l) {
            over.push(format!("{}: .text {text} B > limit {limit} B", p.bin));
        }
    }
    if check && !over.is_empty() {
        return Err(format!("size limit exceeded: {}", over.join("; ")));
    }
    Ok(())
}
