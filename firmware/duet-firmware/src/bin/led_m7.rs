//! LED control from the host (MicroPython's example), the M7 image: boots the M4, then calls
//! `led(true/false)` on it every half second and prints what it answers.
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::led::TOGGLES;
use duet_firmware::{delay, finish, init_m7, m7_begin, println, M7Rpc};
use duet_rpmsg::{Arduino, Host};

#[entry]
fn main() -> ! {
    finish("M7", run())
}

fn run() -> Result<(), duet::Error> {
    let chip = init_m7();
    let mut rpc: M7Rpc<'_> = duet::Rpc::new(Host::new(chip, Arduino)?);
    m7_begin(&mut rpc)?;
    for _ in 0..TOGGLES {
        for on in [true, false] {
            let lit: bool = rpc.call("led", (on,))?;
            println!(
                "led({on}) -> the M4's LED is {}",
                if lit { "on" } else { "off" }
            );
            delay(500);
        }
    }
    Ok(())
}
