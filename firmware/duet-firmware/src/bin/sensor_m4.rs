//! RPC sensor, the M4 image: every second, `sensorRead` on the M7, then print the value
//! through RPC serial.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::sensor::READINGS;
use duet_firmware::{delay, finish, init_m4, m4_begin, m4_done, rpc_println, M4Rpc};
use duet_rpmsg::{Arduino, Remote};

#[entry]
fn main() -> ! {
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(init_m4(), Arduino));
    if let Err(e) = run(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_done(&mut rpc)
}

fn run(rpc: &mut M4Rpc<'_>) -> Result<(), duet::SerialError> {
    m4_begin(rpc)?;
    for _ in 0..READINGS {
        delay(1000);
        let value: u16 = rpc.call("sensorRead", ())?;
        rpc_println(rpc, format_args!("Sensor value: {value}"))?;
    }
    Ok(())
}
