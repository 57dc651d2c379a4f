//! Benchmark pair, the M7 image: serves `add`, counts `tick` notifications and RPC serial
//! bytes, and calls `duet_bench_mark` when the M4's phase notifications arrive (phases 1 to 4)
//! and when it has read the stream's last byte (5); see `bench_m4.rs`. Its loop is lean on
//! purpose: poll (through `available`), read what came, sleep in `WFE` until the doorbell; once
//! the stream has begun (phase 4), it reads with blocking `read`s (which serve RPC and sleep
//! while they wait), as a reader that expects data does.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use core::cell::Cell;
use core::time::Duration;

use cortex_m_rt::entry;
use duet_firmware::bench::{mark, MARK, STREAM_KIB};
use duet_firmware::{deadline, finish, init_m7, m7_begin, println, M7Rpc, ServeError, M4_DONE};
use duet_rpmsg::{Arduino, Host, Platform, Transport};
use embedded_io::Read;

/// The whole run may take this long on the M7's clock before it gives up.
const LIMIT: Duration = Duration::from_secs(60);

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), ServeError> {
    let chip = init_m7();
    let done = Cell::new(false);
    let ticks = Cell::new(0u32);
    let add = |a: i32, b: i32| a.wrapping_add(b);
    let tick = || ticks.set(ticks.get() + 1);
    let count = || ticks.get();
    let phase = Cell::new(0u32);
    let on_mark = |p: u32| {
        phase.set(p);
        mark(p)
    };
    let on_done = || done.set(true);
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(Host::new(chip, Arduino).map_err(duet::Error::from)?);
    let full = |_| duet::Error::TooManyCalls;
    rpc.bind("add", &add).map_err(full)?;
    rpc.bind("tick", &tick).map_err(full)?;
    rpc.bind("ticks", &count).map_err(full)?;
    rpc.bind(MARK, &on_mark).map_err(full)?;
    rpc.bind(M4_DONE, &on_done).map_err(full)?;
    m7_begin(&mut rpc)?;
    let end = deadline(LIMIT);
    let total = STREAM_KIB as usize * 1024;
    let mut streamed = 0usize;
    let mut buf = [0u8; 512];
    loop {
        let n = {
            let mut serial = rpc.serial();
            if phase.get() >= 4 && streamed < total {
                // A timeout (no byte for the serial timeout) is checked against `end` below.
                serial.read(&mut buf).unwrap_or(0)
            } else if serial.available() > 0 {
                serial.read(&mut buf).unwrap_or(0)
            } else {
                0
            }
        };
        if n > 0 {
            // The M4 streams 0, 1, .., 255 over and over.
            if buf[n - 1] != (streamed + n - 1) as u8 {
                println!("stream byte {} is wrong", streamed + n - 1);
                duet_firmware::exit(1);
            }
            streamed += n;
            if streamed == total {
                mark(5);
            }
            continue;
        }
        // The M4's last notification comes after its stream: nothing is left to read.
        if done.get() {
            break;
        }
        let now = rpc.transport().platform().now();
        if now >= end {
            println!("the benchmark did not finish within {} s", LIMIT.as_secs());
            duet_firmware::exit(1);
        }
        rpc.transport()
            .platform()
            .wait(end.min(now.saturating_add(Duration::from_millis(10))));
    }
    if streamed != total {
        println!("the M7 received {streamed} of {total} stream bytes");
        duet_firmware::exit(1);
    }
    println!("bench: {} ticks, {streamed} stream bytes", ticks.get());
    Ok(())
}
