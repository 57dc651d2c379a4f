//! [`Timeline`]: events decoded into messages, pairs, activity spans and flows.

use std::collections::{HashMap, VecDeque};

use duet_codec::rpc::{self, Message as RpcMessage};

use crate::decode::{render, render_raw, Splitter};
use crate::{core_name, CpuId, Endpoint, Event, EventKind};

/// Whether a core sent or received a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The core handed it to the transport.
    Sent,
    /// The core took it from the transport.
    Received,
}

/// What a message is, from its first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// `[0, msgid, method, params]`.
    Request {
        /// The msgid as sent (any integer).
        msgid: i64,
    },
    /// `[1, msgid, error, result]`.
    Response {
        /// The msgid it answers.
        msgid: i64,
        /// Whether the error field is not nil.
        error: bool,
    },
    /// `[2, method, params]`.
    Notification,
    /// Bytes on the `"raw"` endpoint (one payload or one send).
    Raw,
    /// Data on `"rpc"` that is not a MessagePack-RPC message (or an incomplete one).
    Malformed,
}

/// One message as one core saw it (each message normally appears twice: sent by one core,
/// received by the other).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// When the first payload of it started to be sent or received (ns).
    pub t_ns: u64,
    /// When the last payload of it was done (ns).
    pub end_ns: u64,
    /// The core that sent or received it.
    pub core: CpuId,
    /// Sent or received by `core`.
    pub direction: Direction,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its type.
    pub kind: MessageKind,
    /// The method: of a request or notification, and of the request a response answers (once
    /// paired).
    pub method: Option<String>,
    /// Its bytes (MessagePack for `"rpc"`).
    pub bytes: Vec<u8>,
    /// The same message on the other core (index into [`Timeline::messages`]), if paired.
    pub other: Option<usize>,
}

impl Message {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The core that sent it.
    pub fn from(&self) -> CpuId {
        match self.direction {
            Direction::Sent => self.core,
            Direction::Received => self.core.peer(),
        }
    }

    /// The msgid of a request or response.
    pub fn msgid(&self) -> Option<i64> {
        match self.kind {
            MessageKind::Request { msgid } | MessageKind::Response { msgid, .. } => Some(msgid),
            _ => None,
        }
    }

    /// The type as a word: `request`, `response`, `error`, `notify`, `bytes` (raw), `malformed`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            MessageKind::Request { .. } => "request",
            MessageKind::Response { error: false, .. } => "response",
            MessageKind::Response { error: true, .. } => "error",
            MessageKind::Notification => "notify",
            MessageKind::Raw => "bytes",
            MessageKind::Malformed => "malformed",
        }
    }

    /// A short name: `sensorRead #3`, `sensorRead #3 reply`, `rtcTime`, `raw 19 B`.
    pub fn label(&self) -> String {
        let method = self.method.as_deref().unwrap_or("?");
        match self.kind {
            MessageKind::Request { msgid } => format!("{method} #{msgid}"),
            MessageKind::Response { msgid, error } => {
                format!(
                    "{method} #{msgid} {}",
                    if error { "error" } else { "reply" }
                )
            }
            MessageKind::Notification => method.to_string(),
            MessageKind::Raw => format!("raw {} B", self.size()),
            MessageKind::Malformed => format!("malformed {} B", self.size()),
        }
    }

    /// The content as text: decoded MessagePack for `"rpc"`, a string literal for `"raw"`.
    pub fn text(&self) -> String {
        match self.kind {
            MessageKind::Raw => render_raw(&self.bytes),
            _ => render(&self.bytes),
        }
    }
}

/// What a core was doing during a [`Span`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Serving a request: from its arrival on this core to the response leaving it (the
    /// handler ran inside; includes any queueing before it).
    Serving,
    /// A call of this core: from the request leaving to the reply arriving.
    Calling,
    /// Asleep (waiting for the doorbell or a deadline) while a call of this core was in
    /// flight: waiting for a reply.
    Waiting,
    /// Asleep with no call in flight (idle).
    Asleep,
    /// Busy in the program (`delay`, a peripheral).
    Busy,
}

/// An interval of one core's activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The core.
    pub core: CpuId,
    /// Start (ns).
    pub start_ns: u64,
    /// End (ns).
    pub end_ns: u64,
    /// What it was.
    pub kind: SpanKind,
    /// A label (`sensorRead #3`, `waiting for sensorRead #3`, `asleep`, `delay(1000)`).
    pub name: String,
    /// Whether it nests properly within the core's other spans (then it is drawn on the core's
    /// track; otherwise, as for calls in flight at once, as an async slice beside it).
    pub nested: bool,
    /// Sleeps: whether the doorbell ended it.
    pub woken: Option<bool>,
}

/// A chain of one exchange across the cores: the messages (indices into
/// [`Timeline::messages`]) in order. A call: request sent, request received, reply sent,
/// reply received (those that were recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// A number unique in the timeline.
    pub id: u64,
    /// A label (`sensorRead #3`).
    pub name: String,
    /// The messages in order.
    pub messages: Vec<usize>,
}

/// A point event: a doorbell or a marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// When (ns).
    pub t_ns: u64,
    /// On which core.
    pub core: CpuId,
    /// What (`doorbell -> M4`, or a marker's text).
    pub name: String,
    /// Whether it is a doorbell (else a marker).
    pub doorbell: bool,
}

/// Everything a trace shows, derived from events by [`Timeline::build`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Every message, as each core saw it, by start time.
    pub messages: Vec<Message>,
    /// Every activity span, by start time.
    pub spans: Vec<Span>,
    /// Exchanges across the cores.
    pub flows: Vec<Flow>,
    /// Doorbells and markers, by time.
    pub points: Vec<Point>,
    /// End of the last event (ns).
    pub end_ns: u64,
}

/// The payload size that marks a payload as "full" (the message may continue).
const FULL: usize = duet::MAX_PAYLOAD;

impl Timeline {
    /// Decodes, pairs and derives everything from `events` (any order; sorted by time here).
    /// Never panics, whatever the bytes.
    pub fn build(events: &[Event]) -> Timeline {
        let mut events: Vec<&Event> = events.iter().collect();
        events.sort_by_key(|e| e.t_ns);
        let mut t = Timeline {
            end_ns: events.iter().map(|e| e.end_ns()).max().unwrap_or(0),
            ..Timeline::default()
        };
        let mut splitters: HashMap<(CpuId, Direction, Endpoint), Splitter> = HashMap::new();
        let mut sleeps = Vec::new();
        for (i, e) in events.iter().enumerate() {
            match &e.kind {
                EventKind::Sent {
                    endpoint, bytes, ..
                }
                | EventKind::Received {
                    endpoint, bytes, ..
                } => {
                    let direction = if matches!(e.kind, EventKind::Sent { .. }) {
                        Direction::Sent
                    } else {
                        Direction::Received
                    };
                    if *endpoint == Endpoint::Raw {
                        t.messages.push(Message {
                            t_ns: e.t_ns,
                            end_ns: e.end_ns(),
                            core: e.core,
                            direction,
                            endpoint: *endpoint,
                            kind: MessageKind::Raw,
                            method: None,
                            bytes: bytes.clone(),
                            other: None,
                        });
                        continue;
                    }
                    let s = splitters.entry((e.core, direction, *endpoint)).or_default();
                    for piece in s.push(i, bytes, bytes.len() >= FULL) {
                        let first = piece.parts.first().map_or(e.t_ns, |&p| events[p].t_ns);
                        let (kind, method) = if piece.whole {
                            classify(&piece.bytes)
                        } else {
                            (MessageKind::Malformed, None)
                        };
                        t.messages.push(Message {
                            t_ns: first,
                            end_ns: e.end_ns(),
                            core: e.core,
                            direction,
                            endpoint: *endpoint,
                            kind,
                            method,
                            bytes: piece.bytes,
                            other: None,
                        });
                    }
                }
                EventKind::Doorbell => t.points.push(Point {
                    t_ns: e.t_ns,
                    core: e.core,
                    name: format!("doorbell -> {}", core_name(e.core.peer())),
                    doorbell: true,
                }),
                EventKind::Mark { text } => t.points.push(Point {
                    t_ns: e.t_ns,
                    core: e.core,
                    name: text.clone(),
                    doorbell: false,
                }),
                EventKind::Slept { woken, .. } => sleeps.push((e.core, e.t_ns, e.end_ns(), *woken)),
                EventKind::Busy { what, .. } => t.spans.push(Span {
                    core: e.core,
                    start_ns: e.t_ns,
                    end_ns: e.end_ns(),
                    kind: SpanKind::Busy,
                    name: what.clone(),
                    nested: true,
                    woken: None,
                }),
            }
        }
        t.messages.sort_by_key(|m| m.t_ns);
        t.pair_copies();
        t.pair_calls();
        t.label_sleeps(sleeps);
        t.spans
            .sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(b.end_ns.cmp(&a.end_ns)));
        t.check_nesting();
        t
    }

    /// Links each sent message with its receipt on the other core: per endpoint and direction
    /// the transport keeps order, so the n-th whole message sent is the n-th received (checked
    /// byte for byte); raw payloads are matched by byte offset.
    fn pair_copies(&mut self) {
        let mut sent: HashMap<(CpuId, Endpoint), VecDeque<(usize, usize)>> = HashMap::new();
        for i in 0..self.messages.len() {
            let m = &self.messages[i];
            let key = (m.from(), m.endpoint);
            match m.direction {
                Direction::Sent => {
                    if m.kind != MessageKind::Malformed || m.endpoint == Endpoint::Raw {
                        sent.entry(key).or_default().push_back((i, m.size()));
                    }
                }
                Direction::Received => {
                    let Some(q) = sent.get_mut(&key) else {
                        continue;
                    };
                    let Some(&(j, left)) = q.front() else {
                        continue;
                    };
                    if m.endpoint == Endpoint::Raw {
                        // Payload boundaries may differ from sends: match by bytes left.
                        let n = m.size();
                        if n >= left {
                            q.pop_front();
                        } else if let Some(f) = q.front_mut() {
                            f.1 = left - n;
                        }
                        self.messages[i].other = Some(j);
                        if self.messages[j].other.is_none() {
                            self.messages[j].other = Some(i);
                        }
                    } else if self.messages[j].bytes == m.bytes {
                        q.pop_front();
                        self.messages[i].other = Some(j);
                        self.messages[j].other = Some(i);
                    }
                }
            }
        }
    }

    /// Pairs requests with responses on each core (calls on the caller, serving on the
    /// callee), names responses after their requests, and makes the flows.
    fn pair_calls(&mut self) {
        // (core, msgid) -> request indices, oldest first.
        let mut calls: HashMap<(CpuId, i64), VecDeque<usize>> = HashMap::new();
        let mut served: HashMap<(CpuId, i64), VecDeque<usize>> = HashMap::new();
        let mut pairs = Vec::new();
        for i in 0..self.messages.len() {
            let m = &self.messages[i];
            match (m.kind.clone(), m.direction) {
                (MessageKind::Request { msgid }, Direction::Sent) => {
                    calls.entry((m.core, msgid)).or_default().push_back(i)
                }
                (MessageKind::Request { msgid }, Direction::Received) => {
                    served.entry((m.core, msgid)).or_default().push_back(i)
                }
                (MessageKind::Response { msgid, .. }, dir) => {
                    let table = if dir == Direction::Received {
                        &mut calls
                    } else {
                        &mut served
                    };
                    if let Some(req) = table.get_mut(&(m.core, msgid)).and_then(|q| q.pop_front()) {
                        pairs.push((req, i));
                    }
                }
                _ => {}
            }
        }
        let mut next_flow = 1;
        for &(req, resp) in &pairs {
            let method = self.messages[req].method.clone();
            self.messages[resp].method = method;
            let (q, r) = (&self.messages[req], &self.messages[resp]);
            let calling = q.direction == Direction::Sent;
            self.spans.push(Span {
                core: q.core,
                start_ns: q.t_ns,
                end_ns: r.end_ns,
                kind: if calling {
                    SpanKind::Calling
                } else {
                    SpanKind::Serving
                },
                name: if calling {
                    format!("call {}", q.label())
                } else {
                    format!("serve {}", q.label())
                },
                nested: true,
                woken: None,
            });
            if calling {
                let mut chain = vec![req];
                chain.extend(q.other);
                chain.extend(r.other);
                chain.push(resp);
                self.flows.push(Flow {
                    id: next_flow,
                    name: q.label(),
                    messages: chain,
                });
                next_flow += 1;
            }
        }
        // Requests without a reply: a call span up to the end of their sending.
        let answered: std::collections::HashSet<usize> = pairs.iter().map(|p| p.0).collect();
        for (i, m) in self.messages.iter().enumerate() {
            if matches!(m.kind, MessageKind::Request { .. })
                && m.direction == Direction::Sent
                && !answered.contains(&i)
            {
                self.spans.push(Span {
                    core: m.core,
                    start_ns: m.t_ns,
                    end_ns: m.end_ns,
                    kind: SpanKind::Calling,
                    name: format!("call {} (no reply)", m.label()),
                    nested: true,
                    woken: None,
                });
                let mut chain = vec![i];
                chain.extend(m.other);
                if chain.len() > 1 {
                    self.flows.push(Flow {
                        id: next_flow,
                        name: m.label(),
                        messages: chain,
                    });
                    next_flow += 1;
                }
            }
        }
        // Notifications and raw data: sent -> received.
        for (i, m) in self.messages.iter().enumerate() {
            let one_way = matches!(m.kind, MessageKind::Notification | MessageKind::Raw);
            if one_way && m.direction == Direction::Sent {
                if let Some(o) = m.other {
                    self.flows.push(Flow {
                        id: next_flow,
                        name: m.label(),
                        messages: vec![i, o],
                    });
                    next_flow += 1;
                }
            }
        }
    }

    /// Turns sleeps into spans: waiting for the latest call in flight on that core, or asleep.
    fn label_sleeps(&mut self, sleeps: Vec<(CpuId, u64, u64, bool)>) {
        let calls: Vec<(CpuId, u64, u64, String)> = self
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Calling)
            .map(|s| (s.core, s.start_ns, s.end_ns, s.name.clone()))
            .collect();
        for (core, start, end, woken) in sleeps {
            let waiting = calls
                .iter()
                .filter(|c| c.0 == core && c.1 <= start && c.2 >= end)
                .max_by_key(|c| c.1);
            let (kind, name) = match waiting {
                Some(c) => (
                    SpanKind::Waiting,
                    format!("waiting for {}", c.3.trim_start_matches("call ")),
                ),
                None => (SpanKind::Asleep, "asleep".to_string()),
            };
            self.spans.push(Span {
                core,
                start_ns: start,
                end_ns: end,
                kind,
                name,
                nested: true,
                woken: Some(woken),
            });
        }
    }

    /// Marks the spans that do not nest within the others of their core (calls in flight at
    /// once, a deferred answer) as not nested. Spans must be sorted (start, longest first).
    fn check_nesting(&mut self) {
        let mut stacks: HashMap<CpuId, Vec<u64>> = HashMap::new();
        for s in self.spans.iter_mut() {
            let stack = stacks.entry(s.core).or_default();
            while stack.last().is_some_and(|&end| end <= s.start_ns) {
                stack.pop();
            }
            match stack.last() {
                Some(&end) if s.end_ns > end => s.nested = false,
                _ => stack.push(s.end_ns),
            }
        }
    }

    /// Durations (ns) of the calls that got a reply, from the request leaving the caller to the
    /// reply arriving there, in the order the calls were made.
    pub fn round_trips_ns(&self) -> Vec<u64> {
        self.spans
            .iter()
            .filter(|s| s.kind == SpanKind::Calling && !s.name.ends_with("(no reply)"))
            .map(|s| s.end_ns - s.start_ns)
            .collect()
    }
}

/// The type and method of a whole MessagePack value on `"rpc"`.
fn classify(bytes: &[u8]) -> (MessageKind, Option<String>) {
    match rpc::parse(bytes) {
        Ok((RpcMessage::Request { msgid, method, .. }, _)) => (
            MessageKind::Request {
                msgid: msgid.value(),
            },
            Some(method.to_string()),
        ),
        Ok((RpcMessage::Response { msgid, error, .. }, _)) => (
            MessageKind::Response {
                msgid: msgid.value(),
                error: !error.is_nil(),
            },
            None,
        ),
        Ok((RpcMessage::Notification { method, .. }, _)) => {
            (MessageKind::Notification, Some(method.to_string()))
        }
        Err(_) => (MessageKind::Malformed, None),
    }
}
