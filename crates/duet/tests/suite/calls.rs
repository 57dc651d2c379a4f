//! Calls between two threads: typed arguments of every arity, errors both ways, nested and
//! crossing calls, deadlines, late replies, capacity, async, large messages, notify, objects,
//! `run()`, deferred replies.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use duet::{Bin, Context, Deferred, Error, Request, Rpc, Stats, DEFAULT_TIMEOUT};
use duet_rpmsg::{Platform, Transport};
use serde::{Deserialize, Serialize};

use super::{block_on, flag, serve, spawn_peer, Harness, Link, Opts, ARDUINO, R};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
struct Point {
    x: i32,
    y: i32,
}

/// Runs `body` on side A against side B serving the standard test functions; B's stats.
fn with_peer<H: Harness>(body: impl FnOnce(&mut R<'_, H::A>)) -> Stats {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let add = |a: i32, b: i32| a + b;
        let upper = |s: String| s.to_uppercase();
        let hlen = |s: heapless::String<16>| s.len() as u32;
        let sum = |ctx: &mut Context<'_>, req: Request<'_>| {
            let r = req
                .args::<(&[u8],)>()
                .map(|(b,)| b.iter().map(|x| u32::from(*x)).sum::<u32>());
            ctx.respond(&r);
        };
        let scale = |p: Point, k: i32| Point {
            x: p.x * k,
            y: p.y * k,
        };
        let eight = |a: u8, b: u16, c: u32, d: u64, e: i8, f: i16, g: i32, h: i64| {
            i64::from(a)
                + i64::from(b)
                + i64::from(c)
                + d as i64
                + i64::from(e)
                + i64::from(f)
                + i64::from(g)
                + h
        };
        let checked = |a: i32| if a < 0 { Err("negative") } else { Ok(a * 10) };
        let nothing = || ();
        // Bytes both ways: a zero-copy `&[u8]` argument, a bin result.
        let rev = |ctx: &mut Context<'_>, req: Request<'_>| {
            let r = req
                .args::<(&[u8],)>()
                .map(|(b,)| b.iter().rev().copied().collect::<Vec<u8>>());
            match &r {
                Ok(v) => ctx.respond(&Bin(v)),
                Err(e) => ctx.respond_error(e),
            }
        };
        let owned_len = |v: Vec<u8>| v.len();
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("add", &add).unwrap();
        rpc.bind("upper", &upper).unwrap();
        rpc.bind("hlen", &hlen).unwrap();
        rpc.bind_handler("sum", &sum).unwrap();
        rpc.bind("scale", &scale).unwrap();
        rpc.bind("eight", &eight).unwrap();
        rpc.bind("checked", &checked).unwrap();
        rpc.bind("nothing", &nothing).unwrap();
        rpc.bind_handler("rev", &rev).unwrap();
        rpc.bind("owned_len", &owned_len).unwrap();
        serve(&mut rpc, stop);
        rpc.stats()
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    body(&mut rpc);
    peer.finish()
}

pub fn typed_arguments_and_results<H: Harness>() {
    with_peer::<H>(|rpc| {
        assert_eq!(rpc.call::<i32, _>("add", (40, 2)), Ok(42));
        assert_eq!(rpc.call::<String, _>("upper", ("abc",)).unwrap(), "ABC");
        assert_eq!(rpc.call::<u32, _>("hlen", ("hello",)), Ok(5));
        assert_eq!(rpc.call::<u32, _>("sum", (Bin(&[1, 2, 3, 250]),)), Ok(256));
        assert_eq!(
            rpc.call::<Point, _>("scale", (Point { x: 2, y: -3 }, 5)),
            Ok(Point { x: 10, y: -15 })
        );
        assert_eq!(
            rpc.call::<i64, _>("eight", (1u8, 2u16, 3u32, 4u64, -5i8, 6i16, 7i32, 8i64)),
            Ok(26)
        );
        assert_eq!(rpc.call::<(), _>("nothing", ()), Ok(()));
        let bytes: Vec<u8> = (0..=255).collect();
        let mut reversed = bytes.clone();
        reversed.reverse();
        assert_eq!(rpc.call::<Vec<u8>, _>("rev", (Bin(&bytes),)), Ok(reversed));
        assert_eq!(rpc.call::<usize, _>("owned_len", (Bin(&bytes),)), Ok(256));
        assert!(matches!(
            rpc.call::<Vec<u8>, _>("rev", (Bin(&bytes), 1)),
            Err(Error::WrongArgCount(_))
        ));
        assert_eq!(rpc.call::<i32, _>("checked", (4,)), Ok(40));
        match rpc.call::<i32, _>("checked", (-1,)) {
            Err(Error::Remote(e)) => assert_eq!(e.text(), Some("negative")),
            r => panic!("{r:?}"),
        }
    });
}

/// Typed handlers of 0 to 8 arguments, each result depending on every argument and its place.
pub fn every_arity<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let f0 = || 0u64;
        let f1 = |a: u64| a;
        let f2 = |a: u64, b: u64| a * 10 + b;
        let f3 = |a: u64, b: u64, c: u64| (a * 10 + b) * 10 + c;
        let f4 = |a: u64, b: u64, c: u64, d: u64| f3(a, b, c) * 10 + d;
        let f5 = |a: u64, b: u64, c: u64, d: u64, e: u64| f4(a, b, c, d) * 10 + e;
        let f6 = |a: u64, b: u64, c: u64, d: u64, e: u64, f: u64| f5(a, b, c, d, e) * 10 + f;
        let f7 =
            |a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64| f6(a, b, c, d, e, f) * 10 + g;
        let f8 = |a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64| {
            f7(a, b, c, d, e, f, g) * 10 + h
        };
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("f0", &f0).unwrap();
        rpc.bind("f1", &f1).unwrap();
        rpc.bind("f2", &f2).unwrap();
        rpc.bind("f3", &f3).unwrap();
        rpc.bind("f4", &f4).unwrap();
        rpc.bind("f5", &f5).unwrap();
        rpc.bind("f6", &f6).unwrap();
        rpc.bind("f7", &f7).unwrap();
        rpc.bind("f8", &f8).unwrap();
        serve(&mut rpc, stop);
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    assert_eq!(rpc.call::<u64, _>("f0", ()), Ok(0));
    assert_eq!(rpc.call::<u64, _>("f1", (1,)), Ok(1));
    assert_eq!(rpc.call::<u64, _>("f2", (1, 2)), Ok(12));
    assert_eq!(rpc.call::<u64, _>("f3", (1, 2, 3)), Ok(123));
    assert_eq!(rpc.call::<u64, _>("f4", (1, 2, 3, 4)), Ok(1234));
    assert_eq!(rpc.call::<u64, _>("f5", (1, 2, 3, 4, 5)), Ok(12345));
    assert_eq!(rpc.call::<u64, _>("f6", (1, 2, 3, 4, 5, 6)), Ok(123456));
    assert_eq!(rpc.call::<u64, _>("f7", (1, 2, 3, 4, 5, 6, 7)), Ok(1234567));
    assert_eq!(
        rpc.call::<u64, _>("f8", (1, 2, 3, 4, 5, 6, 7, 8)),
        Ok(12345678)
    );
    // One argument too many or too few, at both ends of the range.
    match rpc.call::<u64, _>("f8", (1, 2, 3, 4, 5, 6, 7)) {
        Err(Error::WrongArgCount(e)) => {
            assert!(e.text().unwrap().ends_with("Expected: 8, got: 7"), "{e}")
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        rpc.call::<u64, _>("f0", (1,)),
        Err(Error::WrongArgCount(_))
    ));
    peer.finish();
}

pub fn argument_and_result_errors_are_values<H: Harness>() {
    with_peer::<H>(|rpc| {
        match rpc.call::<i32, _>("add", ("x", 1)) {
            Err(Error::WrongArgType(e)) => {
                assert!(e.text().unwrap().contains("'add': argument 1"), "{e}")
            }
            r => panic!("{r:?}"),
        }
        match rpc.call::<i32, _>("add", (1,)) {
            Err(Error::WrongArgCount(e)) => {
                assert!(e.text().unwrap().ends_with("Expected: 2, got: 1"))
            }
            r => panic!("{r:?}"),
        }
        // Zero-copy handler with a wrong type.
        assert!(matches!(
            rpc.call::<u32, _>("sum", (5,)),
            Err(Error::WrongArgType(_))
        ));
        // The result does not decode as the caller's type.
        assert!(matches!(
            rpc.call::<String, _>("add", (1, 2)),
            Err(Error::Decode(_))
        ));
        // Not bound (yet) on the peer.
        match rpc.call::<i32, _>("later", (1, 2)) {
            Err(Error::UnknownMethod(e)) => assert_eq!(
                e.text(),
                Some("rpclib: server could not find function 'later' with argument count 2.")
            ),
            r => panic!("{r:?}"),
        }
        // Everything still works afterwards.
        assert_eq!(rpc.call::<i32, _>("add", (1, 2)), Ok(3));
    });
}

/// Side B calls A with a wrong type (and before A bound the name) while A calls B with a wrong
/// type: both directions get error values, and both sides keep working.
pub fn wrong_types_toward_us_too<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let (a_bound, a_done, b_done) = (flag(), flag(), flag());
    let peer = thread::spawn({
        let (a_bound, a_done, b_done) = (a_bound.clone(), a_done.clone(), b_done.clone());
        move || {
            let neg = |a: i32| -a;
            let mut rpc: R<H::B> = Rpc::new(b);
            rpc.bind("neg", &neg).unwrap();
            let early = rpc.call::<i32, _>("double", (21,));
            serve(&mut rpc, &a_bound);
            let r = rpc.call::<i32, _>("double", (true,));
            let ok = rpc.call::<i32, _>("double", (21,));
            b_done.store(true, Ordering::SeqCst);
            serve(&mut rpc, &a_done);
            (early, r, ok)
        }
    });
    let double = |a: i32| a * 2;
    let mut rpc: R<H::A> = Rpc::new(a);
    // Serve (without "double") until B's first call has been answered.
    while rpc.stats().unknown_requests == 0 {
        rpc.poll().unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    rpc.bind("double", &double).unwrap();
    a_bound.store(true, Ordering::SeqCst);
    assert!(matches!(
        rpc.call::<i32, _>("neg", ("no",)),
        Err(Error::WrongArgType(_))
    ));
    assert_eq!(rpc.call::<i32, _>("neg", (5,)), Ok(-5));
    serve(&mut rpc, &b_done);
    a_done.store(true, Ordering::SeqCst);
    let (early, r, ok) = peer.join().unwrap();
    assert!(matches!(early, Err(Error::UnknownMethod(_))), "{early:?}");
    assert!(matches!(r, Err(Error::WrongArgType(_))), "{r:?}");
    assert_eq!(ok, Ok(42));
}

/// A calls B's `ping`, which calls A's `pong`, which calls B's `leaf`: three levels.
pub fn handler_calls_back_into_the_caller<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let ping = |ctx: &mut Context<'_>, x: i32| -> Result<i32, String> {
            ctx.call::<i32, _>("pong", (x,))
                .map(|v| v + 1)
                .map_err(|e| e.to_string())
        };
        let leaf = |x: i32| x + 100;
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("ping", &ping).unwrap();
        rpc.bind("leaf", &leaf).unwrap();
        serve(&mut rpc, stop);
    });
    let pong = |ctx: &mut Context<'_>, x: i32| ctx.call::<i32, _>("leaf", (x,)).unwrap_or(-1) * 2;
    let mut rpc: R<H::A> = Rpc::new(a);
    rpc.bind("pong", &pong).unwrap();
    assert_eq!(rpc.call::<i32, _>("ping", (5,)), Ok(211));
    assert_eq!(rpc.call::<i32, _>("ping", (0,)), Ok(201));
    peer.finish();
}

/// One side of [`crossing_calls_in_both_directions`]: `n` calls, then serve until the other is done.
fn crossing_side<T: Link>(
    t: T,
    n: i32,
    me: usize,
    start: &Barrier,
    done: &[Arc<AtomicBool>; 2],
) -> i32 {
    let triple = |x: i32| x * 3;
    let mut rpc: R<T> = Rpc::new(t);
    rpc.bind("triple", &triple).unwrap();
    start.wait();
    let mut sum = 0;
    for i in 0..n {
        sum += rpc.call::<i32, _>("triple", (i,)).unwrap();
    }
    done[me].store(true, Ordering::SeqCst);
    serve(&mut rpc, &done[1 - me]);
    sum
}

pub fn crossing_calls_in_both_directions<H: Harness>() {
    const N: i32 = 200;
    let (a, b) = H::pair(ARDUINO);
    let start = Arc::new(Barrier::new(2));
    let done = [flag(), flag()];
    let h1 = thread::spawn({
        let (start, done) = (start.clone(), done.clone());
        move || crossing_side(b, N, 1, &start, &done)
    });
    let s0 = crossing_side(a, N, 0, &start, &done);
    let s1 = h1.join().unwrap();
    let expect: i32 = (0..N).map(|i| i * 3).sum();
    assert_eq!((s0, s1), (expect, expect));
}

/// A peer that stops polling: the default (finite), global and per-call deadlines all end in
/// `Timeout`; once it polls again, the stale replies are dropped and counted.
pub fn deadlines_default_global_per_call<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let go = flag();
    let peer = spawn_peer(b, {
        let go = go.clone();
        move |b, stop| {
            let echo = |x: i32| x;
            let mut rpc: R<H::B> = Rpc::new(b);
            rpc.bind("echo", &echo).unwrap();
            while !go.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(2));
            }
            serve(&mut rpc, stop);
        }
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    assert_eq!(rpc.timeout(), DEFAULT_TIMEOUT);
    assert_eq!(rpc.call::<i32, _>("echo", (1,)), Err(Error::Timeout));
    rpc.set_timeout(Duration::from_millis(30));
    assert_eq!(rpc.timeout(), Duration::from_millis(30));
    assert_eq!(rpc.call::<i32, _>("echo", (2,)), Err(Error::Timeout));
    assert_eq!(
        rpc.call_with_timeout::<i32, _>("echo", (3,), Duration::from_millis(20)),
        Err(Error::Timeout)
    );
    let deadline = rpc
        .context()
        .now()
        .saturating_add(Duration::from_millis(20));
    assert_eq!(
        rpc.call_until::<i32, _>("echo", (4,), deadline),
        Err(Error::Timeout)
    );
    assert_eq!(rpc.stats().expired_calls, 4);
    go.store(true, Ordering::SeqCst);
    // The four stale requests are answered first; their replies must not reach this call.
    assert_eq!(
        rpc.call_with_timeout::<i32, _>("echo", (5,), Duration::from_secs(10)),
        Ok(5)
    );
    assert_eq!(rpc.stats().late_replies, 4);
    peer.finish();
}

pub fn late_reply_is_dropped_and_next_call_unharmed<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let slow = || {
            thread::sleep(Duration::from_millis(300));
            1
        };
        let fast = || 2;
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("slow", &slow).unwrap();
        rpc.bind("fast", &fast).unwrap();
        serve(&mut rpc, stop);
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    assert_eq!(
        rpc.call_with_timeout::<i32, _>("slow", (), Duration::from_millis(50)),
        Err(Error::Timeout)
    );
    assert_eq!(
        rpc.call_with_timeout::<i32, _>("fast", (), Duration::from_secs(10)),
        Ok(2)
    );
    assert_eq!(rpc.stats().late_replies, 1);
    peer.finish();
}

pub fn more_calls_than_capacity_fail_cleanly<H: Harness>() {
    type Two<'a, T> = Rpc<'a, T, 4, 2, 2048, 512, 1024>;
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let sq = |x: i32| x * x;
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("sq", &sq).unwrap();
        serve(&mut rpc, stop);
    });
    let mut rpc: Two<H::A> = Rpc::new(a);
    let p1 = rpc.call_async::<i32, _>("sq", (3,)).unwrap();
    let p2 = rpc.call_async::<i32, _>("sq", (4,)).unwrap();
    assert_eq!(
        rpc.call_async::<i32, _>("sq", (5,)).unwrap_err(),
        Error::TooManyCalls
    );
    assert_eq!(rpc.call::<i32, _>("sq", (5,)), Err(Error::TooManyCalls));
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(10));
    // Joined in reverse order: each gets its own reply.
    assert_eq!(rpc.join(p2, deadline), Ok(16));
    assert_eq!(rpc.join(p1, deadline), Ok(9));
    assert_eq!(rpc.call::<i32, _>("sq", (6,)), Ok(36));
    peer.finish();
}

pub fn call_async_poll_join_and_future<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let add = |a: i32, b: i32| a + b;
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("add", &add).unwrap();
        serve(&mut rpc, stop);
    });
    let bell = a.doorbell();
    let mut rpc: R<H::A> = Rpc::new(a);
    if let Some(bell) = &bell {
        rpc.set_doorbell(bell);
    }
    // Non-blocking poll loop.
    let p = rpc.call_async::<i32, _>("add", (1, 1)).unwrap();
    let v = loop {
        if let std::task::Poll::Ready(v) = rpc.poll_pending(&p) {
            break v;
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(v, Ok(2));
    // Future (woken by the doorbell where there is one); two in flight.
    let p1 = rpc.call_async::<i32, _>("add", (2, 3)).unwrap();
    let p2 = rpc.call_async::<i32, _>("add", (10, 20)).unwrap();
    let (r2, r1) = block_on(async {
        let r2 = rpc.wait(p2).await;
        let r1 = rpc.wait(p1).await;
        (r2, r1)
    });
    assert_eq!((r1, r2), (Ok(5), Ok(30)));
    // join with a deadline.
    let p = rpc.call_async::<i32, _>("add", (7, 8)).unwrap();
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(10));
    assert_eq!(rpc.join(p, deadline), Ok(15));
    // A future or a join whose peer never answers completes with Timeout.
    rpc.set_timeout(Duration::from_millis(50));
    peer.finish();
    let p = rpc.call_async::<i32, _>("add", (1, 2)).unwrap();
    assert_eq!(block_on(rpc.wait(p)), Err(Error::Timeout));
    let p = rpc.call_async::<i32, _>("add", (1, 2)).unwrap();
    let deadline = rpc
        .context()
        .now()
        .saturating_add(Duration::from_millis(30));
    assert_eq!(rpc.join(p, deadline), Err(Error::Timeout));
}

type Big<'a, T> = Rpc<'a, T, 4, 2, 4096, 2048, 1024>;

/// Multi-buffer messages (max 4096 on both sides): large results and arguments, and a result
/// over the caller's reply slot is an error value.
pub fn result_larger_than_one_buffer<H: Harness>() {
    let (a, b) = H::pair(Opts {
        max_message_len: 4096,
        ..ARDUINO
    });
    let peer = spawn_peer(b, move |b, stop| {
        let big = |n: usize| "abcdefghij".repeat(n / 10);
        let echo = |v: Vec<u32>| v.iter().sum::<u32>();
        let mut rpc: Big<H::B> = Rpc::new(b);
        rpc.bind("big", &big).unwrap();
        rpc.bind("echo", &echo).unwrap();
        let before = rpc.transport().buffers_sent();
        serve(&mut rpc, stop);
        rpc.transport().buffers_sent() - before
    });
    let mut rpc: Big<H::A> = Rpc::new(a);
    let s = rpc.call::<String, _>("big", (1500usize,)).unwrap();
    assert_eq!(s.len(), 1500);
    assert_eq!(s, "abcdefghij".repeat(150));
    // Large arguments too (200 u32 values of 5 bytes each).
    let v: Vec<u32> = (100_000..100_200).collect();
    assert_eq!(rpc.call::<u32, _>("echo", (v.clone(),)), Ok(v.iter().sum()));
    // A result over the call slot's 2048 bytes is an error, not corruption.
    assert!(matches!(
        rpc.call::<String, _>("big", (3000usize,)),
        Err(Error::MessageTooLarge { .. })
    ));
    assert_eq!(
        rpc.call::<String, _>("big", (10usize,)).unwrap(),
        "abcdefghij"
    );
    let sent = peer.finish();
    assert_eq!(
        sent,
        4 + 1 + 7 + 1,
        "results of 1500 and 3000 bytes span 4 and 7 buffers"
    );
}

/// Outgoing messages over the transport's limit fail with `MessageTooLarge`, nothing sent.
pub fn too_large_to_send<H: Harness>() {
    with_peer::<H>(|rpc| {
        let long = "x".repeat(600);
        match rpc.call::<u32, _>("hlen", (long.as_str(),)) {
            Err(Error::MessageTooLarge { len, max }) => {
                assert!(len > 600 && max == 496, "{len} {max}")
            }
            r => panic!("{r:?}"),
        }
        assert!(matches!(
            rpc.notify("hlen", (long.as_str(),)),
            Err(Error::MessageTooLarge { .. })
        ));
        assert!(matches!(
            rpc.call_async::<u32, _>("hlen", (long.as_str(),)),
            Err(Error::MessageTooLarge { .. })
        ));
        // Over the engine's own 2048-byte buffer as well.
        let longer = "y".repeat(3000);
        assert!(matches!(
            rpc.call::<u32, _>("hlen", (longer.as_str(),)),
            Err(Error::MessageTooLarge { .. })
        ));
        // Nothing half-sent: the next call works and sees a clean stream.
        assert_eq!(rpc.call::<u32, _>("hlen", ("short",)), Ok(5));
    });
}

pub fn notify_and_ignored_notifications<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let seen = RefCell::new(Vec::<String>::new());
        let log = |ctx: &mut Context<'_>, req: Request<'_>| {
            assert!(req.msgid().is_none());
            if let Ok((s,)) = req.args::<(&str,)>() {
                seen.borrow_mut().push(s.to_string());
            }
            ctx.respond(&()); // ignored for a notification
        };
        let count = || seen.borrow().len();
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind_handler("log", &log).unwrap();
        rpc.bind("count", &count).unwrap();
        serve(&mut rpc, stop);
        let out = seen.borrow().clone();
        (rpc.stats(), out)
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    rpc.notify("log", ("one",)).unwrap();
    rpc.notify("log", ("two",)).unwrap();
    rpc.notify("nobody", (1, 2)).unwrap();
    assert_eq!(rpc.call::<usize, _>("count", ()), Ok(2));
    let (stats, seen) = peer.finish();
    assert_eq!(seen, ["one", "two"]);
    assert_eq!(stats.ignored_notifications, 1);
    assert_eq!(
        rpc.stats().late_replies,
        0,
        "no reply was sent to a notification"
    );
}

struct Counter {
    n: Cell<i32>,
}

impl Counter {
    fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }
    fn bump(&self) -> i32 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }
    fn set(&self, v: i32) -> Result<(), &'static str> {
        if v < 0 {
            return Err("must be >= 0");
        }
        self.n.set(v);
        Ok(())
    }
}

duet::object!(Counter { add(a: i32, b: i32), bump(), set(v: i32) });

pub fn bound_objects<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let foo1 = Counter { n: Cell::new(0) };
        let foo2 = Counter { n: Cell::new(100) };
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind_object("foo1", &foo1).unwrap();
        rpc.bind_object("foo2", &foo2).unwrap();
        serve(&mut rpc, stop);
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    assert_eq!(rpc.call::<i32, _>("foo1.add", (2, 3)), Ok(5));
    assert_eq!(rpc.call::<i32, _>("foo1.bump", ()), Ok(1));
    assert_eq!(rpc.call::<i32, _>("foo1.bump", ()), Ok(2));
    assert_eq!(rpc.call::<i32, _>("foo2.bump", ()), Ok(101));
    assert_eq!(rpc.call::<(), _>("foo2.set", (7,)), Ok(()));
    assert_eq!(rpc.call::<i32, _>("foo2.bump", ()), Ok(8));
    assert!(matches!(
        rpc.call::<(), _>("foo2.set", (-7,)),
        Err(Error::Remote(_))
    ));
    assert!(matches!(
        rpc.call::<i32, _>("foo1.nope", ()),
        Err(Error::UnknownMethod(_))
    ));
    assert!(matches!(
        rpc.call::<i32, _>("foo1", ()),
        Err(Error::UnknownMethod(_))
    ));
    assert!(matches!(
        rpc.call::<i32, _>("foo1.add", (1,)),
        Err(Error::WrongArgCount(_))
    ));
    assert!(matches!(
        rpc.call::<i32, _>("foo1.add", (1, "two")),
        Err(Error::WrongArgType(_))
    ));
    peer.finish();
}

/// B serves with the `run()` future, parked between polls: only a doorbell ring (or the stop)
/// wakes it.
pub fn run_serves_with_the_doorbell<H: Harness>() {
    use std::future::Future;
    use std::task::{Context as TaskCx, Poll, Wake, Waker};
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        struct Unpark(thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let bell = b.doorbell().expect("both transports have a doorbell");
        let add = |a: i32, b: i32| a + b;
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.set_doorbell(&bell);
        rpc.bind("add", &add).unwrap();
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = TaskCx::from_waker(&waker);
        let mut run = std::pin::pin!(rpc.run());
        let mut polls = 0u32;
        while !stop.load(Ordering::SeqCst) {
            polls += 1;
            assert!(matches!(run.as_mut().poll(&mut cx), Poll::Pending));
            // Long park: only a doorbell ring (or the stop) should wake it.
            thread::park_timeout(Duration::from_secs(5));
        }
        polls
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    for i in 0..20 {
        assert_eq!(rpc.call::<i32, _>("add", (i, 1)), Ok(i + 1));
    }
    assert!(peer.finish() >= 2);
}

/// B's `slow` defers its reply (the "motor move") until B has served three `fast` calls from
/// the same caller; a negative argument makes the deferred answer an error. Under synchronous
/// handlers the fast calls could never be served and everything would time out.
pub fn deferred_reply_lets_other_calls_pass<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let parked = RefCell::new(None::<(Deferred, i32)>);
        let fast_served = Cell::new(0);
        let deferred_ids = RefCell::new(Vec::new());
        let slow = |ctx: &mut Context<'_>, x: i32| {
            let d = ctx.defer().expect("a request can be deferred");
            assert!(ctx.defer().is_none(), "a request is deferred at most once");
            deferred_ids.borrow_mut().push(d.msgid().value());
            *parked.borrow_mut() = Some((d, x));
        };
        let fast = |x: i32| {
            fast_served.set(fast_served.get() + 1);
            x + 1
        };
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind("slow", &slow).unwrap();
        rpc.bind("fast", &fast).unwrap();
        while !stop.load(Ordering::SeqCst) {
            let _ = rpc.poll();
            if fast_served.get() >= 3 {
                if let Some((d, x)) = parked.borrow_mut().take() {
                    fast_served.set(0);
                    if x < 0 {
                        rpc.respond_error(d, "motor stalled").unwrap();
                    } else {
                        rpc.respond(d, &(x * 100)).unwrap();
                    }
                }
            }
            let p = rpc.transport().platform();
            p.wait(p.now().saturating_add(Duration::from_millis(5)));
        }
        deferred_ids.into_inner()
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(10));
    let mut order = Vec::new();
    let p1 = rpc.call_async::<i32, _>("slow", (7,)).unwrap();
    for i in 0..3 {
        assert_eq!(rpc.call::<i32, _>("fast", (i,)), Ok(i + 1));
        order.push(format!("fast {i}"));
        if i < 2 {
            // B answers only after the third fast call.
            assert!(rpc.poll_pending(&p1).is_pending());
        }
    }
    let id1 = p1.msgid();
    assert_eq!(rpc.join(p1, deadline), Ok(700));
    order.push("slow".into());
    assert_eq!(order, ["fast 0", "fast 1", "fast 2", "slow"]);
    // A deferred error reply.
    let p2 = rpc.call_async::<i32, _>("slow", (-1,)).unwrap();
    let id2 = p2.msgid();
    for i in 10..13 {
        assert_eq!(rpc.call::<i32, _>("fast", (i,)), Ok(i + 1));
    }
    match rpc.join(p2, deadline) {
        Err(Error::Remote(e)) => assert_eq!(e.text(), Some("motor stalled")),
        r => panic!("{r:?}"),
    }
    let stats = rpc.stats();
    assert_eq!((stats.late_replies, stats.expired_calls), (0, 0));
    let ids = peer.finish();
    assert_eq!(ids, [i64::from(id1), i64::from(id2)]);
}

/// A deferred request answered from another handler's context (`release`), before that
/// handler's own reply.
pub fn deferred_answered_by_another_handler<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let parked = RefCell::new(None::<Deferred>);
        let park = |ctx: &mut Context<'_>, req: Request<'_>| {
            *parked.borrow_mut() = ctx.defer();
            assert!(req.msgid().is_some());
        };
        let release = |ctx: &mut Context<'_>, v: String| match parked.borrow_mut().take() {
            Some(d) => ctx.respond_deferred(d, &v).is_ok(),
            None => false,
        };
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind_handler("park", &park).unwrap();
        rpc.bind("release", &release).unwrap();
        serve(&mut rpc, stop);
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    let deadline = rpc.context().now().saturating_add(Duration::from_secs(10));
    let p = rpc.call_async::<String, _>("park", ()).unwrap();
    assert_eq!(rpc.call::<bool, _>("release", ("done",)), Ok(true));
    assert_eq!(rpc.join(p, deadline).as_deref(), Ok("done"));
    assert_eq!(rpc.call::<bool, _>("release", ("again",)), Ok(false));
    assert_eq!(rpc.stats().late_replies, 0);
    peer.finish();
}

/// A dropped token: no reply, the caller times out and its next call works. A notification
/// and an answered request cannot be deferred.
pub fn dropped_deferred_times_out_and_notifications_cannot_defer<H: Harness>() {
    let (a, b) = H::pair(ARDUINO);
    let peer = spawn_peer(b, move |b, stop| {
        let checks = RefCell::new(Vec::new());
        // The token is dropped unanswered.
        let forget = |ctx: &mut Context<'_>, _: Request<'_>| assert!(ctx.defer().is_some());
        let note = |ctx: &mut Context<'_>, _: Request<'_>| {
            checks.borrow_mut().push(("note", ctx.defer().is_none()));
        };
        let answered = |ctx: &mut Context<'_>, _: Request<'_>| {
            ctx.respond(&5);
            checks
                .borrow_mut()
                .push(("answered", ctx.defer().is_none()));
        };
        let add = |a: i32, b: i32| a + b;
        let mut rpc: R<H::B> = Rpc::new(b);
        rpc.bind_handler("forget", &forget).unwrap();
        rpc.bind_handler("note", &note).unwrap();
        rpc.bind_handler("answered", &answered).unwrap();
        rpc.bind("add", &add).unwrap();
        serve(&mut rpc, stop);
        checks.into_inner()
    });
    let mut rpc: R<H::A> = Rpc::new(a);
    assert_eq!(
        rpc.call_with_timeout::<i32, _>("forget", (), Duration::from_millis(100)),
        Err(Error::Timeout)
    );
    assert_eq!(rpc.call::<i32, _>("add", (2, 3)), Ok(5));
    rpc.notify("note", ()).unwrap();
    assert_eq!(rpc.call::<i32, _>("answered", ()), Ok(5));
    let stats = rpc.stats();
    assert_eq!((stats.expired_calls, stats.late_replies), (1, 0));
    assert_eq!(peer.finish(), [("note", true), ("answered", true)]);
}

/// The counters of `stats()`: traffic per endpoint agrees on both sides byte for byte, every
/// call ends in exactly one outcome, high-water marks and doorbells follow what was sent.
pub fn counters_count_traffic_calls_and_high_water<H: Harness>() {
    let mut mine = None;
    let theirs = with_peer::<H>(|rpc| {
        assert_eq!(rpc.call::<i32, _>("add", (2, 3)), Ok(5));
        assert!(matches!(
            rpc.call::<i32, _>("nope", ()),
            Err(Error::UnknownMethod(_))
        ));
        assert!(matches!(
            rpc.call::<i32, _>("add", ("x", 1)),
            Err(Error::WrongArgType(_))
        ));
        assert!(matches!(
            rpc.call::<String, _>("add", (1, 1)),
            Err(Error::Decode(_))
        ));
        // Its reply comes late (counted there, not as a completed call).
        assert_eq!(
            rpc.call_with_timeout::<i32, _>("add", (1, 2), Duration::ZERO),
            Err(Error::Timeout)
        );
        let p1 = rpc.call_async::<i32, _>("add", (1, 1)).unwrap();
        let p2 = rpc.call_async::<i32, _>("add", (2, 2)).unwrap();
        let d = rpc.context().now().saturating_add(Duration::from_secs(10));
        assert_eq!(rpc.join(p2, d), Ok(4));
        assert_eq!(rpc.join(p1, d), Ok(2));
        rpc.notify("ignored", (1,)).unwrap();
        // The last exchange: the peer has handled everything before it once it answers.
        assert_eq!(rpc.call::<(), _>("nothing", ()), Ok(()));
        mine = Some(rpc.stats());
    });
    let mine = mine.expect("body ran");
    let rpc = duet::Endpoint::Rpc as usize;
    // 8 requests and 1 notification went out; 8 responses came back (one of them late).
    assert_eq!(mine.sent[rpc].messages, 9);
    assert_eq!(theirs.received[rpc].messages, 9);
    assert_eq!(theirs.sent[rpc].messages, 8);
    assert_eq!(mine.received[rpc].messages, 8);
    assert_eq!(mine.sent[rpc].bytes, theirs.received[rpc].bytes);
    assert_eq!(theirs.sent[rpc].bytes, mine.received[rpc].bytes);
    assert!(mine.sent[rpc].bytes > 9 * 6, "{mine:?}");
    assert_eq!(mine.sent[0], duet::Traffic::default(), "nothing on raw");
    assert_eq!(
        mine.calls,
        duet::CallStats {
            completed: 4,
            remote_error: 2,
            timeout: 1,
            peer_reset: 0,
            refused: 0,
            bad_result: 1,
        }
    );
    assert_eq!(mine.calls.failed(), 4);
    assert_eq!(
        theirs.calls,
        duet::CallStats::default(),
        "the peer made no calls"
    );
    assert_eq!(mine.late_replies, 1);
    assert_eq!(theirs.unknown_requests, 1);
    assert_eq!(theirs.ignored_notifications, 1);
    assert_eq!(mine.high_water.calls_in_flight, 2);
    assert!(mine.high_water.tx_bytes >= 10, "{mine:?}");
    assert!(mine.high_water.tx_bytes as usize <= 2048);
    assert!(theirs.high_water.rx_bytes >= 10, "{theirs:?}");
    assert_eq!(mine.doorbells_rung, 9);
    assert_eq!(theirs.doorbells_rung, 8);
    // A wake needs a ring; the peer's transport also rings for its two handshake messages
    // (name-service announcements or first bytes), which its engine does not count.
    assert!(
        mine.doorbells_received <= theirs.doorbells_rung + 2,
        "{mine:?}"
    );
}
