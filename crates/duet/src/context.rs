//! [`Context`]: the engine as seen by code that makes calls, inside handlers or outside.

use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context as TaskContext, Poll, Waker};
use core::time::Duration;

use duet_codec::rpc::{self, MsgId};
use duet_codec::Encoder;
use duet_rpmsg::Instant;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{text, Fail, RemoteError};
use crate::handler::{Request, TypedFn};
use crate::reply::{Part, Words};
use crate::{Doorbell, Error, Stats};

/// What a call slot holds when asked for its reply.
pub(crate) enum Take {
    /// No reply yet.
    Pending,
    /// The reply was handed to the callback and the slot freed.
    Done,
    /// The slot no longer belongs to this call (it expired and was reclaimed).
    Gone,
    /// The call failed (peer reset, reply too large, an error reply: its value is stashed);
    /// the slot was freed.
    Failed(Fail),
}

/// The object-safe face of the engine, so [`Context`] (and handlers) need no generic parameters.
pub(crate) trait Link {
    fn now(&self) -> Instant;
    fn timeout(&self) -> Duration;
    /// `now` plus the default timeout (saturating), without `Duration` arithmetic.
    fn default_deadline(&self, now: Instant) -> Instant;
    /// Sleeps until the doorbell or `deadline` (at most a wait slice), `now` being the time;
    /// `true` if the doorbell ended it.
    fn sleep_until(&mut self, now: Instant, deadline: Instant) -> bool;
    fn rpc_ready(&self) -> bool;
    /// Whether the last receive step left nothing pending or held and no doorbell was taken since, so whatever arrives next rings the doorbell. A wait outside
    /// the engine may have taken that ring: then looking is delayed by one wait slice at most.
    fn quiet(&self) -> bool;
    /// Frees the slots of waiting calls whose deadline passed at `now` (read from the clock
    /// if `None` and a call is waiting).
    fn reclaim(&mut self, now: Option<Instant>);
    fn open_call(&mut self, deadline: Instant) -> Result<(u16, u32), Fail>;
    fn close_call(&mut self, slot: u16, id: u32);
    fn set_deadline(&mut self, slot: u16, id: u32, deadline: Instant);
    /// Hands a successful reply's encoded result (one whole value) to `out`; an error reply is stashed (see
    /// [`remote`](Self::remote)) and reported as `Take::Failed(Fail::Remote)`.
    fn take(&mut self, slot: u16, id: u32, out: &mut dyn FnMut(&[u8])) -> Take;
    /// The error value of the last error reply taken.
    fn remote(&self) -> RemoteError;
    fn register(&mut self, slot: u16, id: u32, waker: &Waker);
    fn send_rpc(
        &mut self,
        rx: &mut [u8],
        rx_len: &mut usize,
        build: &mut dyn FnMut(&mut [u8]) -> duet_codec::Result<usize>,
        // `None`: the default timeout, counted from the first time no buffer is free (so a
        // send that finds one reads no clock).
        deadline: Option<Instant>,
    ) -> Result<(), Fail>;
    /// Receives and processes what is pending; `Ok(true)` if more may be pending (budget hit).
    fn poll_level(
        &mut self,
        rx: &mut [u8],
        rx_len: &mut usize,
        dispatch: bool,
    ) -> Result<bool, Fail>;
    fn stats(&self) -> Stats;
    /// Counts a finished own call: `None` completed, else why it failed.
    fn count_call(&mut self, result: Option<Fail>);
    fn count_reply_failure(&mut self);
    fn doorbell(&self) -> Option<&Doorbell>;
    /// How many resets this engine has seen (voids [`Deferred`] tokens from before).
    fn epoch(&self) -> u32;
}

/// A request whose answer comes later, from [`Context::defer`]: answer it with
/// [`Rpc::respond`](crate::Rpc::respond) / [`Rpc::respond_error`](crate::Rpc::respond_error) or
/// the same methods' [`Context`] forms ([`Context::respond_deferred`], also from another
/// handler), when the slow work is done. Meanwhile the engine keeps serving other traffic.
///
/// Not `Clone`: answering consumes it, so a request gets at most one answer. Dropping it
/// unanswered sends nothing (no heap, no `Drop` hook): the caller's call ends in its own
/// `Timeout` and its later calls are unaffected. A token from before a peer reset is void:
/// answering it sends nothing and gives [`Error::PeerReset`], so a stale reply never reaches
/// the peer's new session.
#[must_use = "an unanswered deferred request makes the caller time out"]
#[derive(Debug)]
pub struct Deferred {
    msgid: MsgId,
    epoch: u32,
}

impl Deferred {
    /// The caller's msgid exactly as received (the reply echoes it in the same encoding).
    pub fn msgid(&self) -> MsgId {
        self.msgid
    }
}

/// A call in flight, returned by `call_async`; finish it with `join`, `poll_pending` or `wait`
/// (a `Future`).
///
/// Its slot is freed when its result is taken, or at its deadline if no reply has come by
/// then (a reply after that is dropped as late). A reply that came in time is kept until taken,
/// however late that is. So dropping a `Pending` whose reply has already arrived (or whose call
/// failed with a reset) leaves its slot occupied for good: join or poll every `Pending`, or
/// later calls fail with [`Error::TooManyCalls`] once all `CALLS` slots are held this way.
#[must_use = "a pending call holds a slot until its result is taken (or its deadline passes unanswered)"]
#[derive(Debug)]
pub struct Pending<R> {
    pub(crate) slot: u16,
    pub(crate) id: u32,
    pub(crate) deadline: Instant,
    pub(crate) _r: PhantomData<fn() -> R>,
}

impl<R> Pending<R> {
    /// The msgid the request was sent with.
    pub fn msgid(&self) -> u32 {
        self.id
    }

    /// The deadline after which the slot is reclaimed if no reply has arrived (`join` replaces
    /// it).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// The engine, borrowed: make calls, send notifications and answer the current request.
///
/// Handlers receive one (it is how a handler calls back into the peer while the peer waits for
/// it); outside handlers get one from [`Rpc::context`](crate::Rpc::context) (every `Rpc` call
/// method forwards here). Receiving inside a handler uses the part of the receive buffer behind
/// the message being handled, so nesting is limited by the buffer size and by
/// [`MAX_NESTING`](crate::MAX_NESTING).
pub struct Context<'c> {
    link: &'c mut dyn Link,
    rx: &'c mut [u8],
    rx_len: &'c mut usize,
    reply_to: Option<MsgId>,
    responded: bool,
}

impl<'c> Context<'c> {
    pub(crate) fn new(
        link: &'c mut dyn Link,
        rx: &'c mut [u8],
        rx_len: &'c mut usize,
        reply_to: Option<MsgId>,
    ) -> Self {
        Context {
            link,
            rx,
            rx_len,
            reply_to,
            responded: false,
        }
    }

    pub(crate) fn responded(&self) -> bool {
        self.responded
    }

    /// The platform clock.
    pub fn now(&self) -> Instant {
        self.link.now()
    }

    /// The default call timeout.
    pub fn timeout(&self) -> Duration {
        self.link.timeout()
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.link.stats()
    }

    /// Whether the `"rpc"` endpoint is bound with the peer.
    pub fn is_ready(&self) -> bool {
        self.link.rpc_ready()
    }

    /// Receives and handles everything pending without blocking (see [`Rpc::poll`](crate::Rpc::poll)).
    pub fn poll(&mut self) -> Result<(), Error> {
        let r = self.poll_all();
        self.public(r)
    }

    fn poll_all(&mut self) -> Result<(), Fail> {
        self.link.reclaim(None);
        for _ in 0..64 {
            if !self.link.poll_level(self.rx, self.rx_len, true)? {
                break;
            }
        }
        Ok(())
    }

    /// The public form of an internal result (builds the [`Error`], with the peer's error
    /// value if there is one).
    fn public<V>(&self, r: Result<V, Fail>) -> Result<V, Error> {
        match r {
            Ok(v) => Ok(v),
            Err(f) => Err(self.error(f)),
        }
    }

    #[inline(never)]
    fn error(&self, f: Fail) -> Error {
        f.into_error(|| self.link.remote())
    }

    /// Calls `method` with `args` (a tuple: `()`, `(x,)`, `(a, b)`, ...) and waits for the result
    /// until the default timeout. While waiting it serves the peer's requests.
    pub fn call<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
    ) -> Result<R, Error> {
        let now = self.now();
        let deadline = self.link.default_deadline(now);
        let r = self.call_inner(method, &args, deadline, Some(now));
        self.public(r)
    }

    /// Like [`call`](Self::call) with its own timeout.
    pub fn call_with_timeout<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
        timeout: Duration,
    ) -> Result<R, Error> {
        let now = self.now();
        let deadline = now.saturating_add(timeout);
        let r = self.call_inner(method, &args, deadline, Some(now));
        self.public(r)
    }

    /// Like [`call`](Self::call) with an absolute deadline.
    pub fn call_until<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
        deadline: Instant,
    ) -> Result<R, Error> {
        let r = self.call_inner(method, &args, deadline, None);
        self.public(r)
    }

    fn call_inner<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: &A,
        deadline: Instant,
        now: Option<Instant>,
    ) -> Result<R, Fail> {
        let (slot, id) = self.start(method, args, deadline)?;
        // The slot already has this deadline (open_call).
        self.join_inner(slot, id, deadline, now)
    }

    /// Sends the request and returns at once; the default timeout sets the slot's deadline.
    /// `TooManyCalls` when all `CALLS` slots are busy.
    pub fn call_async<R: DeserializeOwned, A: Serialize>(
        &mut self,
        method: &str,
        args: A,
    ) -> Result<Pending<R>, Error> {
        let deadline = self.link.default_deadline(self.now());
        let r = self
            .start(method, &args, deadline)
            .map(|(slot, id)| Pending {
                slot,
                id,
                deadline,
                _r: PhantomData,
            });
        self.public(r)
    }

    /// Opens a call slot and sends the request; the slot and msgid of the call.
    fn start<A: Serialize>(
        &mut self,
        method: &str,
        args: &A,
        deadline: Instant,
    ) -> Result<(u16, u32), Fail> {
        self.send_request(
            &mut |buf, id| rpc::encode_request(buf, MsgId::from(id), method, args),
            deadline,
        )
    }

    fn send_request(
        &mut self,
        encode: &mut dyn FnMut(&mut [u8], u32) -> duet_codec::Result<usize>,
        deadline: Instant,
    ) -> Result<(u16, u32), Fail> {
        if !self.link.rpc_ready() {
            return self.finish(Err(Fail::NotReady));
        }
        let (slot, id) = match self.link.open_call(deadline) {
            Ok(s) => s,
            Err(e) => return self.finish(Err(e)),
        };
        let r = self.link.send_rpc(
            self.rx,
            self.rx_len,
            &mut |buf| encode(buf, id),
            Some(deadline),
        );
        match r {
            Ok(()) => Ok((slot, id)),
            Err(e) => {
                self.link.close_call(slot, id);
                self.finish(Err(e))
            }
        }
    }

    /// Counts how a call ended ([`Stats::calls`]) and passes its result on.
    fn finish<V>(&mut self, r: Result<V, Fail>) -> Result<V, Fail> {
        self.link.count_call(r.as_ref().err().copied());
        r
    }

    /// Waits for a pending call's result until `deadline` (which replaces the call's own),
    /// serving the peer meanwhile. On timeout the slot is freed and a late reply is dropped.
    pub fn join<R: DeserializeOwned>(
        &mut self,
        p: Pending<R>,
        deadline: Instant,
    ) -> Result<R, Error> {
        self.link.set_deadline(p.slot, p.id, deadline);
        let r = self.join_inner(p.slot, p.id, deadline, None);
        self.public(r)
    }

    /// Waits for the call's result until `deadline` (the slot's own), `now` being the time if
    /// it was just read.
    fn join_inner<R: DeserializeOwned>(
        &mut self,
        slot: u16,
        id: u32,
        deadline: Instant,
        now: Option<Instant>,
    ) -> Result<R, Fail> {
        let mut val = None;
        let r = self.join_raw(slot, id, deadline, now, &mut |res| {
            val = Some(duet_codec::from_slice::<R>(res))
        });
        self.finish_with(r, val)
    }

    /// The waiting loop of [`join_inner`](Self::join_inner), not generic: `Ok` once the result
    /// was handed to `out`, else why the call failed (not counted yet). Out of line: one copy
    /// for every result type.
    #[inline(never)]
    fn join_raw(
        &mut self,
        slot: u16,
        id: u32,
        deadline: Instant,
        now: Option<Instant>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Fail> {
        // Right after sending, the reply cannot be in yet: if nothing else is pending either
        // (the doorbell rings for whatever comes), the first round goes straight to sleep.
        let mut look = now.is_none() || !self.link.quiet();
        let mut first = now;
        let mut rung = false;
        loop {
            // One clock read per round (the first may use the caller's `now`, read just before
            // sending): it frees expired slots (ours too: then the reply is late and `take`
            // reports the timeout), bounds the wait and the sleep. After a doorbell the reply
            // is most likely in, so that round looks first and reads the clock only if not.
            let known = if rung {
                None
            } else {
                let now = match first.take() {
                    Some(now) => now,
                    None => self.now(),
                };
                self.link.reclaim(Some(now));
                Some(now)
            };
            let mut more = false;
            if look {
                let polled = self.link.poll_level(self.rx, self.rx_len, true);
                match self.link.take(slot, id, out) {
                    Take::Pending => {}
                    Take::Done => return Ok(()),
                    Take::Gone => return Err(Fail::Timeout),
                    Take::Failed(e) => return Err(e),
                }
                more = match polled {
                    Ok(more) => more,
                    Err(Fail::PeerReset) => {
                        self.link.close_call(slot, id);
                        return Err(Fail::PeerReset);
                    }
                    Err(_) => false,
                };
            }
            look = true;
            let now = match known {
                Some(now) => now,
                None => {
                    let now = self.now();
                    self.link.reclaim(Some(now));
                    now
                }
            };
            if now >= deadline {
                self.link.close_call(slot, id);
                return Err(Fail::Timeout);
            }
            rung = !more && self.link.sleep_until(now, deadline);
        }
    }

    /// One non-blocking step: processes what is pending and reports the result if it is there.
    /// After `Ready` the call is finished (polling again gives `Err(Timeout)`).
    pub fn poll_pending<R: DeserializeOwned>(&mut self, p: &Pending<R>) -> Poll<Result<R, Error>> {
        let mut val = None;
        let r = self.poll_pending_raw(p.slot, p.id, &mut |res| {
            val = Some(duet_codec::from_slice::<R>(res))
        });
        match r {
            Poll::Ready(r) => {
                let r = self.finish_with(r, val);
                Poll::Ready(self.public(r))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_pending_raw(
        &mut self,
        slot: u16,
        id: u32,
        out: &mut dyn FnMut(&[u8]),
    ) -> Poll<Result<(), Fail>> {
        if let Poll::Ready(r) = self.take_raw(slot, id, out) {
            return Poll::Ready(r);
        }
        self.link.reclaim(None);
        if let Err(Fail::PeerReset) = self.link.poll_level(self.rx, self.rx_len, true) {
            self.link.close_call(slot, id);
            return Poll::Ready(Err(Fail::PeerReset));
        }
        self.take_raw(slot, id, out)
    }

    /// Takes the call's outcome if it has one: `Ok` once the result was handed to `out`.
    fn take_raw(
        &mut self,
        slot: u16,
        id: u32,
        out: &mut dyn FnMut(&[u8]),
    ) -> Poll<Result<(), Fail>> {
        match self.link.take(slot, id, out) {
            Take::Pending => Poll::Pending,
            Take::Done => Poll::Ready(Ok(())),
            Take::Gone => Poll::Ready(Err(Fail::Timeout)),
            Take::Failed(e) => Poll::Ready(Err(e)),
        }
    }

    /// The typed result of a finished call (`val`: the decoded result if `r` is `Ok`), counted.
    fn finish_with<R>(
        &mut self,
        r: Result<(), Fail>,
        val: Option<duet_codec::Result<R>>,
    ) -> Result<R, Fail> {
        let r = r.and_then(|()| match val {
            Some(v) => v.map_err(Fail::Decode),
            None => Err(Fail::Timeout),
        });
        self.finish(r)
    }

    /// A `Future` for a pending call. It drives the engine each time it is polled and is woken
    /// by the [`Doorbell`] (if the `Rpc` has one; else it re-polls at once, busy-waiting) and by
    /// the delivery of its reply. Its deadline is checked when it is polled.
    pub fn wait<R: DeserializeOwned>(self, p: Pending<R>) -> CallFuture<'c, R> {
        CallFuture { ctx: self, p }
    }

    /// Sends a notification (no reply). Waits for a free buffer until the default timeout.
    pub fn notify<A: Serialize>(&mut self, method: &str, args: A) -> Result<(), Error> {
        let r = self.send(&mut |buf| rpc::encode_notification(buf, method, &args));
        self.public(r)
    }

    /// Sends the message `build` encodes, waiting for a buffer up to the default timeout.
    fn send(
        &mut self,
        build: &mut dyn FnMut(&mut [u8]) -> duet_codec::Result<usize>,
    ) -> Result<(), Fail> {
        if !self.link.rpc_ready() {
            return Err(Fail::NotReady);
        }
        self.link.send_rpc(self.rx, self.rx_len, build, None)
    }

    /// Answers the request being handled with `value` (a `Result` sends its `Err` in the error
    /// field). Does nothing outside a request handler or after the first answer (or a
    /// [`defer`](Self::defer)). A result too large to send is replaced by the error text
    /// [`text::RESULT_TOO_LARGE`], one whose serialization fails by
    /// [`text::RESULT_UNENCODABLE_PREFIX`] and the reason, so the caller is never left waiting.
    pub fn respond<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.answer(&mut |e| crate::reply::encode_reply(e, value));
    }

    /// Answers the request being handled with `error` in the error field and a nil result.
    pub fn respond_error<E: Serialize + ?Sized>(&mut self, error: &E) {
        self.answer(&mut |e| encode_error(e, error));
    }

    /// Answers with an argument error's text (written without formatting code).
    #[inline(never)]
    pub(crate) fn respond_arg_error(&mut self, e: &crate::handler::ArgError<'_>) {
        e.with_parts(|p| self.respond_words(p));
    }

    /// Answers with nil (a handler that returned without answering).
    pub(crate) fn respond_nil(&mut self) {
        self.answer(&mut |e| {
            e.write_nil()?;
            e.write_nil()
        });
    }

    /// Answers with the text made of `parts` in the error field and a nil result.
    pub(crate) fn respond_words(&mut self, parts: &[Part<'_>]) {
        self.answer(&mut |e| {
            Words(parts).encode(e)?;
            e.write_nil()
        });
    }

    /// Takes the request being handled out of this handler: the engine sends no automatic
    /// reply when the handler returns, and the returned [`Deferred`] answers it later (see
    /// there), so a slow job (a conversion, a motor move) does not hold up other traffic.
    ///
    /// `None` for a notification (nothing to answer), and after the request was answered or
    /// already deferred. In a typed handler the return value is then discarded.
    pub fn defer(&mut self) -> Option<Deferred> {
        let msgid = self.reply_to?;
        if self.responded {
            return None;
        }
        self.responded = true;
        Some(Deferred {
            msgid,
            epoch: self.link.epoch(),
        })
    }

    /// Answers a deferred request with `value` (a `Result` sends its `Err` in the error
    /// field), waiting for a free buffer up to the default timeout. Works from any context:
    /// another handler, a nested one, or outside handlers. Errors: `PeerReset` if the peer was
    /// reset since the request came (nothing sent), else why sending failed (`Timeout` without
    /// a buffer, `NotReady`); the caller then times out. A result too large to send (or that fails
    /// to serialize) is replaced by an error text, as with [`respond`](Self::respond).
    pub fn respond_deferred<T: Serialize + ?Sized>(
        &mut self,
        d: Deferred,
        value: &T,
    ) -> Result<(), Error> {
        let r = self.answer_deferred(d, &mut |e| crate::reply::encode_reply(e, value));
        self.public(r)
    }

    /// Answers a deferred request with `error` in the error field and a nil result (errors as
    /// for [`respond_deferred`](Self::respond_deferred)).
    pub fn respond_deferred_error<E: Serialize + ?Sized>(
        &mut self,
        d: Deferred,
        error: &E,
    ) -> Result<(), Error> {
        let r = self.answer_deferred(d, &mut |e| encode_error(e, error));
        self.public(r)
    }

    fn answer_deferred(
        &mut self,
        d: Deferred,
        body: &mut dyn FnMut(&mut Encoder<'_>) -> duet_codec::Result<()>,
    ) -> Result<(), Fail> {
        if d.epoch != self.link.epoch() {
            return Err(Fail::PeerReset);
        }
        self.send_reply(d.msgid, body)
    }

    fn answer(&mut self, body: &mut dyn FnMut(&mut Encoder<'_>) -> duet_codec::Result<()>) {
        let Some(id) = self.reply_to else { return };
        if self.responded {
            return;
        }
        self.responded = true;
        let _ = self.send_reply(id, body);
    }

    /// Sends the response to `id` (or the too-large text in its place); counts a failure.
    fn send_reply(
        &mut self,
        id: MsgId,
        body: &mut dyn FnMut(&mut Encoder<'_>) -> duet_codec::Result<()>,
    ) -> Result<(), Fail> {
        let mut r = Ok(());
        // First the body; if the result cannot be sent, a text saying why (same envelope).
        for attempt in 0..2 {
            let fallback = match (attempt, r) {
                (0, _) => None,
                (_, Err(Fail::MessageTooLarge { .. })) => {
                    Some([Part::S(text::RESULT_TOO_LARGE), Part::S("")])
                }
                (_, Err(Fail::Encode(e))) => Some([
                    Part::S(text::RESULT_UNENCODABLE_PREFIX),
                    Part::S(e.as_str()),
                ]),
                _ => break,
            };
            let mut build = |buf: &mut [u8]| match &fallback {
                None => {
                    let mut e = Encoder::new(buf);
                    e.write_raw(&[0x94, rpc::RESPONSE])?;
                    id.write(&mut e)?;
                    body(&mut e)?;
                    Ok(e.position())
                }
                Some(why) => crate::reply::error_response(buf, id, why),
            };
            r = self.link.send_rpc(self.rx, self.rx_len, &mut build, None);
        }
        if r.is_err() {
            self.link.count_reply_failure();
        }
        r
    }

    /// Runs the typed function `f` on `req` and answers it (argument errors included). This is
    /// how an [`Object`](crate::Object) implementation serves one method.
    pub fn serve<M, F: TypedFn<M>>(&mut self, req: Request<'_>, f: F) {
        f.invoke(self, req)
    }
}

/// Writes `error` and a nil result (the tail of an error response).
fn encode_error<E: Serialize + ?Sized>(e: &mut Encoder<'_>, error: &E) -> duet_codec::Result<()> {
    duet_codec::encode(e, error)?;
    e.write_nil()
}

/// The future returned by [`Context::wait`] / [`Rpc::wait`](crate::Rpc::wait).
pub struct CallFuture<'c, R> {
    ctx: Context<'c>,
    p: Pending<R>,
}

impl<R: DeserializeOwned> Future for CallFuture<'_, R> {
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(b) = this.ctx.link.doorbell() {
            // Its own flag: the server's ring stays for `run()`.
            b.take_client();
        }
        if let Poll::Ready(r) = this.ctx.poll_pending(&this.p) {
            return Poll::Ready(r);
        }
        if this.ctx.now() >= this.p.deadline {
            this.ctx.link.close_call(this.p.slot, this.p.id);
            let r = this.ctx.finish(Err(Fail::Timeout));
            return Poll::Ready(this.ctx.public(r));
        }
        this.ctx.link.register(this.p.slot, this.p.id, cx.waker());
        match this.ctx.link.doorbell() {
            Some(b) => {
                b.register_client(cx.waker());
                if b.is_rung_client() {
                    cx.waker().wake_by_ref();
                }
            }
            None => cx.waker().wake_by_ref(),
        }
        Poll::Pending
    }
}
