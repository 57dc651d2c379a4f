//! The doorbell: how the peer's interrupt wakes async code waiting on the engine.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context as TaskContext, Poll, Waker};

use atomic_waker::AtomicWaker;

/// A flag plus two waker slots, rung from the peer's doorbell interrupt (or a simulator thread)
/// and awaited by [`Rpc::run`](crate::Rpc::run) and by pending-call futures.
///
/// `ring` is safe to call from an interrupt handler (atomics only, no lock). A ring is never
/// lost: it sets a flag that the next wait sees. Two slots, each with its own flag so neither
/// consumes a ring meant for the other: one for the task running [`Rpc::run`](crate::Rpc::run)
/// (the "server": [`wait`](Self::wait), [`take`](Self::take), [`is_rung`](Self::is_rung)), one
/// for the latest task awaiting a call. With several tasks awaiting calls, also run `run()`:
/// it drives delivery, and each delivered reply wakes the task that owns it.
pub struct Doorbell {
    rung: AtomicBool,
    client_rung: AtomicBool,
    /// Set once a task registers a waker: until then a ring only sets the flags (a blocking
    /// engine never registers one, so its interrupt does not touch the waker slots).
    armed: AtomicBool,
    server: AtomicWaker,
    client: AtomicWaker,
}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl Doorbell {
    /// A doorbell that has not rung.
    pub const fn new() -> Self {
        Doorbell {
            rung: AtomicBool::new(false),
            client_rung: AtomicBool::new(false),
            armed: AtomicBool::new(false),
            server: AtomicWaker::new(),
            client: AtomicWaker::new(),
        }
    }

    /// Records a ring and wakes the waiting tasks. Call it from the doorbell interrupt.
    pub fn ring(&self) {
        self.rung.store(true, Ordering::SeqCst);
        self.client_rung.store(true, Ordering::SeqCst);
        // SeqCst pairs with `arm`: a task that registers after this load sees the flags set
        // above when it checks them after registering, so no wake-up is lost.
        if self.armed.load(Ordering::SeqCst) {
            self.server.wake();
            self.client.wake();
        }
    }

    /// Marks that a waker is (about to be) registered; before the registration.
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Clears the server's flag and reports whether it was set (call futures keep their own).
    pub fn take(&self) -> bool {
        self.rung.swap(false, Ordering::SeqCst)
    }

    /// Whether a ring happened since the last [`take`](Self::take).
    pub fn is_rung(&self) -> bool {
        self.rung.load(Ordering::SeqCst)
    }

    /// Clears the call futures' flag and reports whether it was set.
    pub(crate) fn take_client(&self) -> bool {
        self.client_rung.swap(false, Ordering::SeqCst)
    }

    /// Whether a ring happened since the last [`take_client`](Self::take_client).
    pub(crate) fn is_rung_client(&self) -> bool {
        self.client_rung.load(Ordering::SeqCst)
    }

    /// Registers the waker of a task awaiting a call (woken by the next ring).
    pub fn register_client(&self, w: &Waker) {
        self.arm();
        self.client.register(w);
    }

    /// A future that completes at the next ring (or at once if one is recorded), for the
    /// server task. Consumes the ring.
    pub fn wait(&self) -> Wait<'_> {
        Wait { bell: self }
    }
}

/// The future returned by [`Doorbell::wait`].
pub struct Wait<'b> {
    bell: &'b Doorbell,
}

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.bell.take() {
            return Poll::Ready(());
        }
        self.bell.arm();
        self.bell.server.register(cx.waker());
        if self.bell.take() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A future that is pending once, waking itself (lets other tasks run).
pub(crate) struct YieldNow(pub bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
