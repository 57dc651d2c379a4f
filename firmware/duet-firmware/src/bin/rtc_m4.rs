//! RTC, the M4 image: sets the RTC, then reads it every second and tells the M7 (a
//! notification, no reply).
#![no_std]
#![no_main]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use cortex_m_rt::entry;
use duet_firmware::rtc::{READINGS, START};
use duet_firmware::{delay, finish, init_m4, m4_begin, m4_done, println, M4Rpc};
use duet_rpmsg::{Arduino, Remote};
use duet_stm32h7::rtc::Rtc;

#[entry]
fn main() -> ! {
    let mut rpc: M4Rpc<'_> = duet::Rpc::new(Remote::new(init_m4(), Arduino));
    if let Err(e) = run(&mut rpc) {
        finish("M4", Err(e));
    }
    m4_done(&mut rpc)
}

fn run(rpc: &mut M4Rpc<'_>) -> Result<(), duet::Error> {
    m4_begin(rpc)?;
    let mut rtc = match Rtc::init().and_then(|mut r| r.set(START).map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            println!("M4: {e}");
            duet_firmware::exit(1)
        }
    };
    for i in 0..=READINGS {
        if i > 0 {
            delay(1000);
        }
        match rtc.now() {
            Ok(t) => rpc.notify("rtcTime", (t,))?,
            Err(e) => {
                println!("M4: {e}");
                duet_firmware::exit(1)
            }
        }
    }
    Ok(())
}
