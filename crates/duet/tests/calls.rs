//! Calls between two threads over the in-memory pair (bodies in `suite/calls.rs`, shared with
//! the simulator's tests).

mod common;
#[macro_use]
mod suite;

calls_tests!(common::Mem);

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use duet::{Doorbell, Endpoint, Rpc, Transport};

/// A waker that only records that it was woken (the test is the executor).
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A `run()` task and a call future wait on the same doorbell. One ring wakes both, and
/// polling the call future first must not consume the ring the `run()` task waits for: the
/// `run()` task then serves the request that came with the ring.
#[test]
fn call_future_leaves_the_ring_to_the_run_task() {
    let bell = Doorbell::new();
    let (a, mut caller_peer) = common::pair();
    let (b, mut server_peer) = common::pair();
    let add = |x: i32, y: i32| x + y;
    let mut caller: suite::R<'_, common::MemTransport> = Rpc::new(a);
    caller.set_doorbell(&bell);
    let mut server: suite::R<'_, common::MemTransport> = Rpc::new(b);
    server.set_doorbell(&bell);
    server.bind("add", &add).unwrap();

    let p = caller.call_async::<i32, _>("f", ()).unwrap();
    assert!(caller_peer.recv_wait(Duration::from_secs(1)).is_some());
    let call_flag = Arc::new(Flag(AtomicBool::new(false)));
    let run_flag = Arc::new(Flag(AtomicBool::new(false)));
    let call_waker = Waker::from(call_flag.clone());
    let run_waker = Waker::from(run_flag.clone());
    let mut call = pin!(caller.wait(p));
    let mut run = pin!(server.run());
    assert!(run
        .as_mut()
        .poll(&mut Context::from_waker(&run_waker))
        .is_pending());
    assert!(call
        .as_mut()
        .poll(&mut Context::from_waker(&call_waker))
        .is_pending());

    // The request reaches the server's transport (this doorbell is not wired to it), then the
    // interrupt rings.
    server_peer
        .try_send(
            Endpoint::Rpc,
            &[0x94, 0x00, 0x07, 0xA3, b'a', b'd', b'd', 0x92, 2, 3],
        )
        .unwrap();
    bell.ring();
    assert!(
        call_flag.0.swap(false, Ordering::SeqCst),
        "the ring wakes the call"
    );
    assert!(
        run_flag.0.swap(false, Ordering::SeqCst),
        "the ring wakes run()"
    );
    // The executor polls the call first (the peer has not answered it), then run().
    assert!(call
        .as_mut()
        .poll(&mut Context::from_waker(&call_waker))
        .is_pending());
    assert!(run
        .as_mut()
        .poll(&mut Context::from_waker(&run_waker))
        .is_pending());
    let (ep, reply) = server_peer
        .recv_wait(Duration::from_secs(5))
        .expect("run() served the request after the ring");
    assert_eq!(
        (ep, reply),
        (Endpoint::Rpc, vec![0x94, 0x01, 0x07, 0xC0, 5])
    );
    // Nothing rang since: neither task wakes itself (no busy loop).
    assert!(!call_flag.0.load(Ordering::SeqCst));
    assert!(!run_flag.0.load(Ordering::SeqCst));
}
