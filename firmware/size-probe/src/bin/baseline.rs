//! The empty image: vector table, reset handler, panic handler. Other probes subtract it.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use size_probe::{opaque_u8, sink};

#[entry]
fn main() -> ! {
    loop {
        sink(opaque_u8(1));
    }
}
