//! The chip as duet's platform: SRAM4, the HSEM doorbell, `WFE` sleep, the SysTick clock.

use core::sync::atomic::{AtomicBool, Ordering};

use duet::{Core, CpuId, Doorbell};
use duet_rpmsg::{Instant, OutOfBounds, Platform, SharedMemory};

use crate::hsem;

/// SRAM4's address (the link memory, Arduino layout).
pub const SRAM4_BASE: usize = 0x3800_0000;
/// SRAM4's size.
pub const SRAM4_SIZE: usize = 0x1_0000;

/// SRAM4 through volatile, bounds-checked accesses at offsets (no reference into it is ever
/// made: the other core writes it). Single `u16`/`u32` accesses must be aligned.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sram4;

/// `SRAM4_BASE + offset` if `offset..offset + len` lies in SRAM4 and `offset` is a multiple of
/// `align` (a power of two). Always inlined: with a constant `len` and `align` it is a compare
/// and a mask test, not a call per access.
#[inline(always)]
pub(crate) const fn check(offset: usize, len: usize, align: usize) -> Result<usize, OutOfBounds> {
    match offset.checked_add(len) {
        Some(end) if end <= SRAM4_SIZE && offset & (align - 1) == 0 => Ok(SRAM4_BASE + offset),
        _ => Err(OutOfBounds { offset, len }),
    }
}

/// Copies the whole 16-byte blocks of `n` bytes from `src` to `dst` with `LDM`/`STM` (four
/// words per instruction pair, as an ARM `memcpy` does) if both are 4-aligned, and returns how
/// many bytes it copied (0 if either is not aligned: `LDM`/`STM` fault on unaligned
/// addresses; the caller's word loop then takes them). The instructions are opaque to the
/// compiler, so the accesses to SRAM4 are never merged or elided, as with volatile ones.
///
/// # Safety
/// `src..src + n` must be readable and `dst..dst + n` writable, not overlapping.
#[cfg(all(target_arch = "arm", target_os = "none"))]
#[inline(always)]
unsafe fn bulk(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let blocks = n / 16;
    if blocks == 0 || (dst as usize | src as usize) & 3 != 0 {
        return 0;
    }
    // SAFETY: both ranges are valid for `16 * blocks <= n` bytes (the caller) and 4-aligned
    // (checked); the loop runs `blocks >= 1` times and clobbers only the named registers.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldm {s}!, {{r3, r4, r5, r12}}",
            "stm {d}!, {{r3, r4, r5, r12}}",
            "subs {k}, {k}, #1",
            "bne 2b",
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            k = inout(reg) blocks => _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            out("r12") _,
            options(nostack),
        );
    }
    blocks * 16
}

/// Elsewhere (host builds of this crate): nothing, the word loops copy everything.
///
/// # Safety
/// None needed; it touches no memory.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
#[inline(always)]
unsafe fn bulk(_dst: *mut u8, _src: *const u8, _n: usize) -> usize {
    0
}

impl SharedMemory for Sram4 {
    fn size(&self) -> usize {
        SRAM4_SIZE
    }
    /// Bytes up to a 4-aligned address, then 16-byte blocks with `LDM`/`STM` if `buf` is
    /// aligned there too, then whole words, then the last bytes (a
    /// word access moves four bytes for the cost of one: the stream's payloads go through
    /// here). `buf` is written with unaligned word stores (allowed on the M7/M4).
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let a = check(offset, buf.len(), 1)?;
        let n = buf.len();
        let d = buf.as_mut_ptr();
        let mut i = 0;
        while i < n && (a + i) & 3 != 0 {
            // SAFETY: `check` keeps the byte inside SRAM4, which is always mapped; `i < n`.
            unsafe {
                d.add(i)
                    .write(core::ptr::read_volatile((a + i) as *const u8))
            };
            i += 1;
        }
        // SAFETY: `a + i` is 4-aligned (past the head) and the range inside SRAM4 (`check`);
        // the destination range is inside `buf` (`n - i` bytes are left).
        i += unsafe { bulk(d.add(i), (a + i) as *const u8, n - i) };
        while n - i >= 4 {
            // SAFETY: `check` keeps `a + i .. a + i + 4` inside SRAM4 (always mapped) and `a + i`
            // is 4-aligned (past the head); the other side's 4 bytes are inside the slice.
            unsafe {
                let w = core::ptr::read_volatile((a + i) as *const u32);
                (d.add(i) as *mut u32).write_unaligned(w);
            }
            i += 4;
        }
        while i < n {
            // SAFETY: as for the head bytes.
            unsafe {
                d.add(i)
                    .write(core::ptr::read_volatile((a + i) as *const u8))
            };
            i += 1;
        }
        Ok(())
    }
    /// In the same pieces as `read` (unaligned word loads from `data`, aligned word stores).
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        let a = check(offset, data.len(), 1)?;
        let n = data.len();
        let s = data.as_ptr();
        let mut i = 0;
        while i < n && (a + i) & 3 != 0 {
            // SAFETY: `check` keeps the byte inside SRAM4, which is always mapped; `i < n`.
            unsafe { core::ptr::write_volatile((a + i) as *mut u8, s.add(i).read()) };
            i += 1;
        }
        // SAFETY: `a + i` is 4-aligned (past the head) and the range inside SRAM4 (`check`);
        // the source range is inside `data` (`n - i` bytes are left).
        i += unsafe { bulk((a + i) as *mut u8, s.add(i), n - i) };
        while n - i >= 4 {
            // SAFETY: `check` keeps `a + i .. a + i + 4` inside SRAM4 (always mapped) and `a + i`
            // is 4-aligned (past the head); the other side's 4 bytes are inside the slice.
            unsafe {
                let w = (s.add(i) as *const u32).read_unaligned();
                core::ptr::write_volatile((a + i) as *mut u32, w);
            }
            i += 4;
        }
        while i < n {
            // SAFETY: as for the head bytes.
            unsafe { core::ptr::write_volatile((a + i) as *mut u8, s.add(i).read()) };
            i += 1;
        }
        Ok(())
    }
    fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
        let a = check(offset, 2, 2)?;
        // SAFETY: inside SRAM4 and 2-aligned: one half-word access.
        Ok(unsafe { core::ptr::read_volatile(a as *const u16) })
    }
    fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
        let a = check(offset, 2, 2)?;
        // SAFETY: inside SRAM4 and 2-aligned: one half-word access.
        unsafe { core::ptr::write_volatile(a as *mut u16, value) };
        Ok(())
    }
    fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
        let a = check(offset, 4, 4)?;
        // SAFETY: inside SRAM4 and 4-aligned: one word access.
        Ok(unsafe { core::ptr::read_volatile(a as *const u32) })
    }
    fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        let a = check(offset, 4, 4)?;
        // SAFETY: inside SRAM4 and 4-aligned: one word access.
        unsafe { core::ptr::write_volatile(a as *mut u32, value) };
        Ok(())
    }
    fn fence(&self) {
        #[cfg(all(target_arch = "arm", target_os = "none"))]
        cortex_m::asm::dmb();
        #[cfg(not(all(target_arch = "arm", target_os = "none")))]
        core::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Set by the doorbell interrupt, consumed by [`Chip`]'s `wait`.
static RUNG: AtomicBool = AtomicBool::new(false);
/// Rung by the doorbell interrupt too, for async code (`Rpc::set_doorbell(doorbell())`).
static DOORBELL: Doorbell = Doorbell::new();

/// The doorbell the HSEM interrupt rings, for [`duet::Rpc::set_doorbell`] (async `run()` and
/// call futures).
pub fn doorbell() -> &'static Doorbell {
    &DOORBELL
}

/// Which core this code runs on, from `SCB->CPUID` (0xC27 Cortex-M7 -> `Cm7`, else `Cm4`).
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn cpu_id() -> CpuId {
    // SAFETY: CPUID is a read-only register of the core's SCB.
    CpuId::from_scb_cpuid(unsafe { (*cortex_m::peripheral::CPUID::PTR).base.read() })
}

/// Host builds (tests, docs): no SCB to read; reports the M7.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
pub fn cpu_id() -> CpuId {
    CpuId::Cm7
}

/// The doorbell interrupt's work (the M7's HSEM1 / IRQ 125, the M4's HSEM2 / IRQ 126):
/// acknowledges the HSEM status, records the ring for `wait`, rings [`doorbell`] and signals
/// an event (`SEV`) so a `WFE` that raced with the interrupt does not sleep.
pub fn on_doorbell_interrupt() {
    // SAFETY: on the chip; `acknowledge` reads MISR and writes ICR only.
    let regs = unsafe { hsem::PacHsem::new() };
    hsem::acknowledge(&regs, cpu_id());
    RUNG.store(true, Ordering::SeqCst);
    DOORBELL.ring();
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    cortex_m::asm::sev();
}

/// For a `DefaultHandler(irqn)`: handles the interrupt if it is this core's doorbell (125 on
/// the M7, 126 on the M4) and returns whether it was.
pub fn on_interrupt(irqn: i16) -> bool {
    if irqn == hsem::irq(cpu_id()) as i16 {
        on_doorbell_interrupt();
        true
    } else {
        false
    }
}

/// Sleeps until an interrupt or event (`WFE`; on the host, a spin hint).
pub fn sleep() {
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    cortex_m::asm::wfe();
    #[cfg(not(all(target_arch = "arm", target_os = "none")))]
    core::hint::spin_loop();
}

/// The chip as duet's platform, for one core. Made by `Chip::init` (on the chip) or
/// [`Chip::assume`].
#[derive(Clone, Copy, Debug)]
pub struct Chip {
    core: CpuId,
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[derive(Clone, Copy)]
struct Irq(u16);

#[cfg(all(target_arch = "arm", target_os = "none"))]
// SAFETY: `number` returns the core's HSEM interrupt number, a valid NVIC interrupt.
unsafe impl cortex_m::interrupt::InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

impl Chip {
    /// Sets up this core for duet: enables the HSEM clock (`RCC_AHB4ENR.HSEMEN`), on the M7
    /// makes SRAM4 non-cacheable ([`mpu`](crate::mpu)), starts the SysTick clock at
    /// [`CORE_HZ`](crate::board::CORE_HZ), enables the doorbell interrupt in HSEM (`CxIER`) and
    /// the NVIC. Call it once per core before creating the transport; calling it again only
    /// repeats the same writes.
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    pub fn init() -> Chip {
        let core = cpu_id();
        // SAFETY: the fixed RCC address; setting HSEMEN (bit 25) keeps the other bits.
        unsafe {
            let rcc = &*crate::pac::RCC::ptr();
            rcc.ahb4enr().modify(|_, w| w.hsemen().set_bit());
            let _ = rcc.ahb4enr().read();
        }
        if core == CpuId::Cm7 {
            crate::mpu::configure_sram4();
        }
        // CORE_HZ is a valid SysTick frequency (checked by the tests).
        let _ = crate::clock::start(crate::board::CORE_HZ);
        // SAFETY: on the chip.
        let regs = unsafe { hsem::PacHsem::new() };
        hsem::enable(&regs, core);
        // SAFETY: the handler (`on_doorbell_interrupt`) is safe to run at any time.
        unsafe { cortex_m::peripheral::NVIC::unmask(Irq(hsem::irq(core))) };
        Chip { core }
    }

    /// A chip value for `core` without touching the hardware (host tests, or when the set-up
    /// was done by other code).
    pub const fn assume(core: CpuId) -> Chip {
        Chip { core }
    }

    /// The core this value was made for.
    pub const fn core(&self) -> CpuId {
        self.core
    }
}

impl Core for Chip {
    fn cpu_id(&self) -> CpuId {
        self.core
    }
}

impl Platform for Chip {
    type Memory = Sram4;

    fn memory(&self) -> &Sram4 {
        &Sram4
    }

    /// Rings the peer (HSEM 0 from the M7, 1 from the M4) after a barrier, so the peer sees
    /// the shared-memory writes before the interrupt. A busy semaphore delays the ring to its
    /// holder's release; the peer drains its rings anyway.
    fn notify(&self) {
        #[cfg(all(target_arch = "arm", target_os = "none"))]
        cortex_m::asm::dsb();
        // SAFETY: on the chip; `ring` is the only reader of RLR.
        let regs = unsafe { hsem::PacHsem::new() };
        let _ = hsem::ring(&regs, self.core);
    }

    /// Sleeps in `WFE` until the doorbell interrupt has rung or `deadline` passes. The SysTick
    /// interrupt wakes the core every millisecond to check the deadline.
    fn wait(&self, deadline: Instant) -> bool {
        // The time is below `next` while the tick count stays `tick`: the clock is read only
        // if the deadline may come first (else the tick count, after a tick, tells), so a
        // wake-up by anything else (an event left from an interrupt) costs a load.
        let (mut tick, mut next) = (0, Instant::MAX);
        loop {
            if RUNG.swap(false, Ordering::SeqCst) {
                return true;
            }
            if deadline < next || crate::clock::ticks() != tick {
                (tick, next) = crate::clock::tick_due();
                if deadline < next {
                    let now;
                    (now, tick, next) = crate::clock::now_ticked();
                    if now >= deadline {
                        return false;
                    }
                }
            }
            sleep();
        }
    }

    fn now(&self) -> Instant {
        crate::clock::now()
    }
}
