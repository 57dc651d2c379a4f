//! The M7's MPU: SRAM4 (the link memory) as normal, non-cacheable, shareable, execute-never
//! memory, so that enabling the M7's data cache never hides the M4's writes (the M4 has no data
//! cache). All shared-memory accesses of duet-rpmsg are aligned (normal memory would allow
//! unaligned ones too; device memory would fault on them, which is why normal memory is used).

/// MPU region number used for SRAM4 (the highest of the M4's 8 regions, free on the M7's 16).
pub const SRAM4_REGION: u32 = 7;
/// SRAM4 base address.
pub const SRAM4_BASE: u32 = 0x3800_0000;
/// SRAM4 size (64 KiB).
pub const SRAM4_SIZE: u32 = 0x1_0000;

/// Attribute fields of an `MPU_RASR` value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attributes {
    /// Execute never.
    pub xn: bool,
    /// Access permissions (3 = full access).
    pub ap: u8,
    /// Type extension (1 with C = B = 0: normal non-cacheable).
    pub tex: u8,
    /// Shareable.
    pub s: bool,
    /// Cacheable.
    pub c: bool,
    /// Bufferable.
    pub b: bool,
}

/// Normal, non-cacheable, shareable, full access, execute never: what SRAM4 gets.
pub const NON_CACHEABLE: Attributes = Attributes {
    xn: true,
    ap: 3,
    tex: 1,
    s: true,
    c: false,
    b: false,
};

/// The `MPU_RASR` value for an enabled region of `size` bytes (a power of two from 32) with
/// `attr`; `None` for an invalid size.
pub const fn rasr(size: u32, attr: Attributes) -> Option<u32> {
    if size < 32 || !size.is_power_of_two() {
        return None;
    }
    let size_field = size.trailing_zeros() - 1;
    Some(
        (attr.xn as u32) << 28
            | ((attr.ap as u32) & 7) << 24
            | ((attr.tex as u32) & 7) << 19
            | (attr.s as u32) << 18
            | (attr.c as u32) << 17
            | (attr.b as u32) << 16
            | size_field << 1
            | 1,
    )
}

/// `MPU_RASR` for SRAM4.
pub const SRAM4_RASR: u32 = match rasr(SRAM4_SIZE, NON_CACHEABLE) {
    Some(v) => v,
    None => panic!("SRAM4 region size"),
};

/// Programs region [`SRAM4_REGION`] for SRAM4 and enables the MPU with the default map for
/// everything else (`PRIVDEFENA`). Call it on the M7 before the caches are enabled.
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn configure_sram4() {
    // SAFETY: duet owns this MPU region; the other regions are left as they are, and the
    // barriers make the new map effective before any later access.
    unsafe {
        let mpu = &*cortex_m::peripheral::MPU::PTR;
        cortex_m::asm::dmb();
        mpu.rnr.write(SRAM4_REGION);
        mpu.rbar.write(SRAM4_BASE);
        mpu.rasr.write(SRAM4_RASR);
        // ENABLE | PRIVDEFENA
        mpu.ctrl.write(0b101);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
    }
}
