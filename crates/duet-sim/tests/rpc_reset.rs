//! Peer reset on the simulator: the M7 re-initialises the shared memory (`Rpc::reset` with
//! `Host::begin_reset` + `Host::reinit`) while calls are pending in both directions.
//!
//! The M7 holds the reset (`DRIVER_OK` clear) until the M4 has polled (here: until its pending
//! call has failed), as duet-rpmsg asks of a host on another core; only then does it re-lay
//! the rings.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use duet::{Context, Deferred, Endpoint, Error, Request, Rpc, Transport};
use duet_rpmsg::Platform;
use duet_sim::machine::{run_pair_with, sim_config, M4Rpc, M7Rpc};

const LONG: Duration = Duration::from_secs(10);

/// Polls `rpc` until `done()` or 10 s (then panics with `what`).
fn poll_until<T: Transport>(rpc: &mut Rpc<'_, T>, what: &str, done: impl Fn() -> bool) {
    let deadline = rpc.context().now().saturating_add(LONG);
    while !done() {
        let _ = rpc.poll();
        let p = rpc.transport().platform();
        let now = p.now();
        assert!(now < deadline, "timed out waiting for: {what}");
        p.wait(now.saturating_add(Duration::from_millis(2)));
    }
}

/// The M4 calls `hold` on the M7 (which defers it) and the M7 calls `slow` on the M4 (which
/// defers it); then the M7 resets. Both pending calls end in `PeerReset`, both stale tokens
/// are refused, a stale reply sent raw by the M4 after the re-handshake reaches no call, and
/// calls work again both ways.
#[test]
fn reset_fails_pending_calls_both_ways_and_calls_work_again() {
    let config = sim_config();
    let m4_parked = AtomicBool::new(false);
    let m4_saw_reset = AtomicBool::new(false);
    let m4_calls_done = AtomicBool::new(false);
    let m7_done = AtomicBool::new(false);
    let (m7, m4) = run_pair_with(
        config,
        |t| {
            let held = RefCell::new(None::<Deferred>);
            let hold = |ctx: &mut Context<'_>, _: Request<'_>| *held.borrow_mut() = ctx.defer();
            let add = |a: i32, b: i32| a + b;
            let mut rpc: M7Rpc<'_> = Rpc::new(t);
            rpc.bind_handler("hold", &hold).unwrap();
            rpc.bind("add", &add).unwrap();
            poll_until(&mut rpc, "the M4's call to hold", || {
                held.borrow().is_some()
            });
            let p = rpc.call_async::<i32, _>("slow", (1,)).unwrap();
            let old_id = p.msgid();
            poll_until(&mut rpc, "the M4 to park slow", || {
                m4_parked.load(Ordering::SeqCst)
            });
            rpc.reset(|t| {
                t.begin_reset()?;
                let deadline = t.platform().now().saturating_add(LONG);
                while !m4_saw_reset.load(Ordering::SeqCst) {
                    if t.platform().now() >= deadline {
                        return Err(duet_rpmsg::Error::Timeout);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                t.reinit()
            })
            .unwrap();
            let deadline = rpc.context().now().saturating_add(LONG);
            let pending = rpc.join(p, deadline);
            let stale = rpc.respond(held.take().unwrap(), &0);
            rpc.wait_ready(deadline).unwrap();
            // Serve the M4's stale raw reply and its call, then call the M4.
            poll_until(&mut rpc, "the M4's calls after the reset", || {
                m4_calls_done.load(Ordering::SeqCst)
            });
            let p = rpc.call_async::<i32, _>("add", (40, 2)).unwrap();
            let new_id = p.msgid();
            let after = rpc.join(p, deadline);
            m7_done.store(true, Ordering::SeqCst);
            (pending, stale, after, old_id < new_id, rpc.stats())
        },
        |t| {
            let parked = RefCell::new(None::<Deferred>);
            let slow = |ctx: &mut Context<'_>, _: i32| {
                *parked.borrow_mut() = ctx.defer();
                m4_parked.store(true, Ordering::SeqCst);
            };
            let add = |a: i32, b: i32| a + b;
            let mut rpc: M4Rpc<'_> = Rpc::new(t);
            rpc.bind("slow", &slow).unwrap();
            rpc.bind("add", &add).unwrap();
            // Pending (and serving the M7's `slow`) when the M7 resets.
            let pending = rpc.call_with_timeout::<i32, _>("hold", (), LONG);
            m4_saw_reset.store(true, Ordering::SeqCst);
            let token = parked.take().unwrap();
            let old_id = token.msgid();
            let stale = rpc.respond(token, &99);
            let deadline = rpc.context().now().saturating_add(LONG);
            rpc.wait_ready(deadline).unwrap();
            // A peer that answers a pre-reset request anyway (as a raw reply): dropped by the M7.
            let mut buf = [0u8; 32];
            let n = duet_codec::rpc::encode_response(&mut buf, old_id, None::<&str>, &99).unwrap();
            rpc.transport_mut()
                .try_send(Endpoint::Rpc, &buf[..n])
                .unwrap();
            let after = rpc.call::<i32, _>("add", (2, 3));
            m4_calls_done.store(true, Ordering::SeqCst);
            poll_until(&mut rpc, "the M7 to finish", || {
                m7_done.load(Ordering::SeqCst)
            });
            (pending, stale, after, rpc.transport().stats().peer_resets)
        },
    );
    let (pending, stale, after, ids_grow, stats) = m7;
    assert_eq!(pending, Err(Error::PeerReset), "the M7's call to the M4");
    assert_eq!(stale, Err(Error::PeerReset), "the M7's pre-reset token");
    assert_eq!(after, Ok(42));
    assert!(ids_grow, "msgids continue across the reset");
    assert_eq!(stats.late_replies, 1, "the stale reply matched no call");
    let (pending, stale, after, resets) = m4;
    assert_eq!(pending, Err(Error::PeerReset), "the M4's call to the M7");
    assert_eq!(stale, Err(Error::PeerReset), "the M4's pre-reset token");
    assert_eq!(after, Ok(5));
    assert_eq!(resets, 1);
}
