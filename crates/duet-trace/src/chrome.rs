//! Chrome / Perfetto trace-event JSON ("JSON Object Format" of the Trace Event Format).
//!
//! Open the file in <https://ui.perfetto.dev> ("Open trace file") or `chrome://tracing`
//! ("Load"). What it contains:
//! - one process per core (`pid` 1 = M7, 2 = M4), each with one thread track (`tid` = `pid`);
//! - on each track, complete slices (`"ph": "X"`): every message sent (`-> name`) or received
//!   (`<- name`) with its decoded content in `args`; calls (`call name #id`), requests being
//!   served (`serve name #id`), sleeps (`asleep`, `waiting for name #id`) and busy times;
//!   slices that do not nest on the track (several calls in flight at once) are async slices
//!   (`"ph": "b"`/`"e"`, `cat` `"inflight"`) of the same process;
//! - instant events (`"ph": "i"`): doorbells (thread scope) and markers (process scope);
//! - flow events (`"ph": "s"`, `"t"`, `"f"`): one arrow chain per exchange, from the request
//!   leaving the caller through its arrival and the reply leaving the callee to the reply's
//!   arrival; one arrow per notification and raw send.
//!
//! Timestamps (`ts`, `dur`) are microseconds with nanosecond decimals.

use serde_json::{json, Value};

use crate::decode::hex_into;
use crate::timeline::{Direction, SpanKind};
use crate::{core_name, CpuId, Timeline};

/// The trace-event `pid` (and `tid`) of a core's track: 1 for the M7, 2 for the M4.
pub fn pid(core: CpuId) -> u32 {
    match core {
        CpuId::Cm7 => 1,
        CpuId::Cm4 => 2,
    }
}

/// Payload bytes shown in full in a message's `args.bytes` (longer ones are cut, marked `..`).
pub const BYTES_SHOWN: usize = 512;

/// Where a flow arrow touches message `m` (ns): 1 ns inside the start of a send, 1 ns inside
/// the end of a receipt (the middle of a slice shorter than 2 ns).
pub fn flow_point(m: &crate::Message) -> u64 {
    let d = ((m.end_ns - m.t_ns) / 2).min(1);
    match m.direction {
        Direction::Sent => m.t_ns + d,
        Direction::Received => m.end_ns - d,
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The timeline as a trace-event JSON document (`{"traceEvents": [...], ...}`).
pub fn write(t: &Timeline) -> String {
    to_value(t).to_string()
}

/// The timeline as a `serde_json::Value` (what [`write()`] serializes).
pub fn to_value(t: &Timeline) -> Value {
    let mut ev: Vec<Value> = Vec::new();
    for core in [CpuId::Cm7, CpuId::Cm4] {
        let p = pid(core);
        let title = match core {
            CpuId::Cm7 => "M7 (Cortex-M7, RPMsg host)",
            CpuId::Cm4 => "M4 (Cortex-M4, RPMsg remote)",
        };
        ev.push(
            json!({"ph": "M", "name": "process_name", "pid": p, "tid": p,
                       "args": {"name": title}}),
        );
        ev.push(
            json!({"ph": "M", "name": "process_sort_index", "pid": p, "tid": p,
                       "args": {"sort_index": p}}),
        );
        ev.push(json!({"ph": "M", "name": "thread_name", "pid": p, "tid": p,
                       "args": {"name": core_name(core)}}));
    }
    for (i, s) in t.spans.iter().enumerate() {
        let p = pid(s.core);
        let cat = match s.kind {
            SpanKind::Serving => "serve",
            SpanKind::Calling => "call",
            SpanKind::Waiting => "waiting",
            SpanKind::Asleep => "asleep",
            SpanKind::Busy => "busy",
        };
        let mut args = json!({});
        if let Some(w) = s.woken {
            args["woken_by_doorbell"] = json!(w);
        }
        if s.nested {
            ev.push(
                json!({"ph": "X", "name": s.name, "cat": cat, "pid": p, "tid": p,
                           "ts": us(s.start_ns), "dur": us(s.end_ns - s.start_ns),
                           "args": args}),
            );
        } else {
            let id = format!("0x{:x}", i + 1);
            ev.push(
                json!({"ph": "b", "name": s.name, "cat": "inflight", "id": id,
                           "pid": p, "tid": p, "ts": us(s.start_ns), "args": args}),
            );
            ev.push(
                json!({"ph": "e", "name": s.name, "cat": "inflight", "id": id,
                           "pid": p, "tid": p, "ts": us(s.end_ns)}),
            );
        }
    }
    for m in &t.messages {
        let p = pid(m.core);
        let arrow = match m.direction {
            Direction::Sent => "->",
            Direction::Received => "<-",
        };
        let mut hex = String::new();
        hex_into(&mut hex, &m.bytes, BYTES_SHOWN);
        let mut args = json!({
            "from": core_name(m.from()),
            "to": core_name(m.from().peer()),
            "endpoint": m.endpoint.name(),
            "type": m.type_name(),
            "size": m.size(),
            "decoded": m.text(),
            "bytes": hex,
        });
        if let Some(method) = &m.method {
            args["method"] = json!(method);
        }
        if let Some(id) = m.msgid() {
            args["msgid"] = json!(id);
        }
        if let Some(o) = m.other.and_then(|o| t.messages.get(o)) {
            // Transit time: from the start of sending to the end of receiving.
            let (a, b) = match m.direction {
                Direction::Sent => (m.t_ns, o.end_ns),
                Direction::Received => (o.t_ns, m.end_ns),
            };
            args["transit_us"] = json!(us(b.saturating_sub(a)));
        }
        ev.push(
            json!({"ph": "X", "name": format!("{arrow} {}", m.label()), "cat": "message",
                       "pid": p, "tid": p, "ts": us(m.t_ns), "dur": us(m.end_ns - m.t_ns),
                       "args": args}),
        );
    }
    for pt in &t.points {
        let p = pid(pt.core);
        if pt.doorbell {
            ev.push(
                json!({"ph": "i", "s": "t", "name": pt.name, "cat": "doorbell",
                           "pid": p, "tid": p, "ts": us(pt.t_ns)}),
            );
        } else {
            ev.push(json!({"ph": "i", "s": "p", "name": pt.name, "cat": "mark",
                           "pid": p, "tid": p, "ts": us(pt.t_ns)}));
        }
    }
    for f in &t.flows {
        let n = f.messages.len();
        for (k, &i) in f.messages.iter().enumerate() {
            let Some(m) = t.messages.get(i) else { continue };
            let p = pid(m.core);
            // Inside the message's slice (so the arrow binds to it): where a send starts and
            // where a receipt ends, so arrows always point forward in time (a receiver may
            // take a message before the sender's send call has returned).
            let ts = us(flow_point(m));
            let ph = if k == 0 {
                "s"
            } else if k + 1 == n {
                "f"
            } else {
                "t"
            };
            let mut e = json!({"ph": ph, "name": f.name, "cat": "flow", "id": f.id,
                               "pid": p, "tid": p, "ts": ts});
            if ph == "f" {
                e["bp"] = json!("e");
            }
            ev.push(e);
        }
    }
    json!({
        "traceEvents": ev,
        "displayTimeUnit": "ms",
        "otherData": {"generator": "duet-trace", "version": env!("CARGO_PKG_VERSION")},
    })
}
