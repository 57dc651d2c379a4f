//! Register-level helpers shared by the emulator's self-test images (no HAL on purpose: the
//! images poke exactly the registers the emulator models).
#![no_std]

use core::ptr::{read_volatile, write_volatile};

/// USART1 interrupt and status register.
const USART1_ISR: *const u32 = 0x4001_101C as _;
/// USART1 transmit data register.
const USART1_TDR: *mut u32 = 0x4001_1028 as _;
/// HSEM base.
const HSEM: usize = 0x5802_6400;

/// Mailbox in the last 256 bytes of SRAM4: ready flag, request, response.
pub const MAILBOX: usize = 0x3800_FF00;
/// Value the M4 writes to the ready word once it runs.
pub const READY: u32 = 0xC0DE;

/// Reads a word register.
pub fn rd(addr: usize) -> u32 {
    // SAFETY: callers pass the address of a device register or of the shared mailbox.
    unsafe { read_volatile(addr as *const u32) }
}

/// Writes a word register.
pub fn wr(addr: usize, v: u32) {
    // SAFETY: callers pass the address of a device register or of the shared mailbox.
    unsafe { write_volatile(addr as *mut u32, v) }
}

/// Writes one byte to USART1 once TXE is set.
pub fn putc(b: u8) {
    // SAFETY: USART1 registers are device memory on the STM32H747.
    unsafe {
        while read_volatile(USART1_ISR) & (1 << 7) == 0 {}
        write_volatile(USART1_TDR, b as u32);
    }
}

/// Writes a string to USART1.
pub fn print(s: &str) {
    s.bytes().for_each(putc);
}

/// Writes `v` in decimal to USART1.
pub fn print_u32(mut v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[i..].iter().copied().for_each(putc);
}

/// Ends the run through semihosting (SYS_EXIT_EXTENDED with the code).
pub fn exit(code: u32) -> ! {
    let block = [0x20026u32, code];
    loop {
        // SAFETY: BKPT 0xAB is the semihosting call; the block lives across the call.
        unsafe {
            core::arch::asm!("bkpt 0xAB", inout("r0") 0x20u32 => _, in("r1") block.as_ptr(), options(nostack));
        }
    }
}

/// Waits for an event.
pub fn wfe() {
    // SAFETY: a hint instruction.
    unsafe { core::arch::asm!("wfe", options(nomem, nostack)) }
}

/// Signals an event to both cores.
pub fn sev() {
    // SAFETY: a hint instruction.
    unsafe { core::arch::asm!("sev", options(nomem, nostack)) }
}

/// Enables interrupts (clears PRIMASK).
pub fn enable_interrupts() {
    // SAFETY: the images are written to run with interrupts enabled.
    unsafe { core::arch::asm!("cpsie i", options(nomem, nostack)) }
}

/// Enables NVIC interrupt `irq`.
pub fn nvic_enable(irq: u32) {
    wr(0xE000_E100 + 4 * (irq as usize / 32), 1 << (irq % 32));
}

/// Takes semaphore `sem` with the 2-step procedure (process 0); true if this core got it.
pub fn hsem_take(sem: usize, core_id: u32) -> bool {
    wr(HSEM + 4 * sem, (1 << 31) | (core_id << 8));
    rd(HSEM + 4 * sem) == (1 << 31) | (core_id << 8)
}

/// Releases semaphore `sem` (process 0).
pub fn hsem_release(sem: usize, core_id: u32) {
    wr(HSEM + 4 * sem, core_id << 8);
}

/// Rings the doorbell `sem`: take then release, which raises the peer's HSEM interrupt.
pub fn ring(sem: usize, core_id: u32) {
    while !hsem_take(sem, core_id) {}
    hsem_release(sem, core_id);
}

/// Enables the HSEM interrupt of semaphore `sem` on line `line` (0 = M7/C1, 1 = M4/C2).
pub fn hsem_irq_enable(line: usize, sem: usize) {
    let ier = HSEM + 0x100 + 0x10 * line;
    wr(ier, rd(ier) | (1 << sem));
}

/// Clears the HSEM status of semaphore `sem` on line `line`.
pub fn hsem_clear(line: usize, sem: usize) {
    wr(HSEM + 0x104 + 0x10 * line, 1 << sem);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    print("panic\n");
    exit(101)
}
