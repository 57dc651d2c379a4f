//! A picture of a stretch of a [`Timeline`] as SVG: one lane per core (M7 on top), the
//! activity spans stacked by nesting, the messages on a row of their own with the flow arrows
//! between the cores, doorbells as ticks, and a time axis in µs. For documents and for a look
//! without a trace viewer; the JSON of [`chrome`](crate::chrome) holds more.

use std::fmt::Write;

use crate::timeline::{Direction, SpanKind};
use crate::{core_name, CpuId, Timeline};

/// Width of the picture in pixels.
const WIDTH: f64 = 960.0;
/// Left margin (lane names).
const LEFT: f64 = 60.0;
/// Height of one row.
const ROW: f64 = 20.0;

/// The stretch around the first call that got a reply: from a bit before its request left to a
/// bit after its reply arrived (`None` if no call was answered).
pub fn first_call_window(t: &Timeline) -> Option<(u64, u64)> {
    let s = t
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Calling && !s.name.ends_with("(no reply)"))?;
    let margin = (s.end_ns - s.start_ns) / 4 + 1;
    Some((s.start_ns.saturating_sub(margin), s.end_ns + margin))
}

fn color(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Serving => "#2e86c1",
        SpanKind::Calling => "#27ae60",
        SpanKind::Waiting => "#f39c12",
        SpanKind::Asleep => "#b8bec4",
        SpanKind::Busy => "#8e44ad",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG of what happened between `from_ns` and `to_ns` (clipped to it).
pub fn write(t: &Timeline, from_ns: u64, to_ns: u64) -> String {
    let to_ns = to_ns.max(from_ns + 1);
    let span = (to_ns - from_ns) as f64;
    let pw = WIDTH - LEFT - 20.0;
    let x = |ns: u64| LEFT + (ns.clamp(from_ns, to_ns) - from_ns) as f64 / span * pw;
    let visible = |a: u64, b: u64| b >= from_ns && a <= to_ns;

    // Rows per core: row 0 messages, then one per nesting depth of the spans.
    let mut depth_of = vec![0usize; t.spans.len()];
    let mut rows = [1usize; 2];
    for core in [CpuId::Cm7, CpuId::Cm4] {
        let mut stack: Vec<u64> = Vec::new();
        for (i, s) in t.spans.iter().enumerate() {
            if s.core != core || !s.nested {
                continue;
            }
            while stack.last().is_some_and(|&e| e <= s.start_ns) {
                stack.pop();
            }
            depth_of[i] = stack.len();
            stack.push(s.end_ns);
            if visible(s.start_ns, s.end_ns) {
                rows[lane(core)] = rows[lane(core)].max(stack.len() + 1);
            }
        }
    }
    // Spans not nested get a row below the others.
    for (i, s) in t.spans.iter().enumerate() {
        if !s.nested && visible(s.start_ns, s.end_ns) {
            depth_of[i] = rows[lane(s.core)] - 1;
            rows[lane(s.core)] += 1;
        }
    }
    let lane_top = |core: CpuId| -> f64 {
        match core {
            CpuId::Cm7 => 40.0,
            CpuId::Cm4 => 40.0 + rows[0] as f64 * ROW + 30.0,
        }
    };
    let height = lane_top(CpuId::Cm4) + rows[1] as f64 * ROW + 50.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#c0392b"/></marker></defs>"##
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    for core in [CpuId::Cm7, CpuId::Cm4] {
        let top = lane_top(core);
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top}" width="{pw}" height="{}" fill="#f7f7f7" stroke="#ddd"/><text x="10" y="{}" font-size="14" font-weight="bold">{}</text>"##,
            rows[lane(core)] as f64 * ROW,
            top + 15.0,
            core_name(core)
        );
    }
    // Spans.
    for (i, s) in t.spans.iter().enumerate() {
        if !visible(s.start_ns, s.end_ns) {
            continue;
        }
        let y = lane_top(s.core) + (depth_of[i] + 1) as f64 * ROW + 1.0;
        let (x0, x1) = (x(s.start_ns), x(s.end_ns));
        let w = (x1 - x0).max(1.0);
        let _ = write!(
            out,
            r#"<rect class="span" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}" rx="2"><title>{} ({:.1} µs)</title></rect>"#,
            ROW - 2.0,
            color(s.kind),
            esc(&s.name),
            (s.end_ns - s.start_ns) as f64 / 1e3
        );
        if w > 7.0 * s.name.len() as f64 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" fill="white">{}</text>"#,
                x0 + 4.0,
                y + 13.0,
                esc(&s.name)
            );
        }
        out.push('\n');
    }
    // Messages: a mark on the lane's first row, the label above the sent ones.
    let mut mid = vec![None; t.messages.len()];
    for (i, m) in t.messages.iter().enumerate() {
        if !visible(m.t_ns, m.end_ns) {
            continue;
        }
        let top = lane_top(m.core);
        let (x0, x1) = (x(m.t_ns), x(m.end_ns));
        let my = top + ROW / 2.0;
        mid[i] = Some((x(crate::chrome::flow_point(m)), my));
        let _ = write!(
            out,
            r##"<rect class="message" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#333"><title>{} {} ({} B): {}</title></rect>"##,
            top + 4.0,
            (x1 - x0).max(2.0),
            ROW - 8.0,
            if m.direction == Direction::Sent {
                "sent"
            } else {
                "received"
            },
            esc(&m.label()),
            m.size(),
            esc(&m.text())
        );
        if m.direction == Direction::Sent {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x1 + 3.0,
                top + 14.0,
                esc(&m.label())
            );
        }
        out.push('\n');
    }
    // Flow arrows between consecutive messages of an exchange.
    for f in &t.flows {
        for pair in f.messages.windows(2) {
            if let (Some(Some(a)), Some(Some(b))) = (mid.get(pair[0]), mid.get(pair[1])) {
                if (a.1 - b.1).abs() < 1.0 {
                    continue; // the same core: the span shows it
                }
                let _ = writeln!(
                    out,
                    r##"<line class="flow" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#c0392b" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
                    a.0, a.1, b.0, b.1
                );
            }
        }
    }
    // Doorbells: a small tick under the lane's message row.
    for p in t.points.iter().filter(|p| p.doorbell) {
        if !visible(p.t_ns, p.t_ns) {
            continue;
        }
        let px = x(p.t_ns);
        let y = lane_top(p.core);
        let _ = writeln!(
            out,
            r##"<path class="doorbell" d="M{px:.1} {:.1} l-4 -7 h8 z" fill="#d35400"><title>{}</title></path>"##,
            y + ROW * rows[lane(p.core)] as f64,
            esc(&p.name)
        );
    }
    // Time axis.
    let axis_y = height - 30.0;
    let _ = writeln!(
        out,
        r#"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="black"/>"#,
        LEFT + pw
    );
    let step = nice_step(span / 8.0);
    let mut tick = 0.0;
    while tick <= span {
        let tx = LEFT + tick / span * pw;
        let _ = writeln!(
            out,
            r#"<line x1="{tx:.1}" y1="{axis_y}" x2="{tx:.1}" y2="{}" stroke="black"/><text x="{tx:.1}" y="{}" text-anchor="middle">{}</text>"#,
            axis_y + 5.0,
            axis_y + 17.0,
            trim(tick / 1e3)
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">µs after {:.3} ms</text>"#,
        LEFT + pw,
        axis_y - 5.0,
        from_ns as f64 / 1e6
    );
    // Legend.
    let mut lx = LEFT;
    for (k, name) in [
        (SpanKind::Calling, "call"),
        (SpanKind::Waiting, "waiting for reply"),
        (SpanKind::Serving, "serving"),
        (SpanKind::Asleep, "asleep"),
        (SpanKind::Busy, "busy"),
    ] {
        let _ = write!(
            out,
            r#"<rect x="{lx}" y="12" width="12" height="12" fill="{}"/><text x="{}" y="22">{name}</text>"#,
            color(k),
            lx + 16.0
        );
        lx += 30.0 + 7.0 * name.len() as f64;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{lx}" y="14" width="12" height="8" fill="#333"/><text x="{}" y="22">message</text>"##,
        lx + 16.0
    );
    out.push_str("</svg>\n");
    out
}

fn lane(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => 0,
        CpuId::Cm4 => 1,
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw` (at least 1).
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * p)
}

fn trim(v: f64) -> String {
    let t = format!("{v:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}
