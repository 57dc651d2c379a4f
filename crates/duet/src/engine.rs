//! The RPC engine: router, call table, reassembly and dispatch.

use core::cmp::min;
use core::task::{Poll, Waker};
use core::time::Duration;

use duet_codec::rpc::{self, Message, MsgId};
use duet_codec::{Decoder, Kind, RawValue, Skipper};
use duet_rpmsg::{Endpoint, Instant, Platform, Transport};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::{CallFuture, Context, Deferred, Link, Pending, Take};
use crate::error::{text, Fail, RemoteError};
use crate::handler::{Handler, Object, Request, Typed, TypedFn};
use crate::reply::Part;
use crate::serial::{Serial, SerialState, TTY_OVERHEAD};
use crate::{BootRemote, Core, CpuId, Doorbell, Error};

/// The largest payload of one buffer in the Arduino/MicroPython profile.
pub const MAX_PAYLOAD: usize = 496;

/// How deeply handlers may nest (a handler that calls the peer, whose handler calls back, ...).
/// A request that would nest deeper is answered with an error text at once.
pub const MAX_NESTING: u8 = 4;

/// The default call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a sender waits between retries when no transport buffer is free (buffer returns do
/// not ring the doorbell, so this is polled). Short: a receiver that keeps up returns a whole
/// ring of buffers in tens of microseconds, and a stream stalls for this long each time the
/// ring is full.
pub(crate) const SEND_RETRY: Duration = Duration::from_micros(50);

/// The longest a blocking wait sleeps before it polls again even without a doorbell.
pub const WAIT_SLICE: Duration = Duration::from_millis(10);

/// At most this many payloads are received per engine step, so a flood cannot starve a caller.
const RECV_BUDGET: usize = 64;

/// Counters of events that are not errors of any one call. They only grow (wrapping).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Replies whose msgid matched no waiting call (late, after a timeout, or unknown).
    pub late_replies: u32,
    /// Calls whose deadline passed before the reply (slot freed).
    pub expired_calls: u32,
    /// Incomplete messages dropped because the chunk that ended them was not a full buffer.
    pub framing_errors: u32,
    /// Messages larger than the receive buffer (dropped; a request whose msgid can be read
    /// gets an error reply if a transport buffer is free at once, else `reply_failures` counts
    /// it and the caller times out).
    pub oversized_messages: u32,
    /// Data on `"rpc"` that was not a MessagePack-RPC message (dropped; a request whose msgid
    /// can be read gets an error reply).
    pub malformed_messages: u32,
    /// Notifications for names with no handler (ignored, as rpclib does).
    pub ignored_notifications: u32,
    /// Requests for names with no handler (answered with rpclib's error text).
    pub unknown_requests: u32,
    /// Requests refused because handlers were nested [`MAX_NESTING`] deep.
    pub nesting_refused: u32,
    /// Responses that could not be sent (no buffer before the deadline, or none free at once
    /// for the refusal of an oversized request; peer not ready).
    pub reply_failures: u32,
    /// Serial bytes dropped (only with [`SerialOverflow::Drop`](crate::SerialOverflow), or
    /// `"tty"` data beyond the receive ring).
    pub serial_dropped: u32,
    /// Transport errors other than backpressure (corrupt ring entries etc.).
    pub transport_errors: u32,
    /// What this side handed to the transport, per endpoint (`[raw, rpc]`, index
    /// `Endpoint as usize`): one message per successful send (a multi-buffer message counts
    /// once), bytes without the RPMsg header.
    pub sent: [Traffic; 2],
    /// What this side took from the transport, per endpoint (`[raw, rpc]`): `"rpc"` counts
    /// MessagePack-RPC messages parsed whole (several may share a payload, one may span
    /// several), `"raw"` counts payloads; bytes are payload bytes.
    pub received: [Traffic; 2],
    /// How this side's own calls ended.
    pub calls: CallStats,
    /// High-water marks of the engine's buffers and call table.
    pub high_water: HighWater,
    /// Doorbells this side rang: duet-rpmsg rings the peer once per message sent, so this is
    /// the number of successful sends on both endpoints.
    pub doorbells_rung: u32,
    /// Waits of the engine (blocking calls, sends waiting for a buffer, `wait_ready`, serial
    /// flushes, `run()`) that the peer's doorbell ended, rather than their time slice. Waits
    /// outside the engine (an application's own idle loop) are not seen.
    pub doorbells_received: u32,
}

/// Messages and bytes of one endpoint in one direction (wrapping counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages (see [`Stats::sent`] and [`Stats::received`] for what counts as one).
    pub messages: u32,
    /// Payload bytes.
    pub bytes: u32,
}

impl Traffic {
    fn add(&mut self, bytes: usize) {
        self.messages = self.messages.wrapping_add(1);
        self.bytes = self.bytes.wrapping_add(bytes as u32);
    }
}

/// How this side's calls (blocking, `call_async` + `join`/`poll_pending`/`wait`) ended. A
/// call counts once, when its result is handed out (a [`Pending`] never finished counts
/// nowhere).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls that returned the peer's result.
    pub completed: u32,
    /// Calls answered with an error by the peer ([`Error::UnknownMethod`],
    /// [`Error::WrongArgCount`], [`Error::WrongArgType`], [`Error::Remote`]).
    pub remote_error: u32,
    /// Calls whose deadline passed ([`Error::Timeout`]).
    pub timeout: u32,
    /// Calls failed by a reset ([`Error::PeerReset`]).
    pub peer_reset: u32,
    /// Calls that failed on this side: never sent ([`Error::NotReady`],
    /// [`Error::TooManyCalls`], [`Error::MessageTooLarge`], another send error), or a reply
    /// larger than the call slot (`MessageTooLarge`).
    pub refused: u32,
    /// Calls whose result did not decode as the expected type ([`Error::Decode`]).
    pub bad_result: u32,
}

impl CallStats {
    /// Calls that ended with an error, whatever the reason.
    pub fn failed(&self) -> u32 {
        self.remote_error
            .wrapping_add(self.timeout)
            .wrapping_add(self.peer_reset)
            .wrapping_add(self.refused)
            .wrapping_add(self.bad_result)
    }

    fn count(&mut self, result: Option<Fail>) {
        let c = match result {
            None => &mut self.completed,
            Some(Fail::Timeout) => &mut self.timeout,
            Some(Fail::PeerReset) => &mut self.peer_reset,
            Some(Fail::Remote) => &mut self.remote_error,
            Some(Fail::Decode(_)) => &mut self.bad_result,
            Some(_) => &mut self.refused,
        };
        *c = c.wrapping_add(1);
    }
}

/// The most each buffer held at any time since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HighWater {
    /// Bytes in the `"rpc"` reassembly buffer (of `BUF`).
    pub rx_bytes: u32,
    /// Bytes of the largest message encoded for sending (of `BUF`).
    pub tx_bytes: u32,
    /// Bytes in the serial receive ring (of `SERIAL`).
    pub serial_rx_bytes: u32,
    /// Own calls in flight at once (of `CALLS`).
    pub calls_in_flight: u32,
}

/// What the receive path does with the payloads after the start of an oversized message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Discard {
    /// Nothing to drop.
    Off,
    /// The skipper follows the message's structure to its end.
    Value,
    /// Its structure is invalid: drop up to the next short payload (the framing's end).
    UntilShort,
}

/// The router is full (`HANDLERS` names bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterFull;

impl core::fmt::Display for RouterFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("router full: every handler slot is bound")
    }
}

impl core::error::Error for RouterFull {}

#[derive(Clone, Copy)]
enum Target<'a> {
    Handler(&'a dyn Handler),
    Object(&'a dyn Object),
}

#[derive(Clone, Copy)]
struct Route<'a> {
    name: &'a str,
    target: Target<'a>,
}

#[derive(Clone, Copy)]
enum SlotState {
    Free,
    Waiting,
    Done { err_len: usize, res_len: usize },
    Failed(Fail),
}

struct Slot<const N: usize> {
    state: SlotState,
    id: u32,
    deadline: Instant,
    waker: Option<Waker>,
    buf: [u8; N],
}

impl<const N: usize> Slot<N> {
    const FREE: Self = Slot {
        state: SlotState::Free,
        id: 0,
        deadline: Instant::from_micros(0),
        waker: None,
        buf: [0; N],
    };
}

/// A MessagePack-RPC endpoint over a [`Transport`], wire-compatible with Arduino's `RPC` library
/// and MicroPython's `msgpackrpc`.
///
/// # Capacities (const generics, no heap)
/// - `HANDLERS`: bound names (functions and objects).
/// - `CALLS`: own calls in flight (blocking, nested and async together). Over it: [`Error::TooManyCalls`].
/// - `BUF`: the reassembly buffer for incoming `"rpc"` messages (also the encode buffer for
///   outgoing ones). At least [`MAX_PAYLOAD`]. A payload (`p` bytes: the transport's payload
///   per buffer, 496) is pulled only while `p` bytes are free, so an incoming message that
///   starts a payload is accepted up to `floor(BUF / p) * p` bytes, and one that starts inside
///   a payload (behind other messages) is guaranteed up to `BUF - p + 1` bytes. Larger ones
///   are dropped and counted (a request gets an error reply if a transport buffer is free at
///   that moment, see [`Stats::oversized_messages`]); reception resumes behind them.
///   Outgoing messages over `BUF` or the transport's `max_message_len` are refused with
///   [`Error::MessageTooLarge`], never truncated.
/// - `REPLY`: bytes of `error` + `result` kept per call slot until the caller takes them.
/// - `SERIAL`: the receive ring of the byte stream ([`Serial`]). At least [`MAX_PAYLOAD`].
///
/// Memory is about `2*BUF + CALLS*REPLY + SERIAL + HANDLERS*24` bytes plus 0.5 KiB; keep the
/// `Rpc` in a `static` (or a long-lived stack frame) on small cores.
///
/// # Router: borrowed handlers
/// Handlers are borrowed for the `Rpc`'s lifetime `'a` (`&'a F`), not stored inside it: with no
/// heap, an inline arena would need unsafe type erasure of arbitrary closures. Borrowing keeps
/// the router a small array of `(&'a str, &'a dyn Handler)`, lets any closure or `fn` be bound,
/// and makes re-entrancy safe: dispatch copies the reference out of the table and then lends the
/// whole engine to the handler (as [`Context`]), so a handler can call the peer while the peer
/// is waiting for it. Handlers are `Fn` (shared); keep state in `Cell`/`RefCell`. Declare
/// handlers before the `Rpc` so they outlive it.
///
/// # Receiving and re-entrancy
/// Incoming payloads are copied by the transport straight into the reassembly buffer. Complete
/// messages are parsed from its front (several may share one buffer, as Arduino sends them);
/// an incomplete tail is kept only while the last chunk was a full buffer (a message spanning
/// buffers, MicroPython's `streaming=True` framing); otherwise it is dropped and counted as a
/// framing error. A message too large for the buffer is dropped as it arrives: a [`Skipper`]
/// follows its MessagePack structure across payloads (if that is invalid, it ends at the next
/// short payload) and parsing resumes right behind it, even inside a payload. Other data that
/// is not a valid message is dropped with everything held behind it, except a request whose
/// msgid can be read: it is answered with [`text::MALFORMED_PREFIX`] and what is wrong, and
/// dropped alone if it is whole MessagePack.
///
/// While a handler runs, its message stays where it is (its arguments borrow from it) and
/// everything after it is handed to the handler's [`Context`] as a smaller reassembly buffer; nested receiving therefore never moves the message being handled. Depth
/// is limited by [`MAX_NESTING`] and by the space left behind the messages being handled.
///
/// # Slow handlers
/// Handlers run inside [`poll`](Self::poll) (or a waiting call). One that must wait for slow
/// work takes its request with [`Context::defer`] and returns at once; the work's owner
/// answers later with [`respond`](Self::respond), and meanwhile every other request is served.
///
/// # Resets
/// A reset the transport reports (`PeerReset`) fails every pending call with
/// [`Error::PeerReset`] and voids older [`Deferred`] tokens; the host side makes one with
/// [`reset`](Self::reset). Msgids keep counting across resets, so a reply from before never
/// completes a later call.
///
/// # Sending
/// Messages are encoded into an internal buffer and sent whole (several transport buffers if
/// the transport allows). Without a free buffer the sender polls the receive side (replies are
/// delivered, requests wait) and retries until the deadline.
pub struct Rpc<
    'a,
    T: Transport,
    const HANDLERS: usize = 16,
    const CALLS: usize = 8,
    const BUF: usize = 2048,
    const REPLY: usize = 512,
    const SERIAL: usize = 1024,
> {
    pub(crate) engine: Engine<'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>,
    rx: [u8; BUF],
    rx_len: usize,
}

pub(crate) struct Engine<
    'a,
    T,
    const HANDLERS: usize,
    const CALLS: usize,
    const BUF: usize,
    const REPLY: usize,
    const SERIAL: usize,
> {
    pub(crate) transport: T,
    routes: [Option<Route<'a>>; HANDLERS],
    slots: [Slot<REPLY>; CALLS],
    /// No waiting call's deadline is before this (`Instant::MAX`: no call can expire), so
    /// `reclaim` looks at the slots only when one may have expired.
    next_expiry: Instant,
    next_id: u32,
    tx: [u8; BUF],
    timeout: Duration,
    /// `timeout` in microseconds (saturated), for deadlines without `Duration` arithmetic.
    timeout_us: u64,
    pub(crate) stats: Stats,
    depth: u8,
    last_full: bool,
    /// The last receive step found the transport empty with nothing held, and no doorbell was
    /// taken since: anything new rings (see `Link::quiet`).
    quiet: bool,
    discard: Discard,
    skipper: Skipper,
    doorbell: Option<&'a Doorbell>,
    /// Resets seen (detected or made with `Rpc::reset`); voids older `Deferred` tokens.
    epoch: u32,
    /// The error value of the last error reply taken by a call (until the public API copies it
    /// into the [`Error`]).
    remote: RemoteError,
    pub(crate) serial: SerialState<SERIAL>,
}

impl<
        'a,
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > Rpc<'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    /// An engine over `transport` with no handlers, the default timeout (1 s) and the serial
    /// stream in raw mode with backpressure.
    pub fn new(transport: T) -> Self {
        const {
            assert!(
                BUF >= MAX_PAYLOAD,
                "BUF must hold one buffer's payload (496)"
            );
            assert!(
                SERIAL >= MAX_PAYLOAD,
                "SERIAL must hold one buffer's payload (496)"
            );
            assert!(CALLS <= u16::MAX as usize);
        }
        Rpc {
            engine: Engine {
                transport,
                routes: [None; HANDLERS],
                slots: [const { Slot::FREE }; CALLS],
                next_expiry: Instant::MAX,
                next_id: 1,
                tx: [0; BUF],
                timeout: DEFAULT_TIMEOUT,
                timeout_us: micros(DEFAULT_TIMEOUT),
                stats: Stats::default(),
                depth: 0,
                last_full: false,
                quiet: false,
                discard: Discard::Off,
                skipper: Skipper::new(),
                doorbell: None,
                epoch: 0,
                remote: RemoteError::from_raw(&[]),
                serial: SerialState::new(),
            },
            rx: [0; BUF],
            rx_len: 0,
        }
    }

    /// The engine as a [`Context`] (the same call API that handlers get).
    pub fn context(&mut self) -> Context<'_> {
        Context::new(&mut self.engine, &mut self.rx, &mut self.rx_len, None)
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.engine.transport
    }

    /// The transport, mutably (for example to poll its handshake).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.engine.transport
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.engine.stats
    }

    /// Sets the default timeout of calls (and of waiting for a free buffer). Must be finite to
    /// be useful; `Duration::MAX` waits forever.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.engine.timeout = timeout;
        self.engine.timeout_us = micros(timeout);
    }

    /// The default call timeout.
    pub fn timeout(&self) -> Duration {
        self.engine.timeout
    }

    /// Uses `bell` to wake [`run`](Self::run) and call futures; the platform's doorbell
    /// interrupt must call [`Doorbell::ring`].
    pub fn set_doorbell(&mut self, bell: &'a Doorbell) {
        self.engine.doorbell = Some(bell);
    }

    /// Which core this is, from the platform.
    pub fn cpu_id(&self) -> CpuId
    where
        T::Platform: Core,
    {
        self.engine.transport.platform().cpu_id()
    }

    /// Whether the `"rpc"` endpoint is bound with the peer.
    pub fn is_ready(&self) -> bool {
        self.engine.transport.is_ready(Endpoint::Rpc)
    }

    /// Binds a typed function or closure under `name` (replacing an earlier binding of the same
    /// name). See [`TypedFn`] for the accepted signatures.
    pub fn bind<M: 'a, F: TypedFn<M> + 'a>(
        &mut self,
        name: &'a str,
        f: &'a F,
    ) -> Result<(), RouterFull> {
        self.bind_handler(name, Typed::<F, M>::from_ref(f))
    }

    /// Binds a [`Handler`] (for example a `|ctx, req|` closure reading borrowed arguments).
    pub fn bind_handler(&mut self, name: &'a str, h: &'a dyn Handler) -> Result<(), RouterFull> {
        self.engine.add_route(Route {
            name,
            target: Target::Handler(h),
        })
    }

    /// Binds every method of `obj` under `"name.method"` (MicroPython's `bind("foo1", Foo())`).
    pub fn bind_object(&mut self, name: &'a str, obj: &'a dyn Object) -> Result<(), RouterFull> {
        self.engine.add_route(Route {
            name,
            target: Target::Object(obj),
        })
    }

    /// Removes the binding of `name`; returns whether there was one.
    pub fn unbind(&mut self, name: &str) -> bool {
        let mut found = false;
        for r in self.engine.routes.iter_mut() {
            if r.is_some_and(|r| r.name == name) {
                *r = None;
                found = true;
            }
        }
        found
    }

    /// Calls `method` with `args` (a tuple) and waits up to the default timeout. While waiting it
    /// serves the peer's requests, so nested and crossing calls work.
    ///
    /// Right after sending it sleeps until the peer's doorbell if the last engine step left
    /// nothing pending. Limit: if the application itself waited on the doorbell since then
    /// without polling the engine, a message already queued is seen up to one [`WAIT_SLICE`]
    /// later (never lost).
    pub fn call<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
    ) -> Result<R, Error> {
        self.context().call(method, args)
    }

    /// [`call`](Self::call) with its own timeout.
    pub fn call_with_timeout<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
        timeout: Duration,
    ) -> Result<R, Error> {
        self.context().call_with_timeout(method, args, timeout)
    }

    /// [`call`](Self::call) with an absolute deadline.
    pub fn call_until<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
        deadline: Instant,
    ) -> Result<R, Error> {
        self.context().call_until(method, args, deadline)
    }

    /// Sends a request and returns a [`Pending`] handle at once.
    pub fn call_async<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
    ) -> Result<Pending<R>, Error> {
        self.context().call_async(method, args)
    }

    /// Blocks until the pending call completes or `deadline` passes.
    pub fn join<R: DeserializeOwned>(
        &mut self,
        p: Pending<R>,
        deadline: Instant,
    ) -> Result<R, Error> {
        self.context().join(p, deadline)
    }

    /// Non-blocking: one engine step, then the result if it has arrived.
    pub fn poll_pending<R: DeserializeOwned>(&mut self, p: &Pending<R>) -> Poll<Result<R, Error>> {
        self.context().poll_pending(p)
    }

    /// A `Future` that completes with the pending call's result (see [`Context::wait`]).
    pub fn wait<R: DeserializeOwned>(&mut self, p: Pending<R>) -> CallFuture<'_, R> {
        self.context().wait(p)
    }

    /// Sends a notification.
    pub fn notify<A: Serialize>(&mut self, method: &str, args: A) -> Result<(), Error> {
        self.context().notify(method, args)
    }

    /// Answers a request deferred by its handler ([`Context::defer`]); see
    /// [`Context::respond_deferred`].
    pub fn respond<V: Serialize + ?Sized>(&mut self, d: Deferred, value: &V) -> Result<(), Error> {
        self.context().respond_deferred(d, value)
    }

    /// Answers a deferred request with an error; see [`Context::respond_deferred_error`].
    pub fn respond_error<E: Serialize + ?Sized>(
        &mut self,
        d: Deferred,
        error: &E,
    ) -> Result<(), Error> {
        self.context().respond_deferred_error(d, error)
    }

    /// Resets the link from this side, for the core that owns the shared memory (the M7):
    /// fails every pending call with [`Error::PeerReset`], drops partly received messages,
    /// voids [`Deferred`] tokens from before (answering one gives `PeerReset`, nothing is
    /// sent), then runs `reinit` on the transport. With duet-rpmsg's `Host` on two running
    /// cores: `|t| { t.begin_reset()?; /* wait one remote poll period */ t.reinit() }` (the
    /// remote must not be inside a call while the rings are re-laid; see `duet_rpmsg::Host`).
    /// Bindings, the msgid counter (so a reply from before never matches a later call) and the
    /// serial buffers stay. The peer reports `PeerReset` once and re-handshakes; wait with
    /// [`wait_ready`](Self::wait_ready).
    pub fn reset(
        &mut self,
        reinit: impl FnOnce(&mut T) -> Result<(), duet_rpmsg::Error>,
    ) -> Result<(), Error> {
        self.engine.peer_reset();
        self.rx_len = 0;
        reinit(&mut self.engine.transport).map_err(Error::from)
    }

    /// Non-blocking: sends buffered serial bytes if a buffer is free, receives and dispatches
    /// everything pending, completes pending calls. Returns `Err(PeerReset)` once after a reset
    /// (pending calls fail with it).
    pub fn poll(&mut self) -> Result<(), Error> {
        self.engine.serial_try_flush();
        self.context().poll()
    }

    /// Serves forever: polls, then sleeps until the [`Doorbell`] rings (without a doorbell it
    /// yields to the executor and polls again). Run it as its own task.
    pub async fn run(&mut self) -> ! {
        loop {
            if let Some(b) = self.engine.doorbell {
                b.take();
            }
            let _ = self.poll();
            match self.engine.doorbell {
                Some(b) => {
                    b.wait().await;
                    self.engine.count_wake(true);
                }
                None => crate::doorbell::YieldNow(false).await,
            }
        }
    }

    /// Blocks until both endpoints are bound, or `deadline` ([`Error::NotReady`]).
    pub fn wait_ready(&mut self, deadline: Instant) -> Result<(), Error> {
        loop {
            let t = &mut self.engine.transport;
            match t.poll() {
                Err(duet_rpmsg::Error::PeerReset) | Ok(()) => {}
                Err(_) => {
                    self.engine.stats.transport_errors =
                        self.engine.stats.transport_errors.wrapping_add(1)
                }
            }
            if t.is_ready(Endpoint::Raw) && t.is_ready(Endpoint::Rpc) {
                return Ok(());
            }
            let now = t.platform().now();
            if now >= deadline {
                return Err(Error::NotReady);
            }
            let rung = t
                .platform()
                .wait(min(deadline, now.saturating_add(WAIT_SLICE)));
            self.engine.count_wake(rung);
        }
    }

    /// Host side: boots the remote core at `firmware_address` through `boot`, then waits until
    /// it has announced both endpoints, up to `timeout`. `Error::Boot` if the platform refused,
    /// `Error::NotReady` if the remote never came up.
    pub fn start<B: BootRemote + ?Sized>(
        &mut self,
        boot: &mut B,
        firmware_address: u32,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = self.engine.now().saturating_add(timeout);
        boot.boot(firmware_address).map_err(Error::Boot)?;
        self.wait_ready(deadline)
    }

    /// [`Engine::serial_read_direct`]; a peer reset also drops the partly received message.
    pub(crate) fn serial_read_direct(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        let r = self.engine.serial_read_direct(buf);
        if let Err(Error::PeerReset) = r {
            self.rx_len = 0;
        }
        r
    }

    /// The byte stream on `"raw"` (or `"tty"` notifications, see [`Serial::set_tty`]).
    pub fn serial(&mut self) -> Serial<'_, 'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL> {
        Serial::new(self)
    }
}

impl<
        'a,
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > Engine<'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    fn add_route(&mut self, route: Route<'a>) -> Result<(), RouterFull> {
        if let Some(r) = self
            .routes
            .iter_mut()
            .flatten()
            .find(|r| r.name == route.name)
        {
            *r = route;
            return Ok(());
        }
        match self.routes.iter_mut().find(|r| r.is_none()) {
            Some(r) => {
                *r = Some(route);
                Ok(())
            }
            None => Err(RouterFull),
        }
    }

    fn lookup<'m>(&self, method: &'m str) -> Option<(Target<'a>, &'m str)> {
        for r in self.routes.iter().flatten() {
            match r.target {
                Target::Handler(_) if r.name == method => return Some((r.target, "")),
                Target::Object(_) => {
                    if let Some(m) = method
                        .strip_prefix(r.name)
                        .and_then(|s| s.strip_prefix('.'))
                    {
                        return Some((r.target, m));
                    }
                }
                _ => {}
            }
        }
        None
    }

    pub(crate) fn now(&self) -> Instant {
        self.transport.platform().now()
    }

    /// `now` plus the default timeout (saturating).
    fn deadline_from(&self, now: Instant) -> Instant {
        Instant::from_micros(now.as_micros().saturating_add(self.timeout_us))
    }

    pub(crate) fn ppb(&self) -> usize {
        self.transport.payload_per_buffer().max(1)
    }

    /// Frees the slots of calls still waiting for their reply at their deadline (`now`, or the
    /// clock's time if `None`). A completed slot (`Done`/`Failed`) stays until its result is
    /// taken: its reply came in time. Reads the clock only if a call is waiting.
    fn reclaim(&mut self, now: Option<Instant>) {
        if self.next_expiry == Instant::MAX {
            return; // no call is waiting (or none can expire)
        }
        let now = match now {
            Some(now) => now,
            None => self.now(),
        };
        if now < self.next_expiry {
            return;
        }
        let mut next = Instant::MAX;
        for s in self.slots.iter_mut() {
            if !matches!(s.state, SlotState::Waiting) {
                continue;
            }
            if now >= s.deadline {
                self.stats.expired_calls = self.stats.expired_calls.wrapping_add(1);
                s.state = SlotState::Free;
                s.waker = None;
            } else {
                next = min(next, s.deadline);
            }
        }
        self.next_expiry = next;
    }

    fn peer_reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        for s in self.slots.iter_mut() {
            if matches!(s.state, SlotState::Waiting) {
                s.state = SlotState::Failed(Fail::PeerReset);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
        self.last_full = false;
        self.discard = Discard::Off;
    }

    /// Whether one more payload may be pulled with `free` bytes of reassembly space.
    fn can_receive(&self, free: usize) -> bool {
        let ppb = self.ppb();
        free >= ppb && self.serial.can_accept(ppb)
    }

    fn deliver(&mut self, msgid: MsgId, error: RawValue<'_>, result: RawValue<'_>) {
        let id = msgid.as_u32();
        let slot = self
            .slots
            .iter_mut()
            .find(|s| matches!(s.state, SlotState::Waiting) && Some(s.id) == id);
        let Some(s) = slot else {
            self.stats.late_replies = self.stats.late_replies.wrapping_add(1);
            return;
        };
        let (e, r) = (error.as_bytes(), result.as_bytes());
        let len = e.len() + r.len();
        s.state = match s.buf.get_mut(..len) {
            Some(dst) => {
                let (de, dr) = dst.split_at_mut(e.len());
                de.copy_from_slice(e);
                dr.copy_from_slice(r);
                SlotState::Done {
                    err_len: e.len(),
                    res_len: r.len(),
                }
            }
            None => SlotState::Failed(Fail::MessageTooLarge { len, max: REPLY }),
        };
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// Parses and handles complete messages at the front of `rx[..rx_len]`.
    #[inline(always)]
    fn process(&mut self, rx: &mut [u8], rx_len: &mut usize, dispatch: bool) {
        // Most polls find nothing held: skip the call (and its frame setup).
        if *rx_len != 0 {
            self.process_held(rx, rx_len, dispatch);
        }
    }

    fn process_held(&mut self, rx: &mut [u8], rx_len: &mut usize, dispatch: bool) {
        loop {
            if *rx_len == 0 {
                return;
            }
            // The message is parsed once: a request's method and params stay borrowed from the
            // front of `rx` while its handler gets the space behind it (`rest`).
            let parsed = rpc::parse_split(rx, *rx_len);
            if parsed.is_ok() {
                let rpc = &mut self.stats.received[Endpoint::Rpc as usize];
                rpc.messages = rpc.messages.wrapping_add(1);
            }
            let used = match parsed {
                Ok((
                    Message::Response {
                        msgid,
                        error,
                        result,
                    },
                    used,
                    _,
                )) => {
                    self.deliver(msgid, error, result);
                    used
                }
                Ok((msg, used, rest)) => {
                    if !dispatch {
                        return;
                    }
                    let mut rest_len = *rx_len - used;
                    self.depth += 1;
                    self.dispatch(msg, rest, &mut rest_len);
                    self.depth -= 1;
                    // What the nested levels left unprocessed now follows the handled message.
                    duet_codec::move_down(rx, used..used + rest_len, 0);
                    *rx_len = rest_len;
                    continue;
                }
                Err(e) => {
                    if self.parse_failed(rx, rx_len, dispatch, e) {
                        continue;
                    }
                    return;
                }
            };
            duet_codec::move_down(rx, used..*rx_len, 0);
            *rx_len -= used;
        }
    }

    /// What `process_held` does with a message that does not parse (`e`): wait for more bytes,
    /// drop an oversized one (following it with the skipper), or drop malformed data and
    /// answer a request whose msgid can be read. `true`: look at `rx` again. Out of line: the
    /// common path stays small.
    #[cold]
    #[inline(never)]
    fn parse_failed(
        &mut self,
        rx: &mut [u8],
        rx_len: &mut usize,
        dispatch: bool,
        e: duet_codec::Error,
    ) -> bool {
        match e {
            duet_codec::Error::Truncated => {
                if !self.last_full {
                    self.stats.framing_errors = self.stats.framing_errors.wrapping_add(1);
                    *rx_len = 0;
                } else if rx.len() - *rx_len < self.ppb() && self.depth == 0 {
                    // Cannot grow: the message is larger than the whole buffer.
                    self.stats.oversized_messages = self.stats.oversized_messages.wrapping_add(1);
                    if dispatch {
                        self.refuse_oversized(&rx[..*rx_len]);
                    }
                    // Follow its structure through the payloads still to come.
                    self.skipper.reset();
                    match self.skipper.feed(&rx[..*rx_len]) {
                        // (parse saw it truncated, so it cannot end here; if it did, the
                        // bytes behind it are the next message.)
                        Ok(Some(end)) => {
                            duet_codec::move_down(rx, end..*rx_len, 0);
                            *rx_len -= end;
                            return true;
                        }
                        Ok(None) => self.discard = Discard::Value,
                        Err(_) => self.discard = Discard::UntilShort,
                    }
                    *rx_len = 0;
                }
                false
            }
            e => {
                let refuse = malformed_request(&rx[..*rx_len], e);
                if refuse.is_some() && !dispatch {
                    // Answered once requests are dispatched again (the encode buffer is
                    // busy with the message being sent).
                    return false;
                }
                self.stats.malformed_messages = self.stats.malformed_messages.wrapping_add(1);
                let Some((id, what, len)) = refuse else {
                    *rx_len = 0;
                    return false;
                };
                // A request that is whole MessagePack is dropped alone, else with the rest.
                let used = len.unwrap_or(*rx_len);
                duet_codec::move_down(rx, used..*rx_len, 0);
                *rx_len -= used;
                let text = [Part::S(text::MALFORMED_PREFIX), Part::S(what)];
                Context::new(self, rx, rx_len, Some(id)).respond_words(&text);
                true
            }
        }
    }

    /// Answers the start of an oversized request (if its msgid can be read) with an error, only
    /// if a transport buffer is free now. It cannot wait like other replies: waiting must keep
    /// receiving (else two cores both waiting to send stall until the deadline), and this runs
    /// on the receive path while the dropped message still fills the reassembly buffer.
    fn refuse_oversized(&mut self, start: &[u8]) {
        let mut d = Decoder::new(start);
        let id = (|| {
            d.read_array_len().ok()?;
            (d.read_u64().ok()? == u64::from(rpc::REQUEST)).then_some(())?;
            MsgId::read(&mut d).ok()
        })();
        if let Some(id) = id {
            if let Ok(n) =
                crate::reply::error_response(&mut self.tx, id, &[Part::S(text::TOO_LARGE)])
            {
                if counted_send(
                    &mut self.transport,
                    &mut self.stats,
                    Endpoint::Rpc,
                    &self.tx[..n],
                )
                .is_err()
                {
                    self.stats.reply_failures = self.stats.reply_failures.wrapping_add(1);
                }
            }
        }
    }

    /// Drops the part of an oversized message in `chunk` (a payload of `full` size). Returns
    /// where the message ended inside `chunk` if it did (the rest is the next message).
    fn discard_chunk(&mut self, chunk: &[u8], full: bool) -> Option<usize> {
        if self.discard == Discard::Value {
            match self.skipper.feed(chunk) {
                Ok(Some(end)) => {
                    self.discard = Discard::Off;
                    return Some(end);
                }
                Ok(None) => {}
                Err(_) => self.discard = Discard::UntilShort,
            }
        }
        if !full {
            // A short payload ends a message whatever its contents claimed.
            self.discard = Discard::Off;
        }
        None
    }

    fn dispatch(&mut self, msg: Message<'_>, rest: &mut [u8], rest_len: &mut usize) {
        let (msgid, method, params) = match msg {
            Message::Request {
                msgid,
                method,
                params,
            } => (Some(msgid), method, params),
            Message::Notification { method, params } => (None, method, params),
            Message::Response { .. } => return,
        };
        if msgid.is_none() && self.serial.tty && method == "tty" {
            let mut d = params.decoder();
            if d.read_array_len() == Ok(1) {
                if let Ok(data) = d.read_bin() {
                    let n = self.serial.ring.push(data);
                    self.stats.serial_dropped = self
                        .stats
                        .serial_dropped
                        .wrapping_add((data.len() - n) as u32);
                    return;
                }
            }
        }
        let req = Request {
            method,
            params,
            msgid,
        };
        if self.depth > MAX_NESTING {
            self.stats.nesting_refused = self.stats.nesting_refused.wrapping_add(1);
            Context::new(self, rest, rest_len, msgid).respond_words(&[Part::S(text::NESTING)]);
            return;
        }
        let found = self.lookup(method);
        let mut ctx = Context::new(self, rest, rest_len, msgid);
        let handled = match found {
            Some((Target::Handler(h), _)) => {
                h.handle(&mut ctx, req);
                true
            }
            Some((Target::Object(o), m)) => o.call(&mut ctx, m, req),
            None => false,
        };
        if handled {
            if msgid.is_some() && !ctx.responded() {
                ctx.respond_nil();
            }
            return;
        }
        if msgid.is_some() {
            let n = req.arg_count();
            ctx.respond_words(&[
                Part::S(text::UNKNOWN_PREFIX),
                Part::S(method),
                Part::S("' with argument count "),
                Part::N(n),
                Part::S("."),
            ]);
            self.stats.unknown_requests = self.stats.unknown_requests.wrapping_add(1);
        } else {
            self.stats.ignored_notifications = self.stats.ignored_notifications.wrapping_add(1);
        }
    }

    fn poll_step(
        &mut self,
        rx: &mut [u8],
        rx_len: &mut usize,
        dispatch: bool,
    ) -> Result<bool, Fail> {
        // The transport's poll drives the handshake; once both endpoints are up, `try_recv`
        // below meets everything that can still arrive (control messages, a peer reset) and
        // sends reclaim their buffers, so polling would only look at the first entry twice.
        self.quiet = false;
        let up = self.transport.is_ready(Endpoint::Raw) && self.transport.is_ready(Endpoint::Rpc);
        match if up { Ok(()) } else { self.transport.poll() } {
            Ok(()) => {}
            Err(duet_rpmsg::Error::PeerReset) => {
                self.peer_reset();
                *rx_len = 0;
                return Err(Fail::PeerReset);
            }
            Err(_) => self.stats.transport_errors = self.stats.transport_errors.wrapping_add(1),
        }
        self.process(rx, rx_len, dispatch);
        for _ in 0..RECV_BUDGET {
            if !self.can_receive(rx.len() - *rx_len) {
                return Ok(false);
            }
            // Shown where it lies: an `"rpc"` payload is copied into the reassembly buffer, a
            // `"raw"` one into the serial ring (or left for the reader, see `SerialState::take`).
            let free = &mut rx[*rx_len..];
            let serial = &mut self.serial;
            let got = self.transport.try_recv_with(|ep, p| match ep {
                Endpoint::Rpc => match free.get_mut(..p.len()) {
                    Some(dst) => (true, Got::Rpc(p.read(0, dst).is_ok(), dst.len())),
                    None => (false, Got::Stop),
                },
                Endpoint::Raw => serial.take(p),
            });
            let got = match got {
                Ok(Some(got)) => got,
                Ok(None) => {
                    // Inside a handler, everything held behind it is in `rx` too.
                    self.quiet = *rx_len == 0;
                    return Ok(false);
                }
                Err(duet_rpmsg::Error::PeerReset) => {
                    self.peer_reset();
                    *rx_len = 0;
                    return Err(Fail::PeerReset);
                }
                Err(_) => {
                    self.stats.transport_errors = self.stats.transport_errors.wrapping_add(1);
                    return Ok(false);
                }
            };
            match got {
                Got::Stop => return Ok(false),
                Got::Raw(len, stored) => self.count_raw(len, stored),
                Got::Rpc(false, _) => {
                    self.stats.transport_errors = self.stats.transport_errors.wrapping_add(1);
                }
                Got::Rpc(true, len) => {
                    let rpc = &mut self.stats.received[Endpoint::Rpc as usize];
                    rpc.bytes = rpc.bytes.wrapping_add(len as u32);
                    let full = len >= self.ppb();
                    let mut start = *rx_len;
                    let end = start + len;
                    if self.discard != Discard::Off {
                        // The rest of an oversized message; the next may start inside.
                        match self.discard_chunk(&rx[start..end], full) {
                            Some(n) => start += n,
                            None => continue,
                        }
                        duet_codec::move_down(rx, start..end, *rx_len);
                    }
                    *rx_len += end - start;
                    let hw = &mut self.stats.high_water.rx_bytes;
                    *hw = (*hw).max(*rx_len as u32);
                    self.last_full = full;
                    self.process(rx, rx_len, dispatch);
                }
            }
        }
        Ok(true)
    }

    /// Counts a `"raw"` payload of `len` bytes of which `stored` reached the serial ring or the
    /// reader (the rest was dropped, [`SerialOverflow::Drop`](crate::SerialOverflow)).
    pub(crate) fn count_raw(&mut self, len: usize, stored: usize) {
        self.serial.pending = 0;
        self.stats.received[Endpoint::Raw as usize].add(len);
        self.stats.serial_dropped = self
            .stats
            .serial_dropped
            .wrapping_add((len - stored) as u32);
        let hw = &mut self.stats.high_water.serial_rx_bytes;
        *hw = (*hw).max(self.serial.ring.len() as u32);
    }

    /// With the serial ring empty: takes a `"raw"` payload at the head of the receive queue
    /// straight into `buf` (what does not fit goes to the ring), the one copy out of shared
    /// memory. `Ok(None)` if the ring holds bytes, the head is not a raw payload, or the payload
    /// taken gave no bytes.
    pub(crate) fn serial_read_direct(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        if self.serial.ring.len() != 0 {
            return Ok(None);
        }
        let ring = &mut self.serial.ring;
        let got = self.transport.try_recv_with(|ep, p| {
            if ep != Endpoint::Raw {
                return (false, None);
            }
            let len = p.len();
            let n = len.min(buf.len());
            if p.read(0, &mut buf[..n]).is_err() {
                return (true, Some((len, 0, 0)));
            }
            let kept = if n < len { ring.push_from(p, n) } else { 0 };
            (true, Some((len, n, kept)))
        });
        match got {
            Ok(Some(Some((len, n, kept)))) => {
                if n == 0 && len != 0 {
                    self.stats.transport_errors = self.stats.transport_errors.wrapping_add(1);
                }
                self.count_raw(len, n + kept);
                // Consumed but nothing for the reader (an empty payload, or a refused read):
                // not a result, since `read` returning 0 would mean end of stream.
                Ok((n > 0).then_some(n))
            }
            Ok(_) => Ok(None),
            Err(duet_rpmsg::Error::PeerReset) => {
                self.peer_reset();
                Err(Error::PeerReset)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the serial transmit buffer followed by `more` as one `"raw"` message, each copied
    /// straight into the shared buffer; `true` if it went (the buffer is empty then).
    pub(crate) fn serial_send_with(&mut self, more: &[u8]) -> bool {
        let s = &self.serial;
        let head = &s.tx[..s.tx_len];
        let len = head.len() + more.len();
        if self
            .transport
            .try_send_parts(Endpoint::Raw, head, more)
            .is_err()
        {
            return false;
        }
        self.stats.sent[Endpoint::Raw as usize].add(len);
        self.stats.doorbells_rung = self.stats.doorbells_rung.wrapping_add(1);
        self.serial.tx_len = 0;
        true
    }

    /// Sends the serial transmit buffer if a transport buffer is free (no waiting).
    pub(crate) fn serial_try_flush(&mut self) {
        let _ = self.serial_send_once();
    }

    /// One attempt to send the serial transmit buffer (in tty mode at most one payload's
    /// notification of it); `Ok(true)` when it is empty afterwards.
    pub(crate) fn serial_send_once(&mut self) -> Result<bool, Error> {
        let mut n = self.serial.tx_len;
        if n == 0 {
            return Ok(true);
        }
        let r = if self.serial.tty {
            // Bytes buffered in raw mode may exceed what one notification holds.
            let room = self.ppb().min(MAX_PAYLOAD).saturating_sub(TTY_OVERHEAD);
            n = n.min(room.max(1));
            let data = &self.serial.tx[..n];
            let mut e = duet_codec::Encoder::new(&mut self.tx);
            let enc = e
                .write_raw(&[0x93, rpc::NOTIFICATION])
                .and_then(|_| e.write_str("tty"))
                .and_then(|_| e.write_array_len(1))
                .and_then(|_| e.write_bin(data));
            if let Err(err) = enc {
                return Err(Error::Encode(err));
            }
            let len = e.position();
            counted_send(
                &mut self.transport,
                &mut self.stats,
                Endpoint::Rpc,
                &self.tx[..len],
            )
        } else {
            counted_send(
                &mut self.transport,
                &mut self.stats,
                Endpoint::Raw,
                &self.serial.tx[..n],
            )
        };
        match r {
            Ok(()) => {
                let len = self.serial.tx_len;
                duet_codec::move_down(&mut self.serial.tx.0, n..len, 0);
                self.serial.tx_len = len - n;
                Ok(self.serial.tx_len == 0)
            }
            Err(duet_rpmsg::Error::NoBuffer) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sleeps from `now` until the peer's doorbell or `deadline`, but at most [`WAIT_SLICE`]: a
    /// doorbell is only a hint, so a lost one delays a wake-up by one slice, never until the
    /// deadline. `true` if the doorbell ended the wait.
    pub(crate) fn wait_from(&mut self, now: Instant, deadline: Instant) -> bool {
        let rung = self
            .transport
            .platform()
            .wait(min(deadline, now.saturating_add(WAIT_SLICE)));
        self.count_wake(rung);
        rung
    }

    /// Counts a wait that the peer's doorbell ended.
    pub(crate) fn count_wake(&mut self, rung: bool) {
        if rung {
            self.quiet = false;
            self.stats.doorbells_received = self.stats.doorbells_received.wrapping_add(1);
        }
    }
}

/// What the receive loop did with one payload.
pub(crate) enum Got {
    /// Left queued: no room for it now, or a raw payload kept for the reader.
    Stop,
    /// `"rpc"`: whether it could be read, and its length (at the end of the reassembly buffer).
    Rpc(bool, usize),
    /// `"raw"`: its length and how many of its bytes were kept.
    Raw(usize, usize),
}

/// `d` in whole microseconds, saturated (as `Instant::saturating_add` counts it).
const fn micros(d: Duration) -> u64 {
    let us = d.as_micros();
    if us > u64::MAX as u128 {
        u64::MAX
    } else {
        us as u64
    }
}

/// `transport.try_send`, counted in `stats` (message, bytes, doorbell) when it succeeds.
fn counted_send<T: Transport>(
    transport: &mut T,
    stats: &mut Stats,
    endpoint: Endpoint,
    data: &[u8],
) -> Result<(), duet_rpmsg::Error> {
    transport.try_send(endpoint, data)?;
    stats.sent[endpoint as usize].add(data.len());
    stats.doorbells_rung = stats.doorbells_rung.wrapping_add(1);
    Ok(())
}

/// Keeps the error value `err` of an error reply in `dst`. Out of line: the common path of
/// taking a reply stays small.
#[cold]
#[inline(never)]
fn stash_remote(dst: &mut RemoteError, err: &[u8]) {
    // The parser checked the value when the reply arrived.
    *dst = match Decoder::new(err).read_str() {
        Ok(text) => RemoteError::from_text(text),
        Err(_) => RemoteError::from_raw(err),
    };
}

/// For a message `parse` refused with `e`: its msgid, what is wrong and its length if it is
/// whole MessagePack, if it is a request whose msgid can be read (then it is answered).
fn malformed_request(
    buf: &[u8],
    e: duet_codec::Error,
) -> Option<(MsgId, &'static str, Option<usize>)> {
    let mut d = Decoder::new(buf);
    let n = d.read_array_len().ok()?;
    if n < 2 || d.read_u64().ok()? != u64::from(rpc::REQUEST) {
        return None;
    }
    let id = MsgId::read(&mut d).ok()?;
    let what = if n != 4 {
        "not 4 elements [0, msgid, method, params]"
    } else {
        match d.read_str() {
            Err(duet_codec::Error::InvalidUtf8) => "method is not valid UTF-8",
            Err(_) => "method is not a string",
            Ok(_) if d.peek_kind() != Ok(Kind::Array) => "params are not an array",
            Ok(_) => e.as_str(),
        }
    };
    let mut whole = Decoder::new(buf);
    let len = whole.skip().ok().map(|()| whole.position());
    Some((id, what, len))
}

impl<
        'a,
        T: Transport,
        const HANDLERS: usize,
        const CALLS: usize,
        const BUF: usize,
        const REPLY: usize,
        const SERIAL: usize,
    > Link for Engine<'a, T, HANDLERS, CALLS, BUF, REPLY, SERIAL>
{
    fn now(&self) -> Instant {
        Engine::now(self)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn default_deadline(&self, now: Instant) -> Instant {
        self.deadline_from(now)
    }

    fn sleep_until(&mut self, now: Instant, deadline: Instant) -> bool {
        self.wait_from(now, deadline)
    }

    fn reclaim(&mut self, now: Option<Instant>) {
        Engine::reclaim(self, now);
    }

    fn rpc_ready(&self) -> bool {
        self.transport.is_ready(Endpoint::Rpc)
    }

    fn quiet(&self) -> bool {
        self.quiet
    }

    fn open_call(&mut self, deadline: Instant) -> Result<(u16, u32), Fail> {
        let free = |slots: &[Slot<REPLY>]| {
            slots
                .iter()
                .position(|s| matches!(s.state, SlotState::Free))
        };
        let mut i = free(&self.slots);
        if i.is_none() {
            // Expired calls free their slots.
            self.reclaim(None);
            i = free(&self.slots);
        }
        let Some(i) = i else {
            return Err(Fail::TooManyCalls);
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let s = &mut self.slots[i];
        s.state = SlotState::Waiting;
        s.id = id;
        s.deadline = deadline;
        s.waker = None;
        self.next_expiry = min(self.next_expiry, deadline);
        let hw = &mut self.stats.high_water.calls_in_flight;
        if *hw <= i as u32 {
            // Slots are taken lowest first, so only a call in a slot at or above the mark can
            // raise it.
            let busy = self
                .slots
                .iter()
                .filter(|s| !matches!(s.state, SlotState::Free))
                .count() as u32;
            *hw = (*hw).max(busy);
        }
        Ok((i as u16, id))
    }

    fn close_call(&mut self, slot: u16, id: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.id == id {
                s.state = SlotState::Free;
                s.waker = None;
            }
        }
    }

    fn set_deadline(&mut self, slot: u16, id: u32, deadline: Instant) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.id == id && !matches!(s.state, SlotState::Free) {
                s.deadline = deadline;
                self.next_expiry = min(self.next_expiry, deadline);
            }
        }
    }

    fn take(&mut self, slot: u16, id: u32, out: &mut dyn FnMut(&[u8])) -> Take {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return Take::Gone;
        };
        if s.id != id {
            return Take::Gone;
        }
        match s.state {
            SlotState::Free => Take::Gone,
            SlotState::Waiting => Take::Pending,
            SlotState::Failed(e) => {
                s.state = SlotState::Free;
                Take::Failed(e)
            }
            SlotState::Done { err_len, res_len } => {
                // (`deliver` took the waker.)
                s.state = SlotState::Free;
                let err = &s.buf[..err_len];
                if err != [0xc0] {
                    stash_remote(&mut self.remote, err);
                    return Take::Failed(Fail::Remote);
                }
                // Both values were checked by the parser when the reply arrived.
                out(&s.buf[err_len..err_len + res_len]);
                Take::Done
            }
        }
    }

    fn remote(&self) -> RemoteError {
        self.remote
    }

    fn register(&mut self, slot: u16, id: u32, waker: &Waker) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.id == id && matches!(s.state, SlotState::Waiting) {
                match &s.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => s.waker = Some(waker.clone()),
                }
            }
        }
    }

    fn send_rpc(
        &mut self,
        rx: &mut [u8],
        rx_len: &mut usize,
        build: &mut dyn FnMut(&mut [u8]) -> duet_codec::Result<usize>,
        mut deadline: Option<Instant>,
    ) -> Result<(), Fail> {
        let cap = min(BUF, self.transport.max_message_len());
        let n = match build(&mut self.tx[..cap]) {
            Ok(n) => n,
            Err(duet_codec::Error::BufferTooSmall) => {
                // Learn the real length if the engine's buffer is larger than the limit.
                let len = if cap < BUF {
                    build(&mut self.tx).unwrap_or(0)
                } else {
                    0
                };
                return Err(Fail::MessageTooLarge { len, max: cap });
            }
            Err(e) => return Err(Fail::Encode(e)),
        };
        self.stats.high_water.tx_bytes = self.stats.high_water.tx_bytes.max(n as u32);
        loop {
            match counted_send(
                &mut self.transport,
                &mut self.stats,
                Endpoint::Rpc,
                &self.tx[..n],
            ) {
                Ok(()) => return Ok(()),
                Err(duet_rpmsg::Error::NoBuffer) => {}
                Err(e) => return Err(e.into()),
            }
            let now = self.now();
            let deadline = *deadline.get_or_insert_with(|| self.deadline_from(now));
            if now >= deadline {
                return Err(Fail::Timeout);
            }
            // Keep receiving (replies only: a handler would overwrite the encode buffer), so
            // the peer's buffers flow back and it can make progress too.
            self.reclaim(Some(now));
            self.poll_step(rx, rx_len, false)?;
            self.wait_from(now, min(deadline, now.saturating_add(SEND_RETRY)));
        }
    }

    fn poll_level(
        &mut self,
        rx: &mut [u8],
        rx_len: &mut usize,
        dispatch: bool,
    ) -> Result<bool, Fail> {
        self.poll_step(rx, rx_len, dispatch)
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn count_call(&mut self, result: Option<Fail>) {
        self.stats.calls.count(result);
    }

    fn count_reply_failure(&mut self) {
        self.stats.reply_failures = self.stats.reply_failures.wrapping_add(1);
    }

    fn doorbell(&self) -> Option<&Doorbell> {
        self.doorbell
    }

    fn epoch(&self) -> u32 {
        self.epoch
    }
}
