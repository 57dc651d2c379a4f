//! The transport's remote role alone (what the M4 image links): handshake, poll, send, receive.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use duet_rpmsg::{Arduino, Remote};
use size_probe::chip::{exercise, Chip};

#[entry]
fn main() -> ! {
    let mut remote = Remote::new(Chip, Arduino);
    loop {
        exercise(&mut remote);
    }
}
