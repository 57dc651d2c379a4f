//! Timelines built from hand-made events: decoding, pairing, spans, nesting, flows, and the
//! two writers' output parsed back.

use duet_trace::{
    chrome, log, CpuId, Direction, Endpoint, Event, EventKind, MessageKind, SpanKind, Timeline,
};
use serde_json::Value;

const M7: CpuId = CpuId::Cm7;
const M4: CpuId = CpuId::Cm4;

/// `[0, id, method, [args...]]` with small positive int args.
fn request(id: u8, method: &str, args: &[u8]) -> Vec<u8> {
    let mut v = vec![0x94, 0x00, id, 0xa0 | method.len() as u8];
    v.extend(method.as_bytes());
    v.push(0x90 | args.len() as u8);
    v.extend(args);
    v
}

fn response(id: u8, result: u8) -> Vec<u8> {
    vec![0x94, 0x01, id, 0xc0, result]
}

fn sent(t: u64, core: CpuId, b: Vec<u8>) -> Event {
    Event::sent(t, core, Endpoint::Rpc, b, 2)
}

fn recv(t: u64, core: CpuId, b: Vec<u8>) -> Event {
    Event::received(t, core, Endpoint::Rpc, b, 2)
}

/// One call each way... the M4 calls `add` (#7) on the M7, which sleeps while it waits.
fn one_call() -> Vec<Event> {
    vec![
        sent(100, M4, request(7, "add", &[1, 2])),
        Event {
            t_ns: 102,
            core: M4,
            kind: EventKind::Doorbell,
        },
        Event {
            t_ns: 110,
            core: M4,
            kind: EventKind::Slept {
                dur_ns: 200,
                woken: true,
            },
        },
        recv(150, M7, request(7, "add", &[1, 2])),
        sent(200, M7, response(7, 3)),
        recv(320, M4, response(7, 3)),
    ]
}

#[test]
fn a_call_is_four_messages_paired_with_spans_and_one_flow() {
    let t = Timeline::build(&one_call());
    assert_eq!(t.messages.len(), 4);
    let m = &t.messages;
    assert_eq!(m[0].kind, MessageKind::Request { msgid: 7 });
    assert_eq!(m[0].method.as_deref(), Some("add"));
    assert_eq!((m[0].core, m[0].direction), (M4, Direction::Sent));
    assert_eq!(m[0].other, Some(1));
    assert_eq!(m[1].other, Some(0));
    assert_eq!(
        m[3].kind,
        MessageKind::Response {
            msgid: 7,
            error: false
        }
    );
    assert_eq!(
        m[3].method.as_deref(),
        Some("add"),
        "named after its request"
    );
    assert_eq!(m[3].text(), "[1, 7, nil, 3]");
    let spans: Vec<_> = t
        .spans
        .iter()
        .map(|s| {
            (
                s.core,
                s.kind,
                s.name.as_str(),
                s.start_ns,
                s.end_ns,
                s.nested,
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            (M4, SpanKind::Calling, "call add #7", 100, 322, true),
            (M4, SpanKind::Waiting, "waiting for add #7", 110, 310, true),
            (M7, SpanKind::Serving, "serve add #7", 150, 202, true),
        ]
    );
    assert_eq!(t.flows.len(), 1);
    assert_eq!(t.flows[0].messages, [0, 1, 2, 3]);
    assert_eq!(t.round_trips_ns(), [222]);
    assert_eq!(t.points.len(), 1);
    assert_eq!(t.points[0].name, "doorbell -> M7");
}

#[test]
fn batched_and_split_payloads_are_reassembled_into_messages() {
    // Arduino style: two requests in one payload; then a request over two payloads (the first
    // a full 496 bytes).
    let mut batch = request(1, "a", &[]);
    batch.extend(request(2, "b", &[]));
    let mut big = vec![
        0x94, 0x00, 0x03, 0xa3, b'b', b'i', b'g', 0x91, 0xc5, 0x02, 0x00,
    ];
    big.extend((0..512).map(|i| i as u8));
    let events = vec![
        recv(10, M7, batch),
        recv(20, M7, big[..496].to_vec()),
        recv(30, M7, big[496..].to_vec()),
    ];
    let t = Timeline::build(&events);
    let ids: Vec<_> = t.messages.iter().map(|m| m.msgid()).collect();
    assert_eq!(ids, [Some(1), Some(2), Some(3)]);
    assert_eq!(t.messages[2].size(), big.len());
    assert_eq!((t.messages[2].t_ns, t.messages[2].end_ns), (20, 32));
    // A short payload ends an incomplete message: it shows as malformed, not lost.
    let t = Timeline::build(&[recv(10, M7, big[..100].to_vec())]);
    assert_eq!(t.messages[0].kind, MessageKind::Malformed);
}

#[test]
fn calls_in_flight_at_once_that_cross_are_not_nested() {
    let events = vec![
        sent(0, M7, request(1, "slow", &[])),
        sent(10, M7, request(2, "fast", &[])),
        recv(50, M7, response(1, 0)),
        recv(60, M7, response(2, 0)),
    ];
    let t = Timeline::build(&events);
    let calls: Vec<_> = t
        .spans
        .iter()
        .map(|s| (s.name.as_str(), s.nested))
        .collect();
    assert_eq!(calls, [("call slow #1", true), ("call fast #2", false)]);
    let v: Value = serde_json::from_str(&chrome::write(&t)).unwrap();
    let ev = v["traceEvents"].as_array().unwrap();
    let phases: Vec<&str> = ev
        .iter()
        .filter(|e| e["name"] == "call fast #2")
        .map(|e| e["ph"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["b", "e"], "drawn as an async slice");
}

#[test]
fn unanswered_and_raw_and_garbage_never_panic() {
    let events = vec![
        sent(0, M4, request(9, "lost", &[])),
        Event::sent(5, M4, Endpoint::Raw, b"hello\n".to_vec(), 1),
        Event::received(8, M7, Endpoint::Raw, b"hel".to_vec(), 1),
        Event::received(9, M7, Endpoint::Raw, b"lo\n".to_vec(), 1),
        recv(10, M7, vec![0xc1, 0xff, 0x00]),
        recv(11, M7, vec![0x93, 0x05, 0x01, 0x02]),
    ];
    let t = Timeline::build(&events);
    assert_eq!(t.spans[0].name, "call lost #9 (no reply)");
    // Both raw payloads point at the one send.
    assert_eq!(t.messages[2].other, Some(1));
    assert_eq!(t.messages[3].other, Some(1));
    assert!(t
        .messages
        .iter()
        .filter(|m| m.endpoint == Endpoint::Rpc && m.direction == Direction::Received)
        .all(|m| m.kind == MessageKind::Malformed));
    let text = log::write(&t);
    assert!(text.contains("\"hello\\n\""), "{text}");
    assert!(text.contains("malformed"), "{text}");
    let _: Value = serde_json::from_str(&chrome::write(&t)).unwrap();
}

#[test]
fn the_log_has_one_line_per_message_and_a_summary() {
    let t = Timeline::build(&one_call());
    let text = log::write(&t);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("time") && lines[0].contains("method"));
    assert!(lines[1].contains("M4 -> M7") && lines[1].contains("[0, 7, \"add\", [1, 2]]"));
    assert!(lines[2].contains("M7 <- M4") && lines[2].contains("after 0.1 us"));
    assert!(lines[4].contains("round trip 0.2 us"), "{}", lines[4]);
    assert!(
        text.contains("M4: sent 1 messages (10 B); 1 calls answered"),
        "{text}"
    );
}

#[test]
fn the_picture_of_one_call_has_both_lanes_its_spans_and_two_arrows() {
    let t = Timeline::build(&one_call());
    let (from, to) = duet_trace::svg::first_call_window(&t).unwrap();
    assert!(from < 100 && to > 322);
    let svg = duet_trace::svg::write(&t, from, to);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("class=\"span\"").count(),
        3,
        "call, waiting, serve"
    );
    assert_eq!(svg.matches("class=\"message\"").count(), 4);
    // Request M4 -> M7 and reply M7 -> M4 cross the lanes; serving stays on the M7.
    assert_eq!(svg.matches("class=\"flow\"").count(), 2);
    assert_eq!(svg.matches("class=\"doorbell\"").count(), 1);
    assert!(svg.contains(">M7</text>") && svg.contains(">M4</text>"));
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    // Outside the window: nothing drawn but the lanes.
    let empty = duet_trace::svg::write(&t, 10_000, 20_000);
    assert_eq!(empty.matches("class=\"span\"").count(), 0);
}
