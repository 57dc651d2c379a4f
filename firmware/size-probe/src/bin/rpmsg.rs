//! The transport with both roles linked: host init, remote handshake, send and receive on SRAM4
//! through volatile accesses, as the chip platform does.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use duet_rpmsg::{Arduino, Host, Remote};
use size_probe::chip::{exercise, Chip};
use size_probe::opaque_u8;

#[entry]
fn main() -> ! {
    if opaque_u8(0) == 0 {
        let Ok(mut host) = Host::new(Chip, Arduino) else {
            loop {
                core::hint::spin_loop();
            }
        };
        loop {
            exercise(&mut host);
        }
    } else {
        let mut remote = Remote::new(Chip, Arduino);
        loop {
            exercise(&mut remote);
        }
    }
}
