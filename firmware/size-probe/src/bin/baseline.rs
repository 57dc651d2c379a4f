//! The empty image: vector table, reset handler, panic handler, and the probes' scaffolding
//! (zeroed stack buffers, which pull in `memclr`). Other probes subtract it.
#![no_std]
#![no_main]

use core::hint::black_box;
use cortex_m_rt::entry;
use size_probe::{opaque_u8, sink};

#[entry]
fn main() -> ! {
    loop {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        black_box(&mut a);
        black_box(&mut b);
        sink(opaque_u8(1));
    }
}
