//! `cargo xtask size [--no-check] [--json]`: code size of duet's paths on the chip, as the
//! difference between a probe image that links one path and the empty baseline image (both
//! opt-level "z", LTO): .text, .rodata, .data and .bss. `--json` prints one flat JSON object
//! instead of the table (`size_probe_<probe>_<section>` for every probe, plus the summary keys
//! `size_transport_text`, `size_codec_text`, `size_stack_text`, `size_stack_bss`, ... for the
//! M4 and `size_stack_m7_*` / `size_transport_m7_text` for the M7).

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
        // Target met (2 960 B in session 4: the region checked once at start, no per-access
        // fault record); the limit is the target itself.
        target: Some(3 * 1024),
        limit: Some(3 * 1024),
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
    Probe {
        bin: "stack_m4",
        what: "the whole stack on the M4: transport (remote) + codec + RPC + stream, 2 bound fns",
        // Target missed by far (19 220 B: the RPC engine and stream about 9.5 KB plus 2 KB
        // inlined into main, the codec 2.8 KB, the transport 2.5 KB, memcpy/memclr 1.4 KB). The
        // limit only guards against regressions (78 * 256 until session 4, 76 * 256 in session 5).
        target: Some(8 * 1024),
        limit: Some(151 * 128),
    },
    Probe {
        bin: "stack_m7",
        what: "the whole stack on the M7: transport (host) + codec + RPC + stream, 2 bound fns",
        target: None,
        limit: Some(77 * 256),
    },
];

/// JSON aliases of the summary figures: (key, probe, section).
const SUMMARY: &[(&str, &str, &str)] = &[
    ("size_transport_text", "rpmsg_remote", "text"),
    ("size_transport_m7_text", "rpmsg_host", "text"),
    ("size_codec_text", "codec", "text"),
    ("size_stack_text", "stack_m4", "text"),
    ("size_stack_rodata", "stack_m4", "rodata"),
    ("size_stack_data", "stack_m4", "data"),
    ("size_stack_bss", "stack_m4", "bss"),
    ("size_stack_m7_text", "stack_m7", "text"),
    ("size_stack_m7_rodata", "stack_m7", "rodata"),
    ("size_stack_m7_data", "stack_m7", "data"),
    ("size_stack_m7_bss", "stack_m7", "bss"),
];

/// Section sizes of one image.
#[derive(Clone, Copy, Default)]
struct Sizes {
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
}

impl Sizes {
    fn minus(self, base: Sizes) -> Sizes {
        Sizes {
            text: self.text.saturating_sub(base.text),
            rodata: self.rodata.saturating_sub(base.rodata),
            data: self.data.saturating_sub(base.data),
            bss: self.bss.saturating_sub(base.bss),
        }
    }

    fn get(&self, section: &str) -> u64 {
        match section {
            "text" => self.text,
            "rodata" => self.rodata,
            "data" => self.data,
            _ => self.bss,
        }
    }
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
            ".data" => s.data += sec.size(),
            ".bss" => s.bss += sec.size(),
            _ => {}
        }
    }
    Ok(s)
}

/// `cargo xtask size` with its options (`--no-check`, `--json`).
pub fn run_args(args: &[String]) -> Result<(), String> {
    let mut check = true;
    let mut json = false;
    for a in args {
        match a.as_str() {
            "--no-check" => check = false,
            "--json" => json = true,
            other => return Err(format!("size: unknown option {other}")),
        }
    }
    report(check, json)
}

/// Builds all probes, prints the table and, if `check`, fails when a budget is exceeded.
pub fn run(check: bool) -> Result<(), String> {
    report(check, false)
}

fn report(check: bool, json: bool) -> Result<(), String> {
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
    let mut rows = Vec::new();
    for p in PROBES {
        rows.push((p, measure(p.bin)?.minus(base)));
    }
    if json {
        let mut keys: Vec<String> = Vec::new();
        for (p, s) in &rows {
            for sec in ["text", "rodata", "data", "bss"] {
                keys.push(format!("\"size_probe_{}_{sec}\": {}", p.bin, s.get(sec)));
            }
        }
        for (key, bin, sec) in SUMMARY {
            let s = rows
                .iter()
                .find(|(p, _)| p.bin == *bin)
                .map(|(_, s)| s.get(sec))
                .ok_or_else(|| format!("size: no probe {bin}"))?;
            keys.push(format!("\"{key}\": {s}"));
        }
        println!("{{{}}}", keys.join(", "));
    } else {
        println!(
            "{:<12} {:>7} {:>7} {:>6} {:>6} {:>7} {:>7}  path (bytes over the empty image; opt-level z, LTO, {TARGET})",
            "probe", ".text", ".rodata", ".data", ".bss", "target", "limit"
        );
    }
    let mut over = Vec::new();
    for (p, s) in &rows {
        let mark = match p.target {
            Some(t) if s.text > t => " (over target)",
            _ => "",
        };
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        if !json {
            println!(
                "{:<12} {:>7} {:>7} {:>6} {:>6} {:>7} {:>7}  {}{mark}",
                p.bin,
                s.text,
                s.rodata,
                s.data,
                s.bss,
                show(p.target),
                show(p.limit),
                p.what
            );
        }
        if let Some(limit) = p.limit.filter(|&l| s.text > l) {
            over.push(format!("{}: .text {} B > limit {limit} B", p.bin, s.text));
        }
    }
    if check && !over.is_empty() {
        return Err(format!("size limit exceeded: {}", over.join("; ")));
    }
    Ok(())
}
