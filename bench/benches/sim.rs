//! duet on the simulator (two threads, real shared-memory transport), measured as ratios in one
//! run: the RPC layer against a bare transport ping-pong, and duet's byte stream (whole
//! buffers) against Arduino's `RPC.print` style (one message per byte).

use std::cell::Cell;
use std::time::{Duration, Instant};

use duet::{Endpoint, Rpc, Transport};
use duet_rpmsg::Platform;
use duet_sim::machine::{rpc_pair, run_pair, transports, M4Rpc, M7Rpc};
use embedded_io::{Read, Write};

const ROUND_TRIPS: u32 = 2000;
const STREAM_BYTES: usize = 64 * 1024;
const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_millis(1);
/// A 14-byte message the size of Arduino's `RPC.call("add", 1, 2)`.
const MSG: &[u8] = b"\x94\x00\xCE\x24\x00\x1A\x30\xA3add\x92\x01\x02";

/// Sleeps on the doorbell for at most one slice (the peer's messages ring it).
fn idle<T: Transport>(t: &T) {
    let p = t.platform();
    p.wait(p.now().saturating_add(SLICE));
}

/// `ROUND_TRIPS` calls of `add(i, 1)` from the M7 to the M4; returns the time of the calls.
fn rpc_calls() -> Duration {
    let (t, ()) = run_pair(
        |m7| {
            let mut rpc: M7Rpc<'_> = Rpc::new(m7);
            // The M4 binds its handlers after the handshake: wait until "add" answers.
            while rpc.call::<i32, _>("add", (0, 0)).is_err() {}
            let start = Instant::now();
            for i in 0..ROUND_TRIPS as i32 {
                let r: i32 = rpc.call("add", (i, 1)).expect("add");
                assert_eq!(r, i + 1);
            }
            let t = start.elapsed();
            rpc.notify("stop", ()).expect("stop");
            t
        },
        |m4| {
            let stop = Cell::new(false);
            let add = |a: i32, b: i32| a + b;
            let halt = || stop.set(true);
            let mut rpc: M4Rpc<'_> = Rpc::new(m4);
            rpc.bind("add", &add).expect("bind add");
            rpc.bind("stop", &halt).expect("bind stop");
            while !stop.get() {
                rpc.poll().expect("M4 poll");
                idle(rpc.transport());
            }
        },
    );
    t
}

/// The same number of 14-byte round trips on the bare transport (no codec, no engine).
fn transport_ping_pong() -> Duration {
    let (t, ()) = run_pair(
        |mut h| {
            let mut buf = [0u8; 512];
            let start = Instant::now();
            for _ in 0..=ROUND_TRIPS {
                while h.try_send(Endpoint::Rpc, MSG).is_err() {
                    idle(&h);
                }
                loop {
                    if let Ok(Some(r)) = h.try_recv(&mut buf) {
                        assert_eq!(r.len, MSG.len());
                        break;
                    }
                    idle(&h);
                }
            }
            start.elapsed()
        },
        |mut r| {
            let mut buf = [0u8; 512];
            for _ in 0..=ROUND_TRIPS {
                let n = loop {
                    if let Ok(Some(got)) = r.try_recv(&mut buf) {
                        break got.len;
                    }
                    idle(&r);
                };
                while r.try_send(Endpoint::Rpc, &buf[..n]).is_err() {
                    idle(&r);
                }
            }
        },
    );
    t
}

/// CPU cost without thread wake-ups: both cores' `Rpc` driven from one thread (the M7 calls,
/// the M4 polls once, the M7 polls the pending call), `ROUND_TRIPS` calls.
fn rpc_calls_one_thread() -> Duration {
    let add = |a: i32, b: i32| a + b;
    let (mut m7, mut m4) = rpc_pair();
    m4.bind("add", &add).expect("bind add");
    let start = Instant::now();
    for i in 0..ROUND_TRIPS as i32 {
        let p = m7.call_async::<i32, _>("add", (i, 1)).expect("call_async");
        m4.poll().expect("M4 poll");
        match m7.poll_pending(&p) {
            std::task::Poll::Ready(r) => assert_eq!(r.expect("add"), i + 1),
            std::task::Poll::Pending => panic!("the reply is in the ring after one M4 poll"),
        }
    }
    start.elapsed()
}

/// The same round trips on the bare transports in one thread.
fn transport_one_thread() -> Duration {
    let (mut h, mut r) = transports();
    let mut buf = [0u8; 512];
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        h.try_send(Endpoint::Rpc, MSG).expect("host send");
        let n = r
            .try_recv(&mut buf)
            .expect("remote recv")
            .expect("a message")
            .len;
        r.try_send(Endpoint::Rpc, &buf[..n]).expect("remote send");
        let got = h.try_recv(&mut buf).expect("host recv").expect("a message");
        assert_eq!(got.len, MSG.len());
    }
    start.elapsed()
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// `STREAM_BYTES` from the M4 to the M7 through duet's `Serial` (whole buffers).
fn duet_stream() -> Duration {
    let (t, ()) = run_pair(
        |m7| {
            let mut rpc: M7Rpc<'_> = Rpc::new(m7);
            let mut serial = rpc.serial();
            serial.set_timeout(Duration::from_secs(10));
            let mut buf = [0u8; 1024];
            let (mut got, mut start) = (0, None);
            while got < STREAM_BYTES {
                let n = serial.read(&mut buf).expect("read");
                start.get_or_insert_with(Instant::now);
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, pattern(got + k), "byte {}", got + k);
                }
                got += n;
            }
            start.map_or(Duration::ZERO, |s| s.elapsed())
        },
        |m4| {
            let mut rpc: M4Rpc<'_> = Rpc::new(m4);
            let mut serial = rpc.serial();
            serial.set_timeout(Duration::from_secs(10));
            let data: Vec<u8> = (0..STREAM_BYTES).map(pattern).collect();
            serial.write_all(&data).expect("write");
            serial.flush().expect("flush");
        },
    );
    t
}

/// The same bytes sent the way Arduino's `RPC.print` sends them: one message per byte.
fn per_byte_stream() -> Duration {
    let (t, ()) = run_pair(
        |mut h| {
            let mut buf = [0u8; 512];
            let (mut got, mut start) = (0, None);
            while got < STREAM_BYTES {
                match h.try_recv(&mut buf) {
                    Ok(Some(r)) => {
                        start.get_or_insert_with(Instant::now);
                        for (k, b) in buf[..r.len].iter().enumerate() {
                            assert_eq!(*b, pattern(got + k));
                        }
                        got += r.len;
                    }
                    _ => idle(&h),
                }
            }
            start.map_or(Duration::ZERO, |s| s.elapsed())
        },
        |mut r| {
            for i in 0..STREAM_BYTES {
                // Buffer returns ring no doorbell: retry at once (yielding) rather than sleep,
                // so this baseline is as fast as one-message-per-byte can be.
                while r.try_send(Endpoint::Raw, &[pattern(i)]).is_err() {
                    std::thread::yield_now();
                }
            }
        },
    );
    t
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (mut rpc, mut raw, mut stream, mut bytes) = (vec![], vec![], vec![], vec![]);
    let (mut rpc1, mut raw1) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        rpc1.push(rpc_calls_one_thread());
        raw1.push(transport_one_thread());
        rpc.push(rpc_calls());
        raw.push(transport_ping_pong());
        stream.push(duet_stream());
        bytes.push(per_byte_stream());
    }
    let (rpc, raw, stream, bytes) = (median(rpc), median(raw), median(stream), median(bytes));
    let (rpc1, raw1) = (median(rpc1), median(raw1));
    let per = |d: Duration, n: u32| d.as_secs_f64() * 1e6 / f64::from(n);
    println!("simulator, one thread driving both cores (CPU cost, no wake-ups), median of {ROUNDS} rounds");
    println!(
        "  RPC call add(i32, i32), round trip   {:>8.2} us   {:.2}x the bare transport round trip ({:.2} us)",
        per(rpc1, ROUND_TRIPS),
        rpc1.as_secs_f64() / raw1.as_secs_f64(),
        per(raw1, ROUND_TRIPS),
    );
    println!("simulator, two threads, median of {ROUNDS} rounds (absolute times are this machine's; compare the ratios)");
    println!(
        "  RPC call add(i32, i32), round trip   {:>8.2} us   {:.2}x the bare transport ping-pong ({:.2} us)",
        per(rpc, ROUND_TRIPS),
        rpc.as_secs_f64() / raw.as_secs_f64(),
        per(raw, ROUND_TRIPS + 1),
    );
    let mbps = |d: Duration| STREAM_BYTES as f64 / d.as_secs_f64() / 1e6;
    println!(
        "  byte stream, {} KiB M4 -> M7         {:>8.2} MB/s (duet Serial)   {:.1}x one-message-per-byte ({:.2} MB/s)",
        STREAM_BYTES / 1024,
        mbps(stream),
        bytes.as_secs_f64() / stream.as_secs_f64(),
        mbps(bytes),
    );
}
