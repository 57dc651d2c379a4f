//! The doorbells: hardware semaphores (HSEM at 0x5802_6400) used as interrupts between the
//! cores, as Arduino's `RPC` and MicroPython do (spec §1, "Notifications").
//!
//! - The M7 rings the M4 with semaphore 0, the M4 rings the M7 with semaphore 1.
//! - Ringing = take the semaphore with a 1-step lock (read `RLR`, which locks it if free) and
//!   release it at once (write `R` with the own COREID, PROCID 0). The release sets the
//!   semaphore's bit in both cores' interrupt status; the receiving core has enabled it in its
//!   own `CxIER`, so it gets its HSEM interrupt (the M7: HSEM1, IRQ 125; the M4: HSEM2, IRQ 126).
//! - Receiving = read the own `CxMISR`, write the bits to `CxICR`. The enable stays set.
//!
//! Traps avoided:
//! - Reading `RLR` *locks* a free semaphore: only [`ring`] reads it, and always releases what it
//!   locked. Status is read from `R`, which has no side effect.
//! - A ring is only a hint. If the semaphore is held by someone else (mbed's TRNG also uses
//!   semaphore 0), the 1-step lock fails and [`ring`] returns [`Busy`]; the holder's release
//!   then raises the peer's interrupt anyway. And the receiving side always drains the rings
//!   after every wake (duet-rpmsg does), so a lost ring delays a message, never strands it.
//!
//! The logic is written against [`HsemRegs`] so it is tested off-chip against a model;
//! [`PacHsem`] is the chip's implementation through the `stm32h7` PAC.

use duet::CpuId;

/// Semaphore the M7 rings the M4 with.
pub const M7_TO_M4: usize = 0;
/// Semaphore the M4 rings the M7 with.
pub const M4_TO_M7: usize = 1;
/// `LOCK` bit of `R`/`RLR`.
pub const LOCK: u32 = 1 << 31;
/// Shift of the COREID field in `R`/`RLR` (bits 11:8).
pub const COREID_SHIFT: u32 = 8;
/// The M7's doorbell interrupt (HSEM1), NVIC number.
pub const IRQ_M7: u16 = 125;
/// The M4's doorbell interrupt (HSEM2), NVIC number.
pub const IRQ_M4: u16 = 126;

/// The semaphore `core` rings its peer with.
pub const fn outgoing(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => M7_TO_M4,
        CpuId::Cm4 => M4_TO_M7,
    }
}

/// The semaphore `core` is rung with (the peer's outgoing one).
pub const fn incoming(core: CpuId) -> usize {
    outgoing(core.peer())
}

/// `core`'s doorbell interrupt number.
pub const fn irq(core: CpuId) -> u16 {
    match core {
        CpuId::Cm7 => IRQ_M7,
        CpuId::Cm4 => IRQ_M4,
    }
}

/// What `RLR` reads when `core` (PROCID 0) holds the semaphore: `LOCK | COREID << 8`.
pub const fn locked_by(core: CpuId) -> u32 {
    LOCK | ((core.as_u8() as u32) << COREID_SHIFT)
}

/// What `core` writes to `R` to release a semaphore it holds with PROCID 0: `COREID << 8`.
pub const fn release_value(core: CpuId) -> u32 {
    (core.as_u8() as u32) << COREID_SHIFT
}

/// The HSEM registers the doorbells use, as seen by one core (`core` selects the C1 or C2
/// interrupt registers: C1 belongs to the M7, C2 to the M4).
pub trait HsemRegs {
    /// Reads `RLR[sem]`: locks the semaphore for the reading core (PROCID 0) if it was free, and
    /// returns the value after the lock attempt.
    fn read_rlr(&self, sem: usize) -> u32;
    /// Reads `R[sem]` (no side effect).
    fn read_r(&self, sem: usize) -> u32;
    /// Writes `R[sem]` (a 2-step lock with `LOCK` set, a release without it).
    fn write_r(&self, sem: usize, value: u32);
    /// Reads `core`'s interrupt enable register (`C1IER`/`C2IER`).
    fn read_ier(&self, core: CpuId) -> u32;
    /// Writes `core`'s interrupt enable register.
    fn write_ier(&self, core: CpuId, value: u32);
    /// Writes `core`'s interrupt clear register (`C1ICR`/`C2ICR`; 1 clears a status bit).
    fn write_icr(&self, core: CpuId, value: u32);
    /// Reads `core`'s masked interrupt status (`C1MISR`/`C2MISR`).
    fn read_misr(&self, core: CpuId) -> u32;
}

/// [`ring`] found the semaphore held by another core or process; the value of `RLR` it read.
/// The holder's release raises the peer's interrupt, so the ring is delayed, not lost.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Busy(pub u32);

/// Rings `core`'s peer: 1-step lock of the outgoing semaphore, then release. Data written to
/// shared memory before must be visible first (the caller issues the barrier).
pub fn ring<R: HsemRegs + ?Sized>(regs: &R, core: CpuId) -> Result<(), Busy> {
    let sem = outgoing(core);
    let got = regs.read_rlr(sem);
    if got != locked_by(core) {
        return Err(Busy(got));
    }
    regs.write_r(sem, release_value(core));
    Ok(())
}

/// Enables `core`'s doorbell interrupt in its `CxIER`, clearing a stale status bit first (a
/// ring from before is not needed: the receiver drains the rings after enabling).
pub fn enable<R: HsemRegs + ?Sized>(regs: &R, core: CpuId) {
    let bit = 1 << incoming(core);
    regs.write_icr(core, bit);
    let ier = regs.read_ier(core);
    regs.write_ier(core, ier | bit);
}

/// Disables `core`'s doorbell interrupt (the ring still sets the raw status).
pub fn disable<R: HsemRegs + ?Sized>(regs: &R, core: CpuId) {
    let bit = 1 << incoming(core);
    let ier = regs.read_ier(core);
    regs.write_ier(core, ier & !bit);
}

/// The interrupt handler's register work: reads `core`'s masked status and clears every set
/// bit (this core's HSEM interrupt belongs to duet). Returns whether the doorbell bit was set.
pub fn acknowledge<R: HsemRegs + ?Sized>(regs: &R, core: CpuId) -> bool {
    let misr = regs.read_misr(core);
    if misr != 0 {
        regs.write_icr(core, misr);
    }
    misr & (1 << incoming(core)) != 0
}

/// [`HsemRegs`] through the PAC (the chip's HSEM block at 0x5802_6400).
pub struct PacHsem {
    _private: (),
}

impl PacHsem {
    /// The chip's HSEM.
    ///
    /// # Safety
    /// Only on an STM32H747. Reading `RLR` locks semaphores: only [`ring`] may use
    /// [`read_rlr`](HsemRegs::read_rlr).
    pub const unsafe fn new() -> Self {
        PacHsem { _private: () }
    }

    fn regs(&self) -> &'static crate::pac::hsem::RegisterBlock {
        // SAFETY: the PAC's fixed, always-mapped HSEM address; registers are accessed through
        // volatile cells only.
        unsafe { &*crate::pac::HSEM::ptr() }
    }
}

impl HsemRegs for PacHsem {
    fn read_rlr(&self, sem: usize) -> u32 {
        self.regs().rlr(sem).read().bits()
    }
    fn read_r(&self, sem: usize) -> u32 {
        self.regs().r(sem).read().bits()
    }
    fn write_r(&self, sem: usize, value: u32) {
        // SAFETY: any value is a valid write to R (a lock or release attempt).
        self.regs().r(sem).write(|w| unsafe { w.bits(value) });
    }
    fn read_ier(&self, core: CpuId) -> u32 {
        match core {
            CpuId::Cm7 => self.regs().c1ier().read().bits(),
            CpuId::Cm4 => self.regs().c2ier().read().bits(),
        }
    }
    fn write_ier(&self, core: CpuId, value: u32) {
        match core {
            // SAFETY: every bit of CxIER is an enable; any value is valid.
            CpuId::Cm7 => self.regs().c1ier().write(|w| unsafe { w.bits(value) }),
            // SAFETY: as above.
            CpuId::Cm4 => self.regs().c2ier().write(|w| unsafe { w.bits(value) }),
        };
    }
    fn write_icr(&self, core: CpuId, value: u32) {
        match core {
            // SAFETY: CxICR bits are write-1-to-clear; any value is valid.
            CpuId::Cm7 => self.regs().c1icr().write(|w| unsafe { w.bits(value) }),
            // SAFETY: as above.
            CpuId::Cm4 => self.regs().c2icr().write(|w| unsafe { w.bits(value) }),
        };
    }
    fn read_misr(&self, core: CpuId) -> u32 {
        match core {
            CpuId::Cm7 => self.regs().c1misr().read().bits(),
            CpuId::Cm4 => self.regs().c2misr().read().bits(),
        }
    }
}
