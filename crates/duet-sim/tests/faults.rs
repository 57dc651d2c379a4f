//! Fault injection on the simulator (`duet_sim::faults`): doorbells dropped, delayed and
//! duplicated; a peer that stops consuming; a core halted mid-call and restarted (M4 and M7).
//! The soak workload on a chip with doorbell faults is here too.
//!
//! Every call has a deadline and every test checks that it ends in the expected result or
//! error; a call that hung would hang the test (and fail CI's time limit).

// `duet::Error` carries the peer's error text inline, by design (see duet's crate root).
#![allow(clippy::result_large_err)]

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use duet::{Context, CpuId, Deferred, Error, Request, Rpc, SerialError, Transport};
use duet_rpmsg::{connect, Host, Platform, Remote};
use duet_sim::faults::{start_host, DoorbellFaults, Faults};
use duet_sim::machine::{sim_config, CORE_STACK};
use duet_sim::soak::{self, SoakConfig};
use duet_sim::{SimChip, SimPlatform};

const LONG: Duration = Duration::from_secs(10);

fn small_soak() -> SoakConfig {
    SoakConfig {
        calls: 300,
        stream_bytes: 64 << 10,
        ..SoakConfig::short()
    }
}

/// The soak workload (calls both ways, the stream both ways, all checked) on a chip whose
/// doorbells are all dropped, then on one whose doorbells are often delayed and duplicated:
/// nothing is lost, nothing fails (a doorbell is only a hint: every wait is sliced).
#[test]
fn doorbells_dropped_delayed_or_duplicated_lose_nothing() {
    for (name, d) in [
        (
            "all dropped",
            DoorbellFaults {
                drop: 1.0,
                ..Default::default()
            },
        ),
        (
            "half delayed up to 5 ms, half duplicated, a tenth dropped",
            DoorbellFaults {
                drop: 0.1,
                delay: 0.5,
                max_delay: Duration::from_millis(5),
                duplicate: 0.5,
            },
        ),
    ] {
        let chip = SimChip::new(Faults::new(5));
        chip.faults().set_doorbells(d);
        let report = soak::run_on(
            chip.core(CpuId::Cm7),
            chip.core(CpuId::Cm4),
            sim_config(),
            &small_soak(),
        )
        .unwrap();
        println!("{name}: {report}\n{:?}", chip.faults().counts());
        report.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = chip.faults().counts();
        assert!(c.rings > 0);
        if d.drop == 1.0 {
            assert_eq!(c.dropped, c.rings, "every ring was dropped");
        } else {
            assert!(c.delayed > 0 && c.duplicated > 0 && c.dropped > 0);
        }
    }
}

/// Runs `m7` and `m4` on two threads of `chip`, each with a connected transport.
fn run_pair<A: Send, B: Send>(
    chip: &SimChip,
    m7: impl FnOnce(Host<SimPlatform>) -> A + Send,
    m4: impl FnOnce(Remote<SimPlatform>) -> B + Send,
) -> (A, B) {
    let (p7, p4) = (chip.core(CpuId::Cm7), chip.core(CpuId::Cm4));
    thread::scope(|s| {
        let b = thread::Builder::new()
            .stack_size(CORE_STACK)
            .spawn_scoped(s, move || {
                let mut t = Remote::new(p4, sim_config());
                let deadline = t.platform().now().saturating_add(LONG);
                connect(&mut t, deadline).unwrap();
                m4(t)
            })
            .unwrap();
        let a = thread::Builder::new()
            .stack_size(CORE_STACK)
            .spawn_scoped(s, move || {
                let mut t = Host::new(p7, sim_config()).unwrap();
                let deadline = t.platform().now().saturating_add(LONG);
                connect(&mut t, deadline).unwrap();
                m7(t)
            })
            .unwrap();
        (a.join().unwrap(), b.join().unwrap())
    })
}

/// Polls `rpc` (sleeping 1 ms between polls) until `done()`; panics after 10 s.
fn serve_until<T: Transport>(rpc: &mut Rpc<'_, T>, what: &str, done: impl Fn() -> bool) {
    let deadline = rpc.context().now().saturating_add(LONG);
    while !done() {
        let _ = rpc.poll();
        let p = rpc.transport().platform();
        let now = p.now();
        assert!(now < deadline, "timed out waiting for: {what}");
        p.wait(now.saturating_add(Duration::from_millis(1)));
    }
}

/// Byte `i` of the test stream (period 251, so a lost or repeated buffer shows).
fn stream_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// The M4 stops polling (it stops consuming) while the M7 calls it and writes 64 KiB to the
/// stream. Calls end in `Timeout` at their deadline; the stream's writes stop with
/// `SerialError::Timeout` once every transport buffer is taken (backpressure: nothing is
/// dropped, the unsent bytes stay with the writer). When the M4 polls again, every byte arrives
/// in order, calls work again and every buffer comes back.
#[test]
fn a_peer_that_stops_consuming_gets_backpressure_and_loses_nothing() {
    const TOTAL: usize = 64 << 10;
    let chip = SimChip::new(Faults::new(1));
    let stalled = AtomicBool::new(false);
    let resume = AtomicBool::new(false);
    let m7_done = AtomicBool::new(false);
    let (m7, m4) = run_pair(
        &chip,
        |t| {
            let mut rpc: Rpc<'_, _> = Rpc::new(t);
            rpc.set_timeout(Duration::from_millis(100));
            assert_eq!(rpc.call::<i32, _>("add", (1, 2)), Ok(3));
            serve_until(&mut rpc, "the M4 to stop", || {
                stalled.load(Ordering::SeqCst)
            });
            // Calls while the M4 consumes nothing: each times out (its request may still be
            // in the M4's ring; answered late, it is dropped).
            let stalled_calls: Vec<_> = (0..3).map(|i| rpc.call::<i32, _>("add", (i, i))).collect();
            // The stream: write until backpressure stops it.
            let mut sent = 0;
            let refused = {
                let mut s = rpc.serial();
                s.set_timeout(Duration::from_millis(50));
                loop {
                    let chunk: Vec<u8> = (sent..(sent + 300).min(TOTAL)).map(stream_byte).collect();
                    match embedded_io::Write::write(&mut s, &chunk) {
                        Ok(n) => sent += n,
                        Err(e) => break e,
                    }
                }
            };
            let free = rpc.transport_mut().free_tx_buffers().unwrap();
            let no_buffer = rpc.transport().stats().no_buffer;
            resume.store(true, Ordering::SeqCst);
            // The rest of the stream, and the flush, now that the M4 reads again.
            {
                let mut s = rpc.serial();
                s.set_timeout(LONG);
                while sent < TOTAL {
                    let chunk: Vec<u8> = (sent..(sent + 300).min(TOTAL)).map(stream_byte).collect();
                    sent += embedded_io::Write::write(&mut s, &chunk).unwrap();
                }
                embedded_io::Write::flush(&mut s).unwrap();
            }
            rpc.set_timeout(LONG);
            let after = rpc.call::<i32, _>("add", (40, 2));
            m7_done.store(true, Ordering::SeqCst);
            (stalled_calls, refused, free, no_buffer, after, rpc.stats())
        },
        |t| {
            let served = Cell::new(0);
            let add = |a: i32, b: i32| {
                served.set(served.get() + 1);
                a + b
            };
            let mut rpc: Rpc<'_, _> = Rpc::new(t);
            rpc.bind("add", &add).unwrap();
            serve_until(&mut rpc, "the first call", || served.get() == 1);
            // A little longer, so the buffers of that exchange come back; then stop.
            let until = std::time::Instant::now() + Duration::from_millis(20);
            serve_until(&mut rpc, "a short while", || {
                std::time::Instant::now() >= until
            });
            stalled.store(true, Ordering::SeqCst);
            // Stop consuming: no poll at all until told.
            while !resume.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
            let mut got = Vec::with_capacity(TOTAL);
            {
                let mut s = rpc.serial();
                s.set_timeout(LONG);
                let mut buf = [0u8; 700];
                while got.len() < TOTAL {
                    let n = embedded_io::Read::read(&mut s, &mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
            }
            serve_until(&mut rpc, "the M7 to finish", || {
                m7_done.load(Ordering::SeqCst)
            });
            // Give the last buffers back before the M7 counts them.
            for _ in 0..10 {
                let _ = rpc.poll();
            }
            (got, rpc.transport_mut().free_tx_buffers().unwrap())
        },
    );
    let (stalled_calls, refused, free, no_buffer, after, stats) = m7;
    assert!(
        stalled_calls.iter().all(|r| *r == Err(Error::Timeout)),
        "{stalled_calls:?}"
    );
    assert_eq!(refused, SerialError::Timeout);
    assert_eq!(free, 0, "the stream took every transmit buffer");
    assert!(no_buffer > 0);
    assert_eq!(after, Ok(42));
    let (got, _) = m4;
    assert_eq!(got.len(), TOTAL);
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == stream_byte(i)),
        "the stream arrived intact and in order"
    );
    assert_eq!(stats.serial_dropped, 0);
    // The stalled calls' requests were answered once the M4 ran again: late, dropped.
    assert_eq!(stats.late_replies, 3);
}

/// The M4 is halted in the middle of serving a call (its handler deferred the answer) while
/// its own call to the M7 is pending; the M7 then resets the link and boots a fresh M4 program
/// on the same chip. The M7's pending call fails with `PeerReset`; the new M4 handshakes and
/// calls work both ways again; every buffer comes back.
#[test]
fn m4_halted_mid_call_and_restarted_by_the_m7() {
    let chip = SimChip::new(Faults::new(2));
    let first = chip.core(CpuId::Cm4);
    let halt = first.halt_switch().unwrap();
    let in_slow = AtomicBool::new(false);
    let m4_calls = AtomicU32::new(0);
    let done = AtomicBool::new(false);
    let m4_program = |p: SimPlatform, generation: u32| {
        let parked = RefCell::new(None::<Deferred>);
        let slow = |ctx: &mut Context<'_>, _: Request<'_>| {
            *parked.borrow_mut() = ctx.defer();
            in_slow.store(true, Ordering::SeqCst);
        };
        let add = |a: i32, b: i32| a + b + 1000 * generation as i32;
        let mut t = Remote::new(p, sim_config());
        let deadline = t.platform().now().saturating_add(LONG);
        if connect(&mut t, deadline).is_err() {
            return None;
        }
        let mut rpc: Rpc<'_, _> = Rpc::new(t);
        rpc.bind_handler("slow", &slow).unwrap();
        rpc.bind("add", &add).unwrap();
        rpc.set_timeout(Duration::from_secs(1));
        if generation == 0 {
            // Pending in the M7 (deferred there) when this core is halted.
            let r = rpc.call::<i32, _>("hold", ());
            return Some(r);
        }
        let r = rpc.call::<i32, _>("add", (2, 3));
        m4_calls.fetch_add(1, Ordering::SeqCst);
        serve_until(&mut rpc, "the M7 to finish", || done.load(Ordering::SeqCst));
        Some(r)
    };
    let (m7, (old, new)) = thread::scope(|s| {
        let (in_slow, m4_calls, done, chip) = (&in_slow, &m4_calls, &done, &chip);
        let spawn = |p: SimPlatform, g: u32| {
            let prog = &m4_program;
            thread::Builder::new()
                .stack_size(CORE_STACK)
                .spawn_scoped(s, move || prog(p, g))
                .unwrap()
        };
        let old = spawn(first, 0);
        let m7 = thread::Builder::new()
            .stack_size(CORE_STACK)
            .spawn_scoped(s, move || {
                let held = Cell::new(0);
                let hold = |ctx: &mut Context<'_>, _: Request<'_>| {
                    // Never answered: the M4 is halted while it waits.
                    // Taken and never answered.
                    let _never = ctx.defer();
                    held.set(held.get() + 1);
                };
                let add = |a: i32, b: i32| a + b;
                let mut t = Host::new(chip.core(CpuId::Cm7), sim_config()).unwrap();
                let deadline = t.platform().now().saturating_add(LONG);
                connect(&mut t, deadline).unwrap();
                let mut rpc: Rpc<'_, _> = Rpc::new(t);
                rpc.bind_handler("hold", &hold).unwrap();
                rpc.bind("add", &add).unwrap();
                serve_until(&mut rpc, "the M4's call", || held.get() == 1);
                let p = rpc.call_async::<i32, _>("slow", ()).unwrap();
                serve_until(&mut rpc, "the M4 to take slow", || {
                    in_slow.load(Ordering::SeqCst)
                });
                // Stop the M4 in the middle of both calls; it is halted, so the rings can be
                // re-laid at once.
                halt.halt();
                rpc.reset(|t| t.reinit()).unwrap();
                let deadline = rpc.context().now().saturating_add(LONG);
                let pending = rpc.join(p, deadline);
                // Boot a fresh M4 program.
                let new = spawn(chip.core(CpuId::Cm4), 1);
                let deadline = rpc.context().now().saturating_add(LONG);
                rpc.wait_ready(deadline).unwrap();
                let after = rpc.call_with_timeout::<i32, _>("add", (40, 2), LONG);
                serve_until(&mut rpc, "the new M4's call", || {
                    m4_calls.load(Ordering::SeqCst) == 1
                });
                done.store(true, Ordering::SeqCst);
                let pools = (
                    rpc.transport_mut().free_tx_buffers().unwrap(),
                    rpc.transport().rx_buffers_posted(),
                );
                (pending, after, pools, new)
            })
            .unwrap();
        let (pending, after, pools, new) = m7.join().unwrap();
        (
            (pending, after, pools),
            (old.join().unwrap(), new.join().unwrap()),
        )
    });
    let (pending, after, pools) = m7;
    assert_eq!(
        pending,
        Err(Error::PeerReset),
        "the call pending at the halt"
    );
    assert_eq!(after, Ok(1042), "answered by the restarted M4");
    assert_eq!(new, Some(Ok(5)), "the restarted M4's call to the M7");
    // The halted program's call could not complete (its accesses are refused).
    assert!(matches!(old, Some(Err(_))), "{old:?}");
    assert_eq!(pools, (46, 64));
}

/// The M7 is halted in the middle of a call to the M4 while the M4's call to the M7 is
/// pending; a fresh M7 program then starts on the same chip (`start_host`: `DRIVER_OK` held
/// clear for 50 ms, then the layout). The M4's pending call fails with `PeerReset`, its stale
/// deferred answer is refused, it handshakes again and calls work both ways.
#[test]
fn m7_halted_mid_call_and_restarted() {
    let chip = SimChip::new(Faults::new(3));
    let first = chip.core(CpuId::Cm7);
    let halt = first.halt_switch().unwrap();
    let held = AtomicBool::new(false);
    let m4_parked = AtomicBool::new(false);
    let m4_again = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let results = thread::scope(|s| {
        let spawn = |name: &str| {
            thread::Builder::new()
                .name(name.into())
                .stack_size(CORE_STACK)
        };
        let m4 = spawn("M4")
            .spawn_scoped(s, || {
                let parked = RefCell::new(None::<Deferred>);
                let slow = |ctx: &mut Context<'_>, _: Request<'_>| {
                    *parked.borrow_mut() = ctx.defer();
                    m4_parked.store(true, Ordering::SeqCst);
                };
                let add = |a: i32, b: i32| a + b;
                let mut t = Remote::new(chip.core(CpuId::Cm4), sim_config());
                let deadline = t.platform().now().saturating_add(LONG);
                connect(&mut t, deadline).unwrap();
                let mut rpc: Rpc<'_, _> = Rpc::new(t);
                rpc.bind_handler("slow", &slow).unwrap();
                rpc.bind("add", &add).unwrap();
                // Pending (and serving the M7's `slow`) when the M7 stops and restarts.
                let pending = rpc.call_with_timeout::<i32, _>("hold", (), LONG);
                let stale = rpc.respond(parked.take().unwrap(), &0);
                let deadline = rpc.context().now().saturating_add(LONG);
                rpc.wait_ready(deadline).unwrap();
                let after = rpc.call_with_timeout::<i32, _>("add", (2, 3), LONG);
                m4_again.store(true, Ordering::SeqCst);
                serve_until(&mut rpc, "the new M7 to finish", || {
                    done.load(Ordering::SeqCst)
                });
                (pending, stale, after, rpc.transport().stats().peer_resets)
            })
            .unwrap();
        let old = spawn("M7 (first)")
            .spawn_scoped(s, || {
                let hold = |ctx: &mut Context<'_>, _: Request<'_>| {
                    // Taken and never answered.
                    let _never = ctx.defer();
                    held.store(true, Ordering::SeqCst);
                };
                let mut t = Host::new(first, sim_config()).unwrap();
                let deadline = t.platform().now().saturating_add(LONG);
                connect(&mut t, deadline).unwrap();
                let mut rpc: Rpc<'_, _> = Rpc::new(t);
                rpc.bind_handler("hold", &hold).unwrap();
                serve_until(&mut rpc, "the M4's call", || held.load(Ordering::SeqCst));
                // Halted while it waits for `slow`.
                rpc.call_with_timeout::<i32, _>("slow", (), Duration::from_secs(1))
            })
            .unwrap();
        while !m4_parked.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }
        halt.halt();
        let new = spawn("M7 (restarted)")
            .spawn_scoped(s, || {
                let add = |a: i32, b: i32| a + b + 1000;
                let mut t = start_host(
                    chip.core(CpuId::Cm7),
                    sim_config(),
                    Duration::from_millis(50),
                )
                .unwrap();
                let deadline = t.platform().now().saturating_add(LONG);
                connect(&mut t, deadline).unwrap();
                let mut rpc: Rpc<'_, _> = Rpc::new(t);
                rpc.bind("add", &add).unwrap();
                serve_until(&mut rpc, "the M4's call", || {
                    m4_again.load(Ordering::SeqCst)
                });
                let after = rpc.call_with_timeout::<i32, _>("add", (40, 2), LONG);
                done.store(true, Ordering::SeqCst);
                let pools = (
                    rpc.transport_mut().free_tx_buffers().unwrap(),
                    rpc.transport().rx_buffers_posted(),
                );
                (after, pools)
            })
            .unwrap();
        (m4.join().unwrap(), old.join().unwrap(), new.join().unwrap())
    });
    let ((pending, stale, after, resets), old, (m7_after, pools)) = results;
    assert_eq!(
        pending,
        Err(Error::PeerReset),
        "the M4's call pending at the restart"
    );
    assert_eq!(
        stale,
        Err(Error::PeerReset),
        "the answer deferred before the restart"
    );
    assert_eq!(after, Ok(1005), "answered by the restarted M7");
    assert_eq!(resets, 1);
    assert!(
        old.is_err(),
        "the halted M7's call cannot complete: {old:?}"
    );
    assert_eq!(m7_after, Ok(42));
    assert_eq!(pools, (46, 64));
}

/// The scenario runner behind `duet-sim faults`: each core halted mid-call and restarted, with
/// a third of the doorbells lost and others delayed or duplicated; the link comes back, every
/// later call succeeds, every buffer is back.
#[test]
fn restarts_under_doorbell_faults_recover() {
    use duet_sim::scenario::{self, Event, Scenario};
    for (seed, core) in [(31, CpuId::Cm4), (32, CpuId::Cm7)] {
        let report = scenario::run(&Scenario {
            seed,
            doorbells: DoorbellFaults {
                drop: 0.3,
                delay: 0.3,
                max_delay: Duration::from_millis(2),
                duplicate: 0.3,
            },
            event: Event::Restart(core),
            ..Scenario::default()
        });
        println!("{report}\n");
        report.check().unwrap_or_else(|e| panic!("{core:?}: {e}"));
        // The survivor saw the restart as a reset (its pending call failed with it) or, for
        // a call still on its way to the halted core, as a timeout.
        let survivor = if core == CpuId::Cm4 {
            &report.m7
        } else {
            &report.m4
        };
        assert!(survivor.during.failed() > 0, "{report}");
    }
}

/// The scenario runner with a peer that stops consuming for 300 ms (each core in turn): the
/// other core's calls time out meanwhile, then everything works again and every buffer is back.
#[test]
fn a_stalled_core_recovers_without_a_reset() {
    use duet_sim::scenario::{self, Event, Scenario};
    for (seed, core) in [(41, CpuId::Cm4), (42, CpuId::Cm7)] {
        let report = scenario::run(&Scenario {
            seed,
            event: Event::Stall {
                core,
                for_: Duration::from_millis(300),
            },
            ..Scenario::default()
        });
        println!("{report}\n");
        report.check().unwrap_or_else(|e| panic!("{core:?}: {e}"));
        let other = if core == CpuId::Cm4 {
            &report.m7
        } else {
            &report.m4
        };
        assert!(other.during.errors.contains_key("Timeout"), "{report}");
        assert_eq!(report.m7.resets + report.m4.resets, 0, "no reset needed");
    }
}

/// The limit the README states: an M4 that restarts on its own (say, a watchdog) while the M7
/// keeps the old rings cannot resynchronise with them. The M7's calls fail (by their
/// deadline); the M7 then resets the link, the new M4 handshakes and calls work again.
#[test]
fn m4_restarting_on_its_own_needs_a_reset_from_the_m7() {
    let chip = SimChip::new(Faults::new(4));
    let first = chip.core(CpuId::Cm4);
    let halt = first.halt_switch().unwrap();
    let done = AtomicBool::new(false);
    let m4 = |p: SimPlatform| {
        let add = |a: i32, b: i32| a + b;
        let mut t = Remote::new(p, sim_config());
        let deadline = t.platform().now().saturating_add(LONG);
        // A restarted M4 on stale rings may not get through; it keeps trying.
        let _ = connect(&mut t, deadline);
        let mut rpc: Rpc<'_, _> = Rpc::new(t);
        rpc.bind("add", &add).unwrap();
        let deadline = rpc.context().now().saturating_add(LONG);
        while !done.load(Ordering::SeqCst) && rpc.transport().platform().now() < deadline {
            let _ = rpc.poll();
            let p = rpc.transport().platform();
            p.wait(p.now().saturating_add(Duration::from_millis(1)));
        }
    };
    let (before, stale, after) = thread::scope(|s| {
        let spawn = |p: SimPlatform| {
            let m4 = &m4;
            thread::Builder::new()
                .stack_size(CORE_STACK)
                .spawn_scoped(s, move || m4(p))
                .unwrap()
        };
        spawn(first);
        let mut t = Host::new(chip.core(CpuId::Cm7), sim_config()).unwrap();
        let deadline = t.platform().now().saturating_add(LONG);
        connect(&mut t, deadline).unwrap();
        let mut rpc: Rpc<'_, _> = Rpc::new(t);
        rpc.set_timeout(Duration::from_millis(200));
        let before: Vec<_> = (0..20).map(|i| rpc.call::<i32, _>("add", (i, 1))).collect();
        // The M4 stops and a fresh program starts on the old rings.
        halt.halt();
        spawn(chip.core(CpuId::Cm4));
        thread::sleep(Duration::from_millis(50));
        let stale: Vec<_> = (0..3).map(|i| rpc.call::<i32, _>("add", (i, 1))).collect();
        // The M7 resets the link: DRIVER_OK held clear while the M4 polls, then re-laid.
        rpc.reset(|t| {
            t.begin_reset()?;
            thread::sleep(Duration::from_millis(100));
            t.reinit()
        })
        .unwrap();
        let deadline = rpc.context().now().saturating_add(LONG);
        rpc.wait_ready(deadline).unwrap();
        rpc.set_timeout(LONG);
        let after = rpc.call::<i32, _>("add", (40, 2));
        done.store(true, Ordering::SeqCst);
        (before, stale, after)
    });
    assert!(before
        .iter()
        .enumerate()
        .all(|(i, r)| *r == Ok(i as i32 + 1)));
    println!("calls after the M4 restarted on its own: {stale:?}");
    assert!(stale.iter().all(|r| r.is_err()), "{stale:?}");
    assert_eq!(after, Ok(42));
}
