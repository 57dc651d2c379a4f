//! `cargo xtask bench --plot DIR`: pictures of the benchmark samples, as SVG written here (no
//! plotting dependency).
//!
//! - `DIR/sim_rtt_histogram.svg`: the distribution of the simulator's `add(1, 2)` round trip,
//!   one sample per call (the `duet-latency` binary of `duet-bench`, release build), as a
//!   histogram over a logarithmic time axis with the median and tail percentiles marked.
//! - `DIR/emu-profile.svg`: where the emulated chip's instructions go in the benchmark firmware
//!   pair (`bench_m7`/`bench_m4` run by `duet-emu --profile --json`): per core, the functions
//!   with the most instructions and the rest as "other", as horizontal bars with counts and
//!   shares of that core's total. Left out (and reported) when the emulator cannot run.

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
    let (paths, missing) = write(Path::new(dir))?;
    for path in paths {
        eprintln!("plot: wrote {}", path.display());
    }
    for m in missing {
        eprintln!("plot: left out: {m}");
    }
    Ok(())
}

/// Measures and writes every picture into `dir` (created if missing); returns their paths and,
/// for each picture that could not be drawn, why. Fails if the simulator's histogram fails.
pub fn write(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>), String> {
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
    let mut paths = vec![path];
    let mut missing = Vec::new();
    match emu_profile() {
        Ok([m7, m4]) => {
            let path = dir.join("emu-profile.svg");
            let svg = profile_svg(&[("M7", &m7), ("M4", &m4)], PROFILE_TITLE, PROFILE_TOP);
            std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
            paths.push(path);
        }
        Err(e) => missing.push(format!("emu-profile.svg (instructions per function): {e}")),
    }
    Ok((paths, missing))
}

/// What the emulator's profile is of.
const PROFILE_TITLE: &str = "duet on the emulated STM32H747: instructions per function\n\
     benchmark firmware pair (1000 add calls, 1000 notifications, 64 KiB stream)";

/// Functions drawn per core (the rest is one "other" bar).
const PROFILE_TOP: usize = 12;

/// Builds the benchmark firmware pair and runs it on the emulator with `--profile --json`;
/// returns the M7's and the M4's instructions per function.
fn emu_profile() -> Result<[Vec<(String, u64)>; 2], String> {
    let (m7, m4) = crate::bench::bench_images()?;
    let out = crate::bench::run_capture(
        crate::bench::cargo_command()
            .args(["run", "--release", "-q", "-p", "duet-emu", "--"])
            .arg(m7)
            .arg(m4)
            .args(["--profile", "--json"])
            .current_dir(root()),
        "cargo run -p duet-emu -- bench_m7 bench_m4 --profile --json",
    )?;
    parse_profile(&out)
}

/// Reads `"profile":{"M7":[["name",n],...],"M4":[...]}` from `duet-emu --profile --json`'s
/// output: the M7's and the M4's rows, in the order given. Fails if either core is missing or a
/// row is malformed.
fn parse_profile(json: &str) -> Result<[Vec<(String, u64)>; 2], String> {
    let start = json
        .find("\"profile\":{")
        .ok_or("the emulator's JSON has no \"profile\" (run with --profile)")?;
    let body = &json[start..];
    let core = |name: &str| -> Result<Vec<(String, u64)>, String> {
        let key = format!("\"{name}\":[");
        let at = body
            .find(&key)
            .ok_or(format!("the profile has no {name} rows"))?;
        let mut rest = &body[at + key.len()..];
        let mut rows = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.starts_with(']') {
                return Ok(rows);
            }
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
            let bad = || {
                format!(
                    "a malformed {name} profile row near {:?}",
                    &rest[..rest.len().min(40)]
                )
            };
            let r = rest.strip_prefix('[').ok_or_else(bad)?.trim_start();
            let (fname, r) = json_string(r).ok_or_else(bad)?;
            let r = r
                .trim_start()
                .strip_prefix(',')
                .ok_or_else(bad)?
                .trim_start();
            let len = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            let n: u64 = r[..len].parse().map_err(|_| bad())?;
            rest = r[len..].trim_start().strip_prefix(']').ok_or_else(bad)?;
            rows.push((fname, n));
        }
    };
    Ok([core("M7")?, core("M4")?])
}

/// A JSON string at the start of `s`: its value and the text after it.
fn json_string(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    let v = u32::from_str_radix(&hex, 16).ok()?;
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Characters of a function name shown (longer ones are cut, the full name is the tooltip).
const NAME_CHARS: usize = 64;

/// An SVG horizontal bar chart of instructions per function: for each `(core, rows)` (rows of
/// `(function, instructions)`, any order) a section with that core's `top` functions by
/// instructions, most first, and one "other" bar for the rest (if any), each labelled with its
/// count and share of the core's total. Bar lengths are shares, on one scale for all cores, set
/// by the largest function bar; a longer "other" bar is cut (drawn with a gap). Each line of
/// `title` is one line of the heading.
pub fn profile_svg(cores: &[(&str, &[(String, u64)])], title: &str, top: usize) -> String {
    struct Bar {
        name: String,
        n: u64,
        share: f64,
        other: bool,
    }
    let mut sections = Vec::new();
    for (core, rows) in cores {
        let mut v: Vec<&(String, u64)> = rows.iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: u64 = v.iter().map(|r| r.1).sum();
        let share = |n: u64| {
            if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            }
        };
        let mut bars: Vec<Bar> = v
            .iter()
            .take(top)
            .map(|(name, n)| Bar {
                name: name.clone(),
                n: *n,
                share: share(*n),
                other: false,
            })
            .collect();
        if v.len() > top {
            let rest: u64 = v[top..].iter().map(|r| r.1).sum();
            bars.push(Bar {
                name: format!("other ({} functions)", v.len() - top),
                n: rest,
                share: share(rest),
                other: true,
            });
        }
        sections.push((*core, total, bars));
    }
    let max_share = sections
        .iter()
        .flat_map(|s| s.2.iter().filter(|b| !b.other).map(|b| b.share))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let lines: Vec<&str> = title.lines().collect();
    let (w, left, bar_w, row, head) = (1000.0, 450.0, 340.0, 18.0, 28.0);
    let top_y = 20.0 + 18.0 * lines.len() as f64 + 12.0;
    let h = top_y
        + sections
            .iter()
            .map(|s| head + row * s.2.len() as f64 + 14.0)
            .sum::<f64>()
        + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\"{}>{}</text>",
            w / 2.0,
            24.0 + 18.0 * i as f64,
            if i == 0 { " font-weight=\"bold\"" } else { "" },
            esc(line)
        );
    }
    let mut y = top_y;
    for (i, (core, total, bars)) in sections.iter().enumerate() {
        let colour = ["#4477aa", "#ee7733"][i % 2];
        let _ = writeln!(
            s,
            "<text class=\"core\" x=\"10\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}: {} instructions in total</text>",
            y + 14.0,
            esc(core),
            group(*total)
        );
        y += head;
        for b in bars {
            let shown = if b.name.chars().count() > NAME_CHARS {
                let cut: String = b.name.chars().take(NAME_CHARS - 1).collect();
                format!("{cut}…")
            } else {
                b.name.clone()
            };
            let full = (b.share / max_share * bar_w).max(if b.n > 0 { 1.0 } else { 0.0 });
            let cut = full > bar_w * 1.2;
            let len = if cut { bar_w * 1.2 } else { full };
            let (class, fill) = if b.other {
                ("other", "#bbbbbb")
            } else {
                ("bar", colour)
            };
            let _ = writeln!(
                s,
                "<text class=\"name\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-family=\"monospace\" font-size=\"11\">{}<title>{}</title></text>",
                left - 6.0,
                y + 12.5,
                esc(&shown),
                esc(&b.name)
            );
            let _ = writeln!(
                s,
                "<rect class=\"{class}\" x=\"{left}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"{}\" fill=\"{fill}\"><title>{}</title></rect>",
                y + 2.0,
                row - 4.0,
                b.n
            );
            if cut {
                let _ = writeln!(
                    s,
                    "<path class=\"cut\" d=\"M{:.1} {:.1} l6 -{} l6 0 l-6 {} z\" fill=\"white\"/>",
                    left + bar_w * 0.9,
                    y + row,
                    row + 2.0,
                    row + 2.0
                );
            }
            let _ = writeln!(
                s,
                "<text class=\"count\" x=\"{:.1}\" y=\"{:.1}\">{} ({:.1}%)</text>",
                left + len + 6.0,
                y + 12.5,
                group(b.n),
                b.share * 100.0
            );
            y += row;
        }
        y += 14.0;
    }
    s.push_str("</svg>\n");
    s
}

/// `n` with thousands separated by commas: `1,234,567`.
fn group(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

    /// Checks that every tag in `svg` is closed in order and that text holds no raw `<`/`&`
    /// (entities aside).
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;"]
                        .iter()
                        .any(|e| ent.starts_with(e)),
                    "raw & in {text:?}"
                );
            }
            assert!(!text.contains('>'), "raw > in {text:?}");
            let end = rest[lt..].find('>').expect("unclosed tag") + lt;
            let tag = &rest[lt + 1..end];
            assert!(!tag.contains('<'), "< inside a tag: {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn profile_chart_shows_the_top_functions_in_order_and_the_rest() {
        // 20 M7 functions (f00 has 2000, f01 1900, ...), given in scrambled order; 3 on the M4.
        let mut m7: Vec<(String, u64)> = (0..20u64)
            .map(|i| (format!("f{i:02}"), 2000 - i * 100))
            .collect();
        m7.reverse();
        m7.swap(0, 7);
        m7.push(("<duet::Rpc<T> as Foo>::call&go".into(), 50));
        let m4: Vec<(String, u64)> = vec![
            ("idle".into(), 300),
            ("<T as core::fmt::Debug>::fmt".into(), 600),
            ("main".into(), 100),
        ];
        let svg = profile_svg(&[("M7", &m7), ("M4", &m4)], "run <1> & more", 12);
        assert_well_formed(&svg);
        assert!(svg.contains("run &lt;1&gt; &amp; more"));
        // M7: f00..f11, then "other" with the 8 remaining f's and the Rust path.
        let names: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<text class=\"name\""))
            .map(|l| &l[l.find('>').unwrap() + 1..l.find("<title>").unwrap()])
            .collect();
        let mut want: Vec<String> = (0..12).map(|i| format!("f{i:02}")).collect();
        want.push("other (9 functions)".into());
        want.extend(["&lt;T as core::fmt::Debug&gt;::fmt", "idle", "main"].map(String::from));
        assert_eq!(names, want);
        assert_eq!(svg.matches("class=\"other\"").count(), 1);
        // The M4's top bar (60%) sets the scale; alone, the M7's "other" (1.8 times f00) is
        // longer than the scale allows and is cut.
        assert_eq!(svg.matches("class=\"cut\"").count(), 0);
        let one = profile_svg(&[("M7", &m7)], "t", 12);
        assert_well_formed(&one);
        assert_eq!(one.matches("class=\"cut\"").count(), 1);
        // Counts and shares: M7 total = 21000 + 50; f00 = 2000; other = 800+...+100 + 50.
        let total7: u64 = m7.iter().map(|r| r.1).sum();
        assert_eq!(total7, 21_050);
        assert!(svg.contains("M7: 21,050 instructions in total"), "{svg}");
        assert!(svg.contains(">2,000 (9.5%)<"), "{svg}");
        assert!(svg.contains(">3,650 (17.3%)<"), "{svg}");
        assert!(svg.contains(">600 (60.0%)<"), "{svg}");
        assert!(!svg.contains("Rpc<T>"), "escaped or in other");
    }

    #[test]
    fn reads_the_emulator_profile_json() {
        let json = r#"{"m7_exit":0,"cores":{"M7":{"console":"x\"]"}},"probes":[],"profile":{"M7":[["main",10],["<a::B<T> as C>::d",7]],"M4":[["\"q\"\\\u00e9",3]]}}"#;
        let [m7, m4] = parse_profile(json).unwrap();
        assert_eq!(
            m7,
            vec![("main".into(), 10), ("<a::B<T> as C>::d".into(), 7)]
        );
        assert_eq!(m4, vec![("\"q\"\\é".into(), 3)]);
        assert!(parse_profile(r#"{"m7_exit":0}"#).is_err());
        assert!(parse_profile(r#"{"profile":{"M7":[["a",1]]}}"#).is_err());
        assert!(parse_profile(r#"{"profile":{"M7":[["a",x]],"M4":[]}}"#).is_err());
        let [a, b] = parse_profile(r#"{"profile":{"M7":[],"M4":[]}}"#).unwrap();
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(12), "12");
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
