//! Engine test bodies shared by two transports: the in-memory pair (`crates/duet/tests`) and
//! the real RPMsg transport on the simulator (`crates/duet-sim/tests`, which includes this
//! directory with `#[path]`). Each body is generic over a [`Harness`] that builds a connected
//! pair; `calls_tests!` and `serial_tests!` (with `#[macro_use]`) expand to one `#[test]` per body.
//!
//! Side A plays the M7 (the caller in most bodies, on the test thread) and side B the M4 (a
//! peer thread).
#![allow(dead_code, unused_macros)]

pub mod calls;
pub mod serial;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duet::{Doorbell, Endpoint, Rpc};
use duet_rpmsg::{Platform, Transport};

/// One side's transport, with what the bodies need besides the `Transport` trait.
pub trait Link: Transport + Send + 'static {
    /// Buffers this side has sent so far, both endpoints (from the transport's own counters).
    fn buffers_sent(&self) -> usize;
    /// Buffers sent on `ep` alone, if this transport counts per endpoint.
    fn buffers_sent_on(&self, ep: Endpoint) -> Option<usize>;
    /// This side's doorbell, rung by every notification from the peer (`None`: no doorbell).
    fn doorbell(&self) -> Option<Arc<Doorbell>>;
}

/// What a body asks of its pair.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Largest message, both sides (496 = one buffer, like Arduino).
    pub max_message_len: usize,
    /// Buffers that may be queued per direction, where the transport lets the test choose (the
    /// in-memory pair); the simulator's rings fix it (64 toward the M7, 46 toward the M4).
    pub queue: usize,
}

/// One buffer per message, 64 buffers per direction.
pub const ARDUINO: Opts = Opts {
    max_message_len: 496,
    queue: 64,
};

/// Builds a connected pair (both endpoints ready on both sides).
pub trait Harness: 'static {
    /// The "M7" side.
    type A: Link;
    /// The "M4" side.
    type B: Link;
    /// A connected pair.
    fn pair(opts: Opts) -> (Self::A, Self::B);
}

/// The engine shape most bodies use: 16 handlers, 4 calls, 2048-byte reassembly, 512-byte
/// reply slots, 1024-byte serial ring.
pub type R<'a, T> = Rpc<'a, T, 16, 4, 2048, 512, 1024>;

/// Polls `rpc` until `stop` is set, sleeping on the platform's doorbell in between.
pub fn serve<
    T: Transport,
    const H: usize,
    const C: usize,
    const B: usize,
    const P: usize,
    const S: usize,
>(
    rpc: &mut Rpc<'_, T, H, C, B, P, S>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let _ = rpc.poll();
        let p = rpc.transport().platform();
        p.wait(p.now().saturating_add(Duration::from_millis(5)));
    }
}

/// A peer thread, running until [`Peer::finish`] sets its stop flag.
pub struct Peer<T> {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<T>,
}

impl<T> Peer<T> {
    /// Sets the stop flag, wakes the thread if it is parked, and returns its result.
    pub fn finish(self) -> T {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        self.handle.join().unwrap()
    }
}

/// Runs `f(transport, stop)` on a new thread (typically: bind, then [`serve`] until `stop`).
pub fn spawn_peer<B: Link, T: Send + 'static>(
    b: B,
    f: impl FnOnce(B, &AtomicBool) -> T + Send + 'static,
) -> Peer<T> {
    let stop = flag();
    let handle = std::thread::spawn({
        let stop = stop.clone();
        move || f(b, &stop)
    });
    Peer { stop, handle }
}

/// Receives one payload from a transport used raw (no engine), waiting up to `timeout`.
pub fn recv_wait<T: Transport>(t: &mut T, timeout: Duration) -> Option<(Endpoint, Vec<u8>)> {
    let deadline = t.platform().now().saturating_add(timeout);
    let mut buf = vec![0u8; t.payload_per_buffer()];
    loop {
        let _ = t.poll();
        if let Some(r) = t.try_recv(&mut buf).unwrap() {
            return Some((r.endpoint, buf[..r.len].to_vec()));
        }
        let now = t.platform().now();
        if now >= deadline {
            return None;
        }
        t.platform()
            .wait(deadline.min(now.saturating_add(Duration::from_millis(10))));
    }
}

/// Runs `f` until it returns `Ready`, parking between polls (a tiny executor).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(200));
    }
}

/// A stop flag shared with a peer thread.
pub fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// `n` bytes of a recognisable pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// One `#[test]` per body of [`calls`], on harness `$h`.
macro_rules! calls_tests {
    ($h:ty) => {
        suite_tests!($h, calls: typed_arguments_and_results, every_arity,
            argument_and_result_errors_are_values, wrong_types_toward_us_too,
            handler_calls_back_into_the_caller, crossing_calls_in_both_directions,
            deadlines_default_global_per_call, late_reply_is_dropped_and_next_call_unharmed,
            more_calls_than_capacity_fail_cleanly, call_async_poll_join_and_future,
            result_larger_than_one_buffer, too_large_to_send, notify_and_ignored_notifications,
            bound_objects, run_serves_with_the_doorbell, deferred_reply_lets_other_calls_pass,
            deferred_answered_by_another_handler,
            dropped_deferred_times_out_and_notifications_cannot_defer,
            counters_count_traffic_calls_and_high_water);
    };
}

/// One `#[test]` per body of [`serial`], on harness `$h`.
macro_rules! serial_tests {
    ($h:ty) => {
        suite_tests!($h, serial: write_sends_whole_buffers_and_read_gets_every_byte,
            fmt_write_and_poll_flush, backpressure_instead_of_loss, tty_mode_both_sides,
            read_times_out_without_data);
    };
}

/// `#[test] fn name() { suite::module::name::<H>() }` for each name.
macro_rules! suite_tests {
    ($h:ty, $m:ident: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                suite::$m::$name::<$h>();
            }
        )*
    };
}
