//! duet on the simulator in thread mode: the M7 and the M4 are two threads (one on each CPU)
//! over the simulated SRAM4 and its doorbells, running the real stack (duet over duet-rpmsg).

use std::cell::Cell;
use std::thread;
use std::time::{Duration, Instant};

use duet::Rpc;
use duet_rpmsg::{Platform, Transport};
use duet_sim::machine::{rpc_pair, run_pair, M4Rpc, M7Rpc};
use embedded_io::{Read, Write};

use crate::floor::{check_sparse, mbps, per_op, CHUNK};
use crate::{pin_side, Cpus, Side};

/// Calls made before the clock starts.
const WARM_UP: u32 = 200;

/// How long the serving side sleeps on its doorbell at most before it polls again.
const SLICE: Duration = Duration::from_millis(1);

/// Serves `add` and `stop` on the M4 until `stop` is notified: poll, then wait for the
/// doorbell, as an M4 program does.
pub fn serve(t: duet_sim::machine::M4Transport, cpus: Cpus) {
    pin_side(cpus, Side::M4);
    let stop = Cell::new(false);
    let add = |a: i32, b: i32| a + b;
    let halt = || stop.set(true);
    let mut rpc: M4Rpc<'_> = Rpc::new(t);
    rpc.bind("add", &add).expect("bind add");
    rpc.bind("stop", &halt).expect("bind stop");
    while !stop.get() {
        rpc.poll().expect("M4 poll");
        let p = rpc.transport().platform();
        p.wait(p.now().saturating_add(SLICE));
    }
}

/// Nanoseconds per `call("add", (1, 2))` round trip from the M7 thread to the M4 thread and
/// back (the M4 polling, then waiting on its doorbell), over `calls` calls after a warm-up.
pub fn rtt(calls: u32, cpus: Cpus) -> f64 {
    let (t, ()) = run_pair(
        |m7| {
            pin_side(cpus, Side::M7);
            let mut rpc: M7Rpc<'_> = Rpc::new(m7);
            // The M4 binds its handlers after the handshake: wait until "add" answers.
            while rpc.call::<i32, _>("add", (1, 2)).is_err() {
                thread::yield_now();
            }
            let mut start = Instant::now();
            for i in 0..calls + WARM_UP {
                if i == WARM_UP {
                    start = Instant::now();
                }
                let r: i32 = rpc.call("add", (1, 2)).expect("add");
                assert_eq!(r, 3);
            }
            let t = start.elapsed();
            rpc.notify("stop", ()).expect("stop");
            t
        },
        |m4| serve(m4, cpus),
    );
    per_op(t, u64::from(calls))
}

/// CPU cost without wake-ups: nanoseconds per `add(1, 2)` round trip with both cores' `Rpc`
/// driven from this one thread (the M7 sends, the M4 polls once, the M7 takes the reply).
/// Also what `cargo run -p duet-bench --example rtt_one_thread` runs under callgrind.
pub fn rtt_one_thread(calls: u32) -> f64 {
    let add = |a: i32, b: i32| a + b;
    let (mut m7, mut m4) = rpc_pair();
    m4.bind("add", &add).expect("bind add");
    let mut start = Instant::now();
    for i in 0..calls + WARM_UP {
        if i == WARM_UP {
            start = Instant::now();
        }
        one_call(&mut m7, &mut m4);
    }
    per_op(start.elapsed(), u64::from(calls))
}

/// One `add(1, 2)` round trip driven from one thread; panics if the reply is not in the ring
/// after one M4 poll or is wrong.
pub fn one_call(m7: &mut M7Rpc<'_>, m4: &mut M4Rpc<'_>) {
    let p = m7.call_async::<i32, _>("add", (1, 2)).expect("call_async");
    m4.poll().expect("M4 poll");
    match m7.poll_pending(&p) {
        std::task::Poll::Ready(r) => assert_eq!(r.expect("add"), 3),
        std::task::Poll::Pending => panic!("the reply is in the ring after one M4 poll"),
    }
}

/// MB/s (10^6 bytes) of duet's byte stream (`Serial`, whole buffers) from the M4 thread to the
/// M7 thread: the M4 writes `bytes` of [`crate::pattern`] in [`CHUNK`]-sized `write_all`s, the
/// M7 reads [`CHUNK`] at a time and checks every 64th byte, timed from the first byte read.
pub fn stream(bytes: usize, cpus: Cpus) -> f64 {
    let src = crate::pattern_source();
    let src = &src;
    let (t, ()) = run_pair(
        |m7| {
            pin_side(cpus, Side::M7);
            let mut rpc: M7Rpc<'_> = Rpc::new(m7);
            let mut serial = rpc.serial();
            serial.set_timeout(Duration::from_secs(10));
            let mut buf = vec![0u8; CHUNK];
            let (mut got, mut start) = (0, None);
            while got < bytes {
                let n = serial.read(&mut buf).expect("read");
                start.get_or_insert_with(Instant::now);
                check_sparse(&buf[..n], got);
                got += n;
            }
            start.map_or(Duration::ZERO, |s| s.elapsed())
        },
        |m4| {
            pin_side(cpus, Side::M4);
            let mut rpc: M4Rpc<'_> = Rpc::new(m4);
            let mut serial = rpc.serial();
            serial.set_timeout(Duration::from_secs(10));
            let mut sent = 0;
            while sent < bytes {
                let n = CHUNK.min(bytes - sent);
                serial.write_all(&src[sent % 251..][..n]).expect("write");
                sent += n;
            }
            serial.flush().expect("flush");
        },
    );
    mbps(bytes, t)
}

/// CPU cost of the byte stream without wake-ups: nanoseconds per KiB sent from the M4 to the M7
/// through `Serial` with both cores driven from this one thread (the M4 writes one payload,
/// which `Serial` sends at once, the M7 reads it), over at least `kib` KiB after a warm-up;
/// every 64th byte is checked. Also what the `stream_one_thread` example runs under callgrind.
pub fn stream_one_thread(kib: usize) -> f64 {
    let (mut m7, mut m4) = rpc_pair();
    let src = crate::pattern_source();
    let chunk = m4.transport().payload_per_buffer().min(CHUNK);
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0;
    let mut pump = |payloads: usize| {
        for _ in 0..payloads {
            let w = m4.serial().write(&src[at % 251..][..chunk]).expect("write");
            assert_eq!(w, chunk);
            let r = m7.serial().read(&mut buf).expect("read");
            assert_eq!(r, chunk);
            check_sparse(&buf[..r], at);
            at += r;
        }
    };
    pump(64);
    let payloads = (kib << 10).div_ceil(chunk);
    let start = Instant::now();
    pump(payloads);
    per_op(start.elapsed(), 1) * 1024.0 / (payloads * chunk) as f64
}
