//! M4 self-test image: announces itself in the SRAM4 mailbox (SEV), then answers each doorbell
//! (HSEM 0 interrupt, IRQ 126) with sqrt(req^2) + 1000 computed on the FPU and rings back.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m_rt::{entry, exception};
use emu_selftest::*;

static SERVED: AtomicU32 = AtomicU32::new(0);

#[entry]
fn main() -> ! {
    print("M4: up\n");
    hsem_irq_enable(1, 0);
    nvic_enable(126);
    wr(MAILBOX, READY);
    sev();
    loop {
        wfe();
    }
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 126 {
        hsem_clear(1, 0);
        let r = rd(MAILBOX + 4) as f32;
        let root = libm_sqrt(r * r);
        wr(MAILBOX + 8, (root + 0.5) as u32 + 1000);
        SERVED.fetch_add(1, Ordering::Relaxed);
        ring(1, 1);
    } else {
        print("M4: unexpected interrupt\n");
        exit(4);
    }
}

/// Square root on the FPU by Newton steps (VDIV/VADD/VMUL), rounded by the caller.
fn libm_sqrt(a: f32) -> f32 {
    let mut x = if a > 1.0 { a } else { 1.0 };
    for _ in 0..24 {
        x = 0.5 * (x + a / x);
    }
    x
}
