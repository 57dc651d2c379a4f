//! Benchmark pair, the M4 image: the phases `cargo xtask bench` measures on the emulator, each
//! between two calls of `duet_bench_mark` (the emulator's probe records the core's
//! instruction count there; the M7 marks the same phases when their notifications arrive):
//! 1. [`CALLS`] `call("add", 1, 2)` round trips to the M7 (after [`WARM_UP`] calls);
//! 2. [`NOTIFICATIONS`] notifications `tick()` to the M7;
//! 3. [`STREAM_KIB`] KiB through RPC serial to the M7.
//!
//! Every result is checked (the stream's by the M7); a wrong one ends the run with exit code 1.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::bench::{mark, CALLS, MARK, NOTIFICATIONS, STREAM_KIB, WARM_UP};
use duet_firmware::{finish, init_m4, m4_begin, m4_done, M4Rpc};
use duet_rpmsg::{Arduino, Remote};
use embedded_io::Write;

#[entry]
fn main() -> ! {
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(init_m4(), Arduino));
    if let Err(e) = run(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_done(&mut rpc)
}

/// Marks phase boundary `phase` here and on the M7 (its handler marks when the notification
/// arrives, after everything sent before it).
fn both(rpc: &mut M4Rpc<'_>, phase: u32) -> Result<(), duet::Error> {
    rpc.notify(MARK, (phase,))?;
    mark(phase);
    Ok(())
}

fn add(rpc: &mut M4Rpc<'_>) -> Result<(), duet::Error> {
    let r: i32 = rpc.call("add", (1, 2))?;
    if r != 3 {
        duet_firmware::println!("add(1, 2) = {r}");
        duet_firmware::exit(1);
    }
    Ok(())
}

fn run(rpc: &mut M4Rpc<'_>) -> Result<(), duet::SerialError> {
    m4_begin(rpc)?;
    for _ in 0..WARM_UP {
        add(rpc)?;
    }
    both(rpc, 1)?;
    for _ in 0..CALLS {
        add(rpc)?;
    }
    both(rpc, 2)?;
    for _ in 0..NOTIFICATIONS {
        rpc.notify("tick", ())?;
    }
    both(rpc, 3)?;
    // Every tick arrived and was handled, in order, before this call.
    let ticks: u32 = rpc.call("ticks", ())?;
    if ticks != NOTIFICATIONS {
        duet_firmware::println!("the M7 counted {ticks} ticks");
        duet_firmware::exit(1);
    }
    both(rpc, 4)?;
    let chunk: [u8; 256] = core::array::from_fn(|i| i as u8);
    {
        let mut serial = rpc.serial();
        for _ in 0..STREAM_KIB * 4 {
            serial.write_all(&chunk)?;
        }
        serial.flush()?;
    }
    // The M7 marks the end of the stream itself, when it has read the last byte (and checks
    // the count at the end of the run).
    mark(5);
    Ok(())
}
