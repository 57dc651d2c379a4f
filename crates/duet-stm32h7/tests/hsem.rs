//! The doorbell sequences against a model of the HSEM block: 1-step lock by reading RLR,
//! 2-step lock by writing R, release only by the owner (COREID and PROCID), and a free event
//! that sets the semaphore's bit in both cores' status, seen by a core through its enable mask.

use std::cell::Cell;

use duet::CpuId;
use duet_stm32h7::hsem::{
    acknowledge, disable, enable, incoming, irq, locked_by, outgoing, release_value, ring, Busy,
    HsemRegs, LOCK, M4_TO_M7, M7_TO_M4,
};

/// The shared HSEM state.
#[derive(Default)]
struct Hsem {
    r: [Cell<u32>; 32],
    ier: [Cell<u32>; 2],
    isr: [Cell<u32>; 2],
    rlr_reads: Cell<u32>,
}

fn slot(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => 0,
        CpuId::Cm4 => 1,
    }
}

impl Hsem {
    fn view(&self, core: CpuId) -> View<'_> {
        View { hw: self, core }
    }

    fn free(&self, sem: usize) {
        self.r[sem].set(0);
        for s in &self.isr {
            s.set(s.get() | 1 << sem);
        }
    }

    /// Whether `core`'s HSEM interrupt line is raised.
    fn irq_pending(&self, core: CpuId) -> bool {
        self.isr[slot(core)].get() & self.ier[slot(core)].get() != 0
    }
}

/// One core's bus view of the HSEM.
struct View<'a> {
    hw: &'a Hsem,
    core: CpuId,
}

impl View<'_> {
    /// A 2-step lock with `procid` (what other software on the core, such as mbed's TRNG,
    /// does); returns whether the lock was taken.
    fn lock_2step(&self, sem: usize, procid: u32) -> bool {
        self.write_r(sem, LOCK | u32::from(self.core.as_u8()) << 8 | procid);
        self.read_r(sem) == LOCK | u32::from(self.core.as_u8()) << 8 | procid
    }
}

impl HsemRegs for View<'_> {
    fn read_rlr(&self, sem: usize) -> u32 {
        self.hw.rlr_reads.set(self.hw.rlr_reads.get() + 1);
        let r = &self.hw.r[sem];
        if r.get() & LOCK == 0 {
            r.set(locked_by(self.core));
        }
        r.get()
    }
    fn read_r(&self, sem: usize) -> u32 {
        self.hw.r[sem].get()
    }
    fn write_r(&self, sem: usize, value: u32) {
        let r = &self.hw.r[sem];
        let own_core = (value >> 8) & 0xF == u32::from(self.core.as_u8());
        if !own_core {
            return; // the bus master's id must match COREID: ignored
        }
        if value & LOCK != 0 {
            if r.get() & LOCK == 0 {
                r.set(value & (LOCK | 0xFFF));
            }
        } else if r.get() & LOCK != 0 && r.get() & 0xFFF == value & 0xFFF {
            self.hw.free(sem);
        }
    }
    fn read_ier(&self, core: CpuId) -> u32 {
        assert_eq!(
            core, self.core,
            "a core only uses its own interrupt registers"
        );
        self.hw.ier[slot(core)].get()
    }
    fn write_ier(&self, core: CpuId, value: u32) {
        assert_eq!(
            core, self.core,
            "a core only uses its own interrupt registers"
        );
        self.hw.ier[slot(core)].set(value);
    }
    fn write_icr(&self, core: CpuId, value: u32) {
        assert_eq!(
            core, self.core,
            "a core only uses its own interrupt registers"
        );
        let s = &self.hw.isr[slot(core)];
        s.set(s.get() & !value);
    }
    fn read_misr(&self, core: CpuId) -> u32 {
        assert_eq!(
            core, self.core,
            "a core only uses its own interrupt registers"
        );
        self.hw.isr[slot(core)].get() & self.hw.ier[slot(core)].get()
    }
}

#[test]
fn semaphores_and_interrupts_are_the_arduino_ones() {
    assert_eq!(outgoing(CpuId::Cm7), M7_TO_M4);
    assert_eq!(outgoing(CpuId::Cm4), M4_TO_M7);
    assert_eq!((M7_TO_M4, M4_TO_M7), (0, 1));
    assert_eq!(incoming(CpuId::Cm4), 0);
    assert_eq!(incoming(CpuId::Cm7), 1);
    assert_eq!((irq(CpuId::Cm7), irq(CpuId::Cm4)), (125, 126));
    // The values of the spec: RLR 0x8000_0300 when the M7 holds it, R release 0x300 / 0x100.
    assert_eq!(locked_by(CpuId::Cm7), 0x8000_0300);
    assert_eq!(release_value(CpuId::Cm7), 0x300);
    assert_eq!(locked_by(CpuId::Cm4), 0x8000_0100);
    assert_eq!(release_value(CpuId::Cm4), 0x100);
}

#[test]
fn m7_rings_the_m4_and_the_m4_acknowledges() {
    let hw = Hsem::default();
    let (m7, m4) = (hw.view(CpuId::Cm7), hw.view(CpuId::Cm4));
    enable(&m7, CpuId::Cm7);
    enable(&m4, CpuId::Cm4);
    assert_eq!(
        hw.ier[0].get(),
        1 << 1,
        "the M7 enables semaphore 1 in C1IER"
    );
    assert_eq!(
        hw.ier[1].get(),
        1 << 0,
        "the M4 enables semaphore 0 in C2IER"
    );

    assert_eq!(ring(&m7, CpuId::Cm7), Ok(()));
    assert_eq!(
        hw.r[0].get(),
        0,
        "the semaphore is free again after the ring"
    );
    assert_eq!(hw.rlr_reads.get(), 1, "one RLR read per ring");
    assert!(hw.irq_pending(CpuId::Cm4));
    assert!(!hw.irq_pending(CpuId::Cm7), "the M7 does not ring itself");

    assert!(acknowledge(&m4, CpuId::Cm4));
    assert!(!hw.irq_pending(CpuId::Cm4));
    assert_eq!(hw.ier[1].get(), 1, "the enable stays set for the next ring");
    assert!(
        !acknowledge(&m4, CpuId::Cm4),
        "nothing pending: no ring reported"
    );
}

#[test]
fn m4_rings_the_m7() {
    let hw = Hsem::default();
    let (m7, m4) = (hw.view(CpuId::Cm7), hw.view(CpuId::Cm4));
    enable(&m7, CpuId::Cm7);
    enable(&m4, CpuId::Cm4);
    assert_eq!(ring(&m4, CpuId::Cm4), Ok(()));
    assert_eq!(hw.r[1].get(), 0);
    assert!(hw.irq_pending(CpuId::Cm7));
    assert!(!hw.irq_pending(CpuId::Cm4));
    assert!(acknowledge(&m7, CpuId::Cm7));
    assert!(!hw.irq_pending(CpuId::Cm7));
}

#[test]
fn rings_before_the_acknowledge_merge_into_one_interrupt() {
    let hw = Hsem::default();
    let (m7, m4) = (hw.view(CpuId::Cm7), hw.view(CpuId::Cm4));
    enable(&m4, CpuId::Cm4);
    for _ in 0..3 {
        assert_eq!(ring(&m7, CpuId::Cm7), Ok(()));
    }
    assert!(acknowledge(&m4, CpuId::Cm4));
    assert!(!hw.irq_pending(CpuId::Cm4));
    // A ring after the acknowledge raises it again.
    assert_eq!(ring(&m7, CpuId::Cm7), Ok(()));
    assert!(hw.irq_pending(CpuId::Cm4));
}

#[test]
fn busy_semaphore_delays_the_ring_to_its_release() {
    let hw = Hsem::default();
    let (m7, m4) = (hw.view(CpuId::Cm7), hw.view(CpuId::Cm4));
    enable(&m4, CpuId::Cm4);
    // Other M7 software (mbed's TRNG) holds semaphore 0 with PROCID 5.
    assert!(m7.lock_2step(0, 5));
    let held = hw.r[0].get();
    assert_eq!(ring(&m7, CpuId::Cm7), Err(Busy(held)));
    assert_eq!(hw.r[0].get(), held, "the ring does not disturb the holder");
    assert!(!hw.irq_pending(CpuId::Cm4));
    // The holder's release is the free event the M4 gets: the ring is late, not lost.
    m7.write_r(0, release_value(CpuId::Cm7) | 5);
    assert_eq!(hw.r[0].get(), 0);
    assert!(hw.irq_pending(CpuId::Cm4));
}

#[test]
fn semaphore_held_by_the_peer_is_busy_and_left_alone() {
    let hw = Hsem::default();
    let (m7, m4) = (hw.view(CpuId::Cm7), hw.view(CpuId::Cm4));
    assert!(m4.lock_2step(0, 0));
    assert_eq!(ring(&m7, CpuId::Cm7), Err(Busy(locked_by(CpuId::Cm4))));
    assert_eq!(hw.r[0].get(), locked_by(CpuId::Cm4));
}

#[test]
fn enable_drops_a_stale_status_and_disable_masks() {
    let hw = Hsem::default();
    let (m7, m4) = (hw.view(CpuId::Cm7), hw.view(CpuId::Cm4));
    assert_eq!(ring(&m7, CpuId::Cm7), Ok(())); // before the M4 enabled anything
    assert_ne!(hw.isr[1].get() & 1, 0, "the raw status is set");
    enable(&m4, CpuId::Cm4);
    assert!(
        !hw.irq_pending(CpuId::Cm4),
        "the stale ring is cleared at enable"
    );
    disable(&m4, CpuId::Cm4);
    assert_eq!(ring(&m7, CpuId::Cm7), Ok(()));
    assert!(!hw.irq_pending(CpuId::Cm4), "disabled: no interrupt");
    assert!(!acknowledge(&m4, CpuId::Cm4));
}

#[test]
fn enable_keeps_other_enable_bits() {
    let hw = Hsem::default();
    let m4 = hw.view(CpuId::Cm4);
    hw.ier[1].set(1 << 7);
    enable(&m4, CpuId::Cm4);
    assert_eq!(hw.ier[1].get(), 1 << 7 | 1);
    disable(&m4, CpuId::Cm4);
    assert_eq!(hw.ier[1].get(), 1 << 7);
}
