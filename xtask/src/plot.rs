//! `cargo xtask bench --plot DIR`: pictures of the benchmark samples, as SVG written here (no
//! plotting dependency).
//!
//! - `DIR/sim_rtt_histogram.svg`: the distribution of the simulator's `add(1, 2)` round trip,
//!   one sample per call (the `duet-latency` binary of `duet-bench`, release build), as a
//!   histogram over a logarithmic time axis with the median and tail percentiles marked.
//! - The emulated chip's instruction-count breakdown needs the emulator (not in this tree yet).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::root;

/// Calls sampled for the histogram.
const CALLS: u32 = 20_000;

/// `cargo xtask plot DIR`: [`write()`] alone, without the rest of the benchmark.
pub fn run(args: &[String]) -> Result<(), String> {
    let [dir] = args else {
        return Err("usage: cargo xtask plot DIR".into());
    };
    for path in write(Path::new(dir))? {
        eprintln!("plot: wrote {}", path.display());
    }
    Ok(())
}

/// Measures and writes every picture into `dir` (created if missing); returns their paths.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!("==> cargo run --release -p duet-bench --bin duet-latency -- {CALLS}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "run",
            "--release",
            "-q",
            "-p",
            "duet-bench",
            "--bin",
            "duet-latency",
            "--",
        ])
        .arg(CALLS.to_string())
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run duet-latency: {e}"))?;
    if !out.status.success() {
        return Err(format!("duet-latency failed ({})", out.status));
    }
    let samples = parse_samples(&String::from_utf8_lossy(&out.stdout));
    if samples.is_empty() {
        return Err("duet-latency printed no samples".into());
    }
    let path = dir.join("sim_rtt_histogram.svg");
    let svg = histogram_svg(
        &samples,
        "duet on the simulator: call(\"add\", 1, 2) round trip, M7 thread -> M4 thread -> M7",
    );
    std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(vec![path])
}

/// The numbers inside the first `[...]` of `text`.
fn parse_samples(text: &str) -> Vec<u64> {
    let Some(start) = text.find('[') else {
        return Vec::new();
    };
    let end = text[start..].find(']').map_or(text.len(), |e| start + e);
    text[start + 1..end]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The `q`-quantile (0..=1) of sorted `v` (nearest rank).
fn quantile(v: &[u64], q: f64) -> u64 {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// A duration in ns as text with up to two decimals: `850 ns`, `17.25 µs`, `2.5 ms`.
fn duration(ns: f64) -> String {
    let short = |v: f64| {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if ns < 1e3 {
        format!("{} ns", short(ns))
    } else if ns < 1e6 {
        format!("{} µs", short(ns / 1e3))
    } else {
        format!("{} ms", short(ns / 1e6))
    }
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bins per decade of the time axis.
const BINS_PER_DECADE: f64 = 20.0;

/// An SVG histogram of `samples` (ns, any order, at least one) over a logarithmic time axis
/// (whole decades around the data, [`BINS_PER_DECADE`] bins each), linear counts (a bin with
/// any sample is at least 1 px tall, so single outliers show), with the median, p90, p99 and
/// p99.9 marked and a summary line.
pub fn histogram_svg(samples: &[u64], title: &str) -> String {
    let mut v: Vec<u64> = samples.iter().map(|&s| s.max(1)).collect();
    v.sort_unstable();
    let (w, h) = (800.0, 420.0);
    let (left, right, top, bottom) = (70.0, 40.0, 50.0, 70.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let lo = (v[0] as f64).log10().floor();
    let hi = (v[v.len() - 1] as f64).log10().ceil().max(lo + 1.0);
    let bins = ((hi - lo) * BINS_PER_DECADE).round() as usize;
    let mut counts = vec![0u64; bins];
    for &s in &v {
        let b = (((s as f64).log10() - lo) * BINS_PER_DECADE).floor() as usize;
        counts[b.min(bins - 1)] += 1;
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1);
    // Headroom above the highest bar for the percentile labels.
    let full = peak as f64 * 1.15;
    let x = |ns: f64| left + (ns.log10() - lo) / (hi - lo) * pw;
    let y = |c: f64| top + ph - c / full * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    let summary = format!(
        "{} calls: min {}, median {}, p99 {}, max {}",
        v.len(),
        duration(v[0] as f64),
        duration(quantile(&v, 0.5) as f64),
        duration(quantile(&v, 0.99) as f64),
        duration(v[v.len() - 1] as f64)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="40" text-anchor="middle" fill="#444">{}</text>"##,
        w / 2.0,
        esc(&summary)
    );
    // Bars.
    let bw = pw / bins as f64;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let bh = (c as f64 / full * ph).max(1.0);
        let _ = writeln!(
            s,
            r##"<rect class="bar" x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="#4878a8"><title>{}</title></rect>"##,
            left + i as f64 * bw,
            top + ph - bh,
            (bw - 1.0).max(0.5),
            bh,
            c
        );
    }
    // Axes.
    let _ = writeln!(
        s,
        r#"<path d="M{left} {top} V{} H{}" stroke="black" fill="none"/>"#,
        top + ph,
        left + pw
    );
    // X ticks at 1, 2, 5 x 10^k ns.
    let mut d = lo;
    while d < hi + 0.5 {
        for m in [1.0, 2.0, 5.0] {
            let ns = m * 10f64.powf(d);
            if ns.log10() > hi + 1e-9 {
                continue;
            }
            let tx = x(ns);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.2}" y1="{}" x2="{tx:.2}" y2="{}" stroke="#999"/><text x="{tx:.2}" y="{}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 5.0,
                top + ph + 18.0,
                duration(ns)
            );
        }
        d += 1.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">round trip (logarithmic)</text>"#,
        left + pw / 2.0,
        h - 25.0
    );
    // Y ticks.
    let step = nice_step(peak as f64 / 5.0);
    let mut c = 0.0;
    while c <= peak as f64 {
        let ty = y(c);
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{ty:.2}" x2="{left}" y2="{ty:.2}" stroke="#999"/><text x="{}" y="{:.2}" text-anchor="end">{c}</text>"##,
            left - 5.0,
            left - 8.0,
            ty + 4.0
        );
        c += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">calls per bin</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    // Percentiles.
    for (i, (name, q)) in [
        ("median", 0.5),
        ("p90", 0.9),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ]
    .into_iter()
    .enumerate()
    {
        let ns = quantile(&v, q) as f64;
        let px = x(ns);
        let _ = writeln!(
            s,
            r##"<line class="mark" x1="{px:.2}" y1="{top}" x2="{px:.2}" y2="{}" stroke="#c0392b" stroke-dasharray="4 3"/><text x="{:.2}" y="{}" fill="#c0392b">{name} {}</text>"##,
            top + ph,
            px + 4.0,
            top + 14.0 + 14.0 * i as f64,
            duration(ns)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A step of 1, 2 or 5 times a power of ten, at least `raw` (and at least 1).
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_has_one_bar_per_filled_bin_and_the_marks() {
        // 1000 samples around 17 µs, 9 around 2 ms.
        let mut s: Vec<u64> = (0..1000).map(|i| 16_000 + (i % 50) * 40).collect();
        s.extend([2_000_000; 9]);
        let svg = histogram_svg(&s, "t <&>");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;&amp;&gt;"), "title escaped");
        // Every sample is in a bar: the bars' counts add up.
        let total: u64 = svg
            .lines()
            .filter(|l| l.starts_with("<rect class=\"bar\""))
            .map(|l| {
                let t = &l[l.find("<title>").unwrap() + 7..l.find("</title>").unwrap()];
                t.parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(total, 1009);
        assert_eq!(svg.matches("class=\"mark\"").count(), 4);
        assert!(svg.contains("1009 calls: min 16 µs, median 17 µs"), "{svg}");
        assert!(svg.contains(">10 µs<") && svg.contains(">1 ms<") && svg.contains(">5 ms<"));
        // Tags balance (a cheap well-formedness check).
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn one_sample_and_parsing() {
        let svg = histogram_svg(&[500], "one");
        assert_eq!(svg.matches("class=\"bar\"").count(), 1);
        assert_eq!(parse_samples("{\"x\": [1, 22, 333]}\n"), [1, 22, 333]);
        assert!(parse_samples("nothing").is_empty());
        assert_eq!(nice_step(37.0), 50.0);
        assert_eq!(nice_step(0.2), 1.0);
        assert_eq!(duration(17_250.0), "17.25 µs");
        assert_eq!(duration(2_500_000.0), "2.5 ms");
    }
}
