//! Booting the M4 from the M7 (spec §2): `SYSCFG_UR3.BCM4_ADD0` takes the image address, then
//! `RCC_GCR.BOOT_C2` releases the M4, which loads its stack pointer and reset vector from there.
//!
//! The logic is written against [`BootRegs`] so it can be tested off-chip against a register
//! model; [`PacBoot`] is the chip's implementation through the `stm32h7` PAC.

use duet::{BootError, BootRemote};

/// Bit 22 of `FLASH_OPTSR_CUR` (0x5200_201C): the option bit that makes the M4 boot by itself at
/// reset (`BCM4`). Arduino's boards ship with it cleared.
pub const OPTSR_BCM4: u32 = 1 << 22;
/// Bit 3 of `RCC_GCR` (0x5802_44A0): `BOOT_C2`, forces the M4 to boot. Set once; only a system
/// reset clears it.
pub const GCR_BOOT_C2: u32 = 1 << 3;
/// `SYSCFG_UR3` (0x5800_070C) bits 31:16: `BCM4_ADD0`, the M4 boot address bits 31:16. (The
/// PAC names this half `bcm7_add1` in its SVD; the reference manual and ST's HAL put
/// `BCM4_ADD0` here, so the field is written as raw bits.)
pub const UR3_BCM4_ADD0_SHIFT: u32 = 16;
/// `RCC_AHB2ENR` bits 29..31: the D2 SRAM1, SRAM2 and SRAM3 clocks (the M4 image's RAM), set
/// for the M7 before the M4 starts so the memory stays clocked whichever core sleeps.
pub const AHB2ENR_D2SRAM123: u32 = 0b111 << 29;

/// How the 2 MiB of flash are split between the cores, and so where the M4 image lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlashSplit {
    /// 1 MiB + 1 MiB: the M4 image at 0x0810_0000 (flash bank 2; Arduino's "50_50", the default).
    Half,
    /// 1.5 MiB + 0.5 MiB: the M4 image at 0x0818_0000 (Arduino's "75_25", MicroPython's default).
    ThreeQuarters,
}

impl FlashSplit {
    /// The M4 image's address (its vector table), the value to boot.
    pub const fn m4_address(self) -> u32 {
        match self {
            FlashSplit::Half => 0x0810_0000,
            FlashSplit::ThreeQuarters => 0x0818_0000,
        }
    }

    /// Bytes of flash for the M7 image (from 0x0800_0000; less the Arduino bootloader's
    /// 256 KiB when it is kept).
    pub const fn m7_flash(self) -> u32 {
        self.m4_address() - 0x0800_0000
    }

    /// Bytes of flash for the M4 image (up to the end of flash, 0x0820_0000).
    pub const fn m4_flash(self) -> u32 {
        0x0820_0000 - self.m4_address()
    }
}

/// Why the M4 could not be booted; each variant says what to do about it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum M4BootError {
    /// The `BCM4` option bit is set: the M4 boots by itself at reset, from the option bytes'
    /// `BOOT_CM4_ADD0`, not from the address given here. Either flash the M4 image where that
    /// option points and just wait for it, or clear `BCM4` (STM32CubeProgrammer:
    /// `-ob BCM4=0`) and reset, so that the M7 boots it.
    AutobootEnabled,
    /// `RCC_GCR.BOOT_C2` is already set: the M4 was started since the last system reset (for
    /// example the M7 was restarted by a debugger without a system reset). It cannot be started
    /// again; do a system reset (the reset button, or `probe-rs reset`).
    AlreadyStarted,
    /// The address is not 64 KiB aligned (`BCM4_ADD0` holds only bits 31:16).
    Misaligned,
    /// The address is not in memory the M4 can boot from (flash 0x0800_0000..0x0820_0000,
    /// AXI SRAM, D2 SRAM through either alias, SRAM4, or external memory from 0x6000_0000).
    NotBootable,
    /// This code runs on the M4: only the M7 boots the other core.
    NotM7,
}

impl M4BootError {
    /// One line for a console: what happened and what to do.
    pub const fn message(self) -> &'static str {
        match self {
            M4BootError::AutobootEnabled => {
                "the BCM4 option bit is set, so the M4 boots by itself from its option-byte \
                 address; clear BCM4 (STM32CubeProgrammer -ob BCM4=0) and reset, or flash the \
                 M4 image at that address"
            }
            M4BootError::AlreadyStarted => {
                "RCC_GCR.BOOT_C2 is already set: the M4 was started since the last system reset; \
                 reset the board (reset button or probe-rs reset) to boot it again"
            }
            M4BootError::Misaligned => "the M4 image address must be 64 KiB aligned",
            M4BootError::NotBootable => "the M4 cannot boot from that address",
            M4BootError::NotM7 => "only the M7 can boot the M4",
        }
    }

    /// The platform-independent error of duet's [`BootRemote`].
    pub const fn to_boot_error(self) -> BootError {
        match self {
            M4BootError::AutobootEnabled | M4BootError::AlreadyStarted => BootError::AlreadyRunning,
            M4BootError::Misaligned | M4BootError::NotBootable => BootError::BadAddress,
            M4BootError::NotM7 => BootError::Unsupported,
        }
    }
}

impl core::fmt::Display for M4BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// The `BCM4_ADD0` value (address bits 31:16) for booting the M4 at `address`: checks the
/// 64 KiB alignment and that the address is memory the M4 can boot from.
pub const fn boot_address_bits(address: u32) -> Result<u16, M4BootError> {
    if address & 0xFFFF != 0 {
        return Err(M4BootError::Misaligned);
    }
    let bootable = matches!(address,
        0x0800_0000..=0x081F_FFFF // flash, both banks
        | 0x1000_0000..=0x1004_7FFF // D2 SRAM1-3 (the M4's alias)
        | 0x2400_0000..=0x2407_FFFF // AXI SRAM
        | 0x3000_0000..=0x3004_7FFF // D2 SRAM1-3
        | 0x3800_0000..=0x3800_FFFF // SRAM4
        | 0x6000_0000..=0xDFFF_FFFF // FMC / QSPI external memory
    );
    if !bootable {
        return Err(M4BootError::NotBootable);
    }
    Ok((address >> UR3_BCM4_ADD0_SHIFT) as u16)
}

/// The registers the boot sequence touches; implemented by [`PacBoot`] on the chip and by a
/// register model in tests.
pub trait BootRegs {
    /// `FLASH_OPTSR_CUR` (0x5200_201C).
    fn optsr_cur(&self) -> u32;
    /// `RCC_GCR` (0x5802_44A0).
    fn gcr(&self) -> u32;
    /// Writes `RCC_GCR`.
    fn write_gcr(&mut self, value: u32);
    /// `SYSCFG_UR3` (0x5800_070C).
    fn ur3(&self) -> u32;
    /// Writes `SYSCFG_UR3`.
    fn write_ur3(&mut self, value: u32);
    /// `RCC_AHB2ENR` (0x5802_44DC, the running core's alias).
    fn ahb2enr(&self) -> u32;
    /// Writes `RCC_AHB2ENR`.
    fn write_ahb2enr(&mut self, value: u32);
}

/// Whether the M4 is already running or will start by itself: `BCM4` checked first (it also
/// explains a set `BOOT_C2`), then `BOOT_C2`. `Ok(())` when the M7 may boot it.
pub fn check_m4_stopped<R: BootRegs + ?Sized>(regs: &R) -> Result<(), M4BootError> {
    if regs.optsr_cur() & OPTSR_BCM4 != 0 {
        return Err(M4BootError::AutobootEnabled);
    }
    if regs.gcr() & GCR_BOOT_C2 != 0 {
        return Err(M4BootError::AlreadyStarted);
    }
    Ok(())
}

/// Boots the M4 at `address`: validates it, refuses if the M4 runs or will run by itself
/// ([`check_m4_stopped`]), enables the D2 SRAM clocks ([`AHB2ENR_D2SRAM123`]), writes
/// `BCM4_ADD0` (keeping `UR3`'s other half), then sets `BOOT_C2` last. Nothing is written on
/// error.
pub fn boot_m4<R: BootRegs + ?Sized>(regs: &mut R, address: u32) -> Result<(), M4BootError> {
    let bits = boot_address_bits(address)?;
    check_m4_stopped(regs)?;
    let en = regs.ahb2enr();
    regs.write_ahb2enr(en | AHB2ENR_D2SRAM123);
    let ur3 = (regs.ur3() & 0x0000_FFFF) | (u32::from(bits) << UR3_BCM4_ADD0_SHIFT);
    regs.write_ur3(ur3);
    cortex_dsb();
    let gcr = regs.gcr();
    regs.write_gcr(gcr | GCR_BOOT_C2);
    Ok(())
}

/// Orders the `UR3` write before `BOOT_C2` on the chip (a data synchronisation barrier).
fn cortex_dsb() {
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    cortex_m::asm::dsb();
    #[cfg(not(all(target_arch = "arm", target_os = "none")))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// [`BootRegs`] through the PAC: FLASH, RCC and SYSCFG of the STM32H747.
///
/// Only meaningful on the chip (the registers are memory-mapped at fixed addresses).
pub struct PacBoot {
    _private: (),
}

impl PacBoot {
    /// The chip's boot registers.
    ///
    /// # Safety
    /// Only on an STM32H747; nothing else may write `RCC_GCR` or `SYSCFG_UR3` meanwhile.
    pub const unsafe fn new() -> Self {
        PacBoot { _private: () }
    }
}

impl BootRegs for PacBoot {
    fn optsr_cur(&self) -> u32 {
        // SAFETY: the PAC's fixed FLASH block address; a read has no side effect.
        unsafe { (*crate::pac::FLASH::ptr()).optsr_cur().read().bits() }
    }
    fn gcr(&self) -> u32 {
        // SAFETY: the PAC's fixed RCC block address; a read has no side effect.
        unsafe { (*crate::pac::RCC::ptr()).gcr().read().bits() }
    }
    fn write_gcr(&mut self, value: u32) {
        // SAFETY: `PacBoot::new`'s contract makes this the only writer of RCC_GCR.
        unsafe { (*crate::pac::RCC::ptr()).gcr().write(|w| w.bits(value)) };
    }
    fn ur3(&self) -> u32 {
        // SAFETY: the PAC's fixed SYSCFG block address; a read has no side effect.
        unsafe { (*crate::pac::SYSCFG::ptr()).ur3().read().bits() }
    }
    fn write_ur3(&mut self, value: u32) {
        // SAFETY: `PacBoot::new`'s contract makes this the only writer of SYSCFG_UR3.
        unsafe { (*crate::pac::SYSCFG::ptr()).ur3().write(|w| w.bits(value)) };
    }
    fn ahb2enr(&self) -> u32 {
        // SAFETY: the PAC's fixed RCC block address; a read has no side effect.
        unsafe { (*crate::pac::RCC::ptr()).ahb2enr().read().bits() }
    }
    fn write_ahb2enr(&mut self, value: u32) {
        // SAFETY: clock-enable bits only; the caller keeps the other bits.
        unsafe { (*crate::pac::RCC::ptr()).ahb2enr().write(|w| w.bits(value)) };
    }
}

/// duet's [`BootRemote`] for the M7: [`Rpc::start`](duet::Rpc::start) calls it after the
/// transport has laid out SRAM4. Keeps the detailed error of the last attempt.
pub struct M4Boot<R: BootRegs = PacBoot> {
    regs: R,
    on_m7: bool,
    last: Option<M4BootError>,
}

impl M4Boot<PacBoot> {
    /// The chip's M4 boot, refusing with [`M4BootError::NotM7`] when run on the M4.
    ///
    /// # Safety
    /// As [`PacBoot::new`].
    pub unsafe fn chip() -> Self {
        // SAFETY: forwarded to the caller.
        let regs = unsafe { PacBoot::new() };
        M4Boot::with(regs, crate::cpu_id() == duet::CpuId::Cm7)
    }
}

impl<R: BootRegs> M4Boot<R> {
    /// Boots through `regs`; `on_m7` says whether this is the M7 (the only core allowed to).
    pub const fn with(regs: R, on_m7: bool) -> Self {
        M4Boot {
            regs,
            on_m7,
            last: None,
        }
    }

    /// Boots the M4 at `address` with the detailed error.
    pub fn boot_m4(&mut self, address: u32) -> Result<(), M4BootError> {
        let r = if self.on_m7 {
            boot_m4(&mut self.regs, address)
        } else {
            Err(M4BootError::NotM7)
        };
        self.last = r.err();
        r
    }

    /// The detailed error of the last boot attempt (`None` after a success or before any).
    pub const fn last_error(&self) -> Option<M4BootError> {
        self.last
    }

    /// The registers (for tests and diagnostics).
    pub const fn regs(&self) -> &R {
        &self.regs
    }
}

impl<R: BootRegs> BootRemote for M4Boot<R> {
    fn boot(&mut self, address: u32) -> Result<(), BootError> {
        self.boot_m4(address).map_err(M4BootError::to_boot_error)
    }
}
