//! Shared pieces of the size probes: a panic handler that adds nothing, and opaque I/O so the
//! optimiser keeps the measured code.
#![no_std]

use core::panic::PanicInfo;

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// A byte the optimiser cannot predict (read through a volatile pointer).
pub fn opaque_u8(v: u8) -> u8 {
    let cell = v;
    // SAFETY: reading a local through a pointer derived from a reference to it.
    unsafe { core::ptr::read_volatile(&cell) }
}

/// Keeps `v` alive: the optimiser must assume it is observed.
pub fn sink<T>(v: T) {
    let cell = v;
    // SAFETY: `cell` is a live local; the volatile read only forces it to exist.
    let _ = unsafe { core::ptr::read_volatile(&cell) };
}
