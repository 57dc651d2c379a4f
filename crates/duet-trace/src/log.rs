//! A plain-text decoded log of a [`Timeline`], for terminals.
//!
//! One line per message as each core saw it, in time order:
//!
//! ```text
//!      time  core      ep   type      msgid  method        size  content
//!    12.204  M4 -> M7  rpc  request   #1     sensorRead    15 B  [0, 1, "sensorRead", []]
//!    12.262  M7 <- M4  rpc  request   #1     sensorRead    15 B  after 58.2 us
//! ```
//!
//! `time` is milliseconds since the trace started. A sent message shows its decoded content
//! (MessagePack as JSON-like text, raw bytes as a string literal); its receipt shows the
//! transit time instead (or the content, if the send was not recorded), and a reply's receipt
//! the call's round trip. Markers appear as `---` lines. A summary per core ends the log.

use std::fmt::Write;

use crate::timeline::{Direction, MessageKind, SpanKind};
use crate::{core_name, CpuId, Timeline};

/// The log as one string (lines end in `\n`).
pub fn write(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>9}  {:<8}  {:<3}  {:<8}  {:<5}  {:<12}  {:>6}  content",
        "time", "core", "ep", "type", "msgid", "method", "size"
    );
    // Calls by their reply's receipt, for the round trip.
    let mut round_trip = std::collections::HashMap::new();
    for s in t.spans.iter().filter(|s| s.kind == SpanKind::Calling) {
        round_trip.insert((s.core, s.end_ns), s.end_ns - s.start_ns);
    }
    let mut points = t.points.iter().filter(|p| !p.doorbell).peekable();
    for m in &t.messages {
        while let Some(p) = points.next_if(|p| p.t_ns <= m.t_ns) {
            let _ = writeln!(
                out,
                "{:>9.3}  --- {}: {}",
                ms(p.t_ns),
                core_name(p.core),
                p.name
            );
        }
        let arrow = match m.direction {
            Direction::Sent => "->",
            Direction::Received => "<-",
        };
        let core = format!("{} {arrow} {}", core_name(m.core), core_name(m.core.peer()));
        let msgid = m.msgid().map(|i| format!("#{i}")).unwrap_or_default();
        let method = m.method.clone().unwrap_or_default();
        let content = match (m.direction, m.other.and_then(|o| t.messages.get(o))) {
            (Direction::Received, Some(sent)) => {
                let mut c = format!("after {:.1} us", us(m.end_ns.saturating_sub(sent.t_ns)));
                if matches!(m.kind, MessageKind::Response { .. }) {
                    if let Some(rt) = round_trip.get(&(m.core, m.end_ns)) {
                        let _ = write!(c, ", round trip {:.1} us", us(*rt));
                    }
                }
                if m.kind == MessageKind::Raw && m.size() != sent.size() {
                    let _ = write!(c, ": {}", m.text());
                }
                c
            }
            _ => m.text(),
        };
        let _ = writeln!(
            out,
            "{:>9.3}  {:<8}  {:<3}  {:<8}  {:<5}  {:<12}  {:>4} B  {}",
            ms(m.t_ns),
            core,
            m.endpoint.name(),
            m.type_name(),
            msgid,
            method,
            m.size(),
            content
        );
    }
    for p in points {
        let _ = writeln!(
            out,
            "{:>9.3}  --- {}: {}",
            ms(p.t_ns),
            core_name(p.core),
            p.name
        );
    }
    out.push_str(&summary(t));
    out
}

/// The summary lines at the end of [`write()`]: per core, messages and bytes sent, calls and
/// their round trips (min / median / max), time asleep and waiting.
pub fn summary(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "--- summary ({:.3} ms traced)", ms(t.end_ns));
    for core in [CpuId::Cm7, CpuId::Cm4] {
        let sent: Vec<_> = t
            .messages
            .iter()
            .filter(|m| m.core == core && m.direction == Direction::Sent)
            .collect();
        let bytes: usize = sent.iter().map(|m| m.size()).sum();
        let mut rts: Vec<u64> = t
            .spans
            .iter()
            .filter(|s| {
                s.core == core && s.kind == SpanKind::Calling && !s.name.ends_with("(no reply)")
            })
            .map(|s| s.end_ns - s.start_ns)
            .collect();
        rts.sort_unstable();
        let time = |k: SpanKind| -> u64 {
            t.spans
                .iter()
                .filter(|s| s.core == core && s.kind == k)
                .map(|s| s.end_ns - s.start_ns)
                .sum()
        };
        let _ = write!(
            out,
            "{}: sent {} messages ({} B); {} calls answered",
            core_name(core),
            sent.len(),
            bytes,
            rts.len()
        );
        if let (Some(lo), Some(hi)) = (rts.first(), rts.last()) {
            let _ = write!(
                out,
                " (round trip min {:.1} / median {:.1} / max {:.1} us)",
                us(*lo),
                us(rts[rts.len() / 2]),
                us(*hi)
            );
        }
        let _ = writeln!(
            out,
            "; asleep {:.3} ms, waiting for replies {:.3} ms, serving {:.3} ms",
            ms(time(SpanKind::Asleep)),
            ms(time(SpanKind::Waiting)),
            ms(time(SpanKind::Serving)),
        );
    }
    out
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}
