//! duet-trace: what crossed between the two cores, and what each core was doing, as a picture.
//!
//! Three layers, each usable alone:
//! 1. **Events** ([`Event`], [`EventKind`]): the raw facts a platform records, with
//!    nanosecond timestamps on one clock for both cores. A [`Recorder`] collects them from
//!    several threads (the simulator's two cores); a feeder with its own clock (an emulator
//!    counting cycles) builds the `Vec<Event>` itself; one that sees only the shared memory
//!    gets them from a [`RingSniffer`].
//! 2. **Timeline** ([`Timeline::build`]): decodes the payloads into MessagePack-RPC messages
//!    (type, method, msgid, size, bytes), pairs each message sent by one core with its receipt
//!    by the other, pairs requests with their responses, and derives each core's activity
//!    (serving a request, waiting for a reply, asleep).
//! 3. **Writers**: [`chrome::write`] (Chrome / Perfetto trace-event JSON: one track per core,
//!    flow arrows from each request to its reply; open it in <https://ui.perfetto.dev> or
//!    `chrome://tracing`), [`log::write`] (a plain-text decoded log for terminals) and
//!    [`svg::write`] (a picture of a stretch of time, for documents).
//!
//! ```
//! use duet_trace::{CpuId, Endpoint, Event, EventKind, Timeline};
//!
//! // The M4 calls sensorRead (msgid 1) on the M7, which answers 255.
//! let req = vec![0x94, 0x00, 0x01, 0xaa, b's', b'e', b'n', b's', b'o', b'r', b'R', b'e', b'a', b'd', 0x90];
//! let resp = vec![0x94, 0x01, 0x01, 0xc0, 0xcc, 0xff];
//! let events = vec![
//!     Event::sent(1_000, CpuId::Cm4, Endpoint::Rpc, req.clone(), 500),
//!     Event::received(3_000, CpuId::Cm7, Endpoint::Rpc, req, 200),
//!     Event::sent(5_000, CpuId::Cm7, Endpoint::Rpc, resp.clone(), 400),
//!     Event::received(7_000, CpuId::Cm4, Endpoint::Rpc, resp, 100),
//! ];
//! let t = Timeline::build(&events);
//! assert_eq!(t.messages.len(), 4);
//! assert_eq!(t.round_trips_ns(), vec![6_100]);
//! let json = duet_trace::chrome::write(&t);
//! assert!(json.contains("\"sensorRead #1\""));
//! let text = duet_trace::log::write(&t);
//! assert!(text.contains("sensorRead"));
//! ```
//!
//! Cost: recording copies every payload and takes a lock per event; meant for the simulator
//! and emulator, never for firmware. Platforms keep the recorder optional, so nothing is
//! paid while tracing is off.

use std::sync::{Mutex, PoisonError};
use std::time::Instant as StdInstant;

pub mod chrome;
mod decode;
pub mod log;
mod rings;
pub mod svg;
mod timeline;

pub use decode::{render, RENDER_LIMIT};
pub use duet::CpuId;
pub use duet_rpmsg::Endpoint;
pub use rings::RingSniffer;
pub use timeline::{Direction, Flow, Message, MessageKind, Span, SpanKind, Timeline};

/// One recorded fact: when (nanoseconds on the trace's clock, the same for both cores),
/// which core, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the trace's epoch (when the operation started).
    pub t_ns: u64,
    /// The core that did it.
    pub core: CpuId,
    /// What happened.
    pub kind: EventKind,
}

/// What a core did (see [`Event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The core handed `bytes` to the transport on `endpoint` (one send: duet sends one whole
    /// message per send, other peers may batch several). `dur_ns`: how long the send took.
    Sent {
        /// The endpoint.
        endpoint: Endpoint,
        /// The payload bytes (without the RPMsg header).
        bytes: Vec<u8>,
        /// Duration of the send in nanoseconds.
        dur_ns: u64,
    },
    /// The core took one payload (one buffer's worth, up to 496 bytes in the Arduino profile)
    /// from the transport. Messages may span payloads and payloads may hold several messages;
    /// [`Timeline::build`] reassembles them.
    Received {
        /// The endpoint.
        endpoint: Endpoint,
        /// The payload bytes.
        bytes: Vec<u8>,
        /// Duration of the receive in nanoseconds.
        dur_ns: u64,
    },
    /// The core rang its peer's doorbell (HSEM 0 from the M7, HSEM 1 from the M4).
    Doorbell,
    /// The core slept until its doorbell or a deadline (WFE on the chip) for `dur_ns`;
    /// `woken`: the doorbell ended the sleep (else its deadline did).
    Slept {
        /// Duration in nanoseconds.
        dur_ns: u64,
        /// Whether the peer's doorbell woke it.
        woken: bool,
    },
    /// The core's program was busy with something named `what` (a `delay(ms)`, a peripheral
    /// access) for `dur_ns`.
    Busy {
        /// A short label.
        what: String,
        /// Duration in nanoseconds.
        dur_ns: u64,
    },
    /// A marker with a text (an example starts, the M4 boots); shown on the core's track.
    Mark {
        /// The text.
        text: String,
    },
}

impl Event {
    /// A [`EventKind::Sent`] event.
    pub fn sent(t_ns: u64, core: CpuId, endpoint: Endpoint, bytes: Vec<u8>, dur_ns: u64) -> Self {
        Event {
            t_ns,
            core,
            kind: EventKind::Sent {
                endpoint,
                bytes,
                dur_ns,
            },
        }
    }

    /// A [`EventKind::Received`] event.
    pub fn received(
        t_ns: u64,
        core: CpuId,
        endpoint: Endpoint,
        bytes: Vec<u8>,
        dur_ns: u64,
    ) -> Self {
        Event {
            t_ns,
            core,
            kind: EventKind::Received {
                endpoint,
                bytes,
                dur_ns,
            },
        }
    }

    /// When the event ends (`t_ns` plus its duration, if it has one).
    pub fn end_ns(&self) -> u64 {
        let d = match &self.kind {
            EventKind::Sent { dur_ns, .. }
            | EventKind::Received { dur_ns, .. }
            | EventKind::Slept { dur_ns, .. }
            | EventKind::Busy { dur_ns, .. } => *dur_ns,
            EventKind::Doorbell | EventKind::Mark { .. } => 0,
        };
        self.t_ns.saturating_add(d)
    }
}

/// Collects [`Event`]s from several threads on one clock (its epoch is its creation).
/// Share it with `Arc`; every method takes `&self`.
///
/// Limit: keeps everything in memory (each payload copied); a long run grows without bound.
#[derive(Debug)]
pub struct Recorder {
    epoch: StdInstant,
    events: Mutex<Vec<Event>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder {
            epoch: StdInstant::now(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the recorder was made (saturating at `u64::MAX`, 584 years).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records an event.
    pub fn record(&self, event: Event) {
        self.lock().push(event);
    }

    /// Records `kind` for `core`, started at `t_ns`.
    pub fn record_at(&self, t_ns: u64, core: CpuId, kind: EventKind) {
        self.record(Event { t_ns, core, kind });
    }

    /// Records `kind` for `core` now.
    pub fn record_now(&self, core: CpuId, kind: EventKind) {
        let t_ns = self.now_ns();
        self.record_at(t_ns, core, kind);
    }

    /// A copy of the events so far, in time order (ties keep recording order).
    pub fn events(&self) -> Vec<Event> {
        let mut v = self.lock().clone();
        v.sort_by_key(|e| e.t_ns);
        v
    }

    /// [`Timeline::build`] of the events so far.
    pub fn timeline(&self) -> Timeline {
        Timeline::build(&self.events())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `"M7"` or `"M4"`.
pub fn core_name(core: CpuId) -> &'static str {
    match core {
        CpuId::Cm7 => "M7",
        CpuId::Cm4 => "M4",
    }
}
