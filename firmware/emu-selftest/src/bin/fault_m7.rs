//! M7 image that prints and then reads unmapped memory in `do_fault`: the emulator must report
//! the fault with the core and the program counter inside `do_fault`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use emu_selftest::*;

#[entry]
fn main() -> ! {
    print("M7: about to fault\n");
    let v = do_fault();
    print_u32(v);
    exit(0)
}

#[inline(never)]
#[no_mangle]
fn do_fault() -> u32 {
    // 0x0040_0000 lies between ITCM and flash: nothing is mapped there.
    rd(0x0040_0000)
}
