//! M7 self-test image: boots the M4 (unless BCM4 autoboots it), waits for it with a SysTick
//! deadline, runs HSEM doorbell round trips with interrupts both ways and FPU work in the
//! handlers, toggles a GPIO and reports over USART1.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m_rt::{entry, exception};
use emu_selftest::*;

static TICKS: AtomicU32 = AtomicU32::new(0);
static DONE: AtomicU32 = AtomicU32::new(0);
static SCALED: AtomicU32 = AtomicU32::new(0);
const ROUNDS: u32 = 20;
/// Milliseconds the M7 waits for the M4.
const DEADLINE_MS: u32 = 5;

#[entry]
fn main() -> ! {
    print("M7: start\n");
    // SysTick: 1 ms at 480 MHz from the core clock, with interrupt.
    wr(0xE000_E014, 479_999);
    wr(0xE000_E018, 0);
    wr(0xE000_E010, 7);
    // RCC: HSEM clock (AHB4ENR bit 25).
    wr(0x5802_44E0, rd(0x5802_44E0) | (1 << 25));
    if rd(0x5200_201C) & (1 << 22) == 0 {
        print("M7: booting M4\n");
        wr(0x5802_44A0, rd(0x5802_44A0) | (1 << 3));
    } else {
        print("M7: M4 boots by itself\n");
    }
    while rd(MAILBOX) != READY {
        if TICKS.load(Ordering::Relaxed) >= DEADLINE_MS {
            print("M7: peer did not come up within ");
            print_u32(DEADLINE_MS);
            print(" ms\n");
            exit(3);
        }
        wfe();
    }
    print("M7: M4 is up after ");
    print_u32(TICKS.load(Ordering::Relaxed));
    print(" ms\n");
    hsem_irq_enable(0, 1);
    nvic_enable(125);
    let mut acc = 0.0f32;
    for i in 1..=ROUNDS {
        wr(MAILBOX + 4, i);
        DONE.store(0, Ordering::SeqCst);
        ring(0, 3);
        while DONE.load(Ordering::SeqCst) == 0 {
            wfe();
        }
        let resp = rd(MAILBOX + 8);
        if resp != i + 1000 {
            print("M7: bad response ");
            print_u32(resp);
            print("\n");
            exit(1);
        }
        acc += core::hint::black_box(0.5f32) * i as f32;
        // LED: PI12 toggles each round (BSRR set / reset).
        wr(0x5802_2018, if i % 2 == 1 { 1 << 12 } else { 1 << 28 });
    }
    let expect = 0.5 * (ROUNDS * (ROUNDS + 1) / 2) as f32;
    if acc != expect || SCALED.load(Ordering::Relaxed) != (ROUNDS + 1000) * 4 {
        print("M7: FP state corrupted\n");
        exit(2);
    }
    print("M7: ");
    print_u32(ROUNDS);
    print(" round trips ok\n");
    exit(0)
}

#[exception]
fn SysTick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 125 {
        hsem_clear(0, 1);
        let r = rd(MAILBOX + 8);
        // FPU work inside the handler (the frame must keep the thread's FP registers intact).
        SCALED.store(
            (core::hint::black_box(r as f32) * 4.0) as u32,
            Ordering::Relaxed,
        );
        DONE.store(1, Ordering::SeqCst);
    } else {
        print("M7: unexpected interrupt\n");
        exit(4);
    }
}
