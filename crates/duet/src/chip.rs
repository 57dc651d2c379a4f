//! What duet needs from the chip (or the simulator) beyond the transport: which core this is,
//! and how the host boots the remote core.

/// The core the code runs on. The values are the STM32H747 HSEM core ids (and what Arduino's
/// `RPC.cpu_id()` / `HAL_GetCurrentCPUID()` return).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum CpuId {
    /// The Cortex-M7 (the host: boots the M4, drives the virtio rings).
    Cm7 = 3,
    /// The Cortex-M4 (the remote).
    Cm4 = 1,
}

impl CpuId {
    /// Decodes the value of `SCB->CPUID` (0xE000_ED00) as the HAL does: PARTNO's low nibble 7
    /// (0xC27, Cortex-M7) is the M7, anything else the M4 (0xC24).
    pub const fn from_scb_cpuid(cpuid: u32) -> CpuId {
        if (cpuid & 0xF0) >> 4 == 7 {
            CpuId::Cm7
        } else {
            CpuId::Cm4
        }
    }

    /// `"M7"` or `"M4"`.
    pub const fn name(self) -> &'static str {
        match self {
            CpuId::Cm7 => "M7",
            CpuId::Cm4 => "M4",
        }
    }

    /// The HSEM core id (3 or 1).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The other core.
    pub const fn peer(self) -> CpuId {
        match self {
            CpuId::Cm7 => CpuId::Cm4,
            CpuId::Cm4 => CpuId::Cm7,
        }
    }
}

/// Reports which core the code runs on. The chip crate reads `SCB->CPUID`; the simulator
/// answers per thread.
pub trait Core {
    /// The current core.
    fn cpu_id(&self) -> CpuId;
}

/// Why the remote core could not be booted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum BootError {
    /// The remote core is already running (on the chip: `RCC_GCR.BOOT_C2` or the `BCM4` option
    /// bit is set); it can only be restarted by a system reset.
    AlreadyRunning,
    /// The address cannot be a boot address (the H747 needs 64 KiB alignment).
    BadAddress,
    /// The platform cannot boot the other core (for example: this is the remote core).
    Unsupported,
    /// The platform failed for another reason.
    Failed,
}

/// The host core's ability to start the remote core at a firmware address.
///
/// On the chip: write `SYSCFG_UR3.BCM4_ADD0` and set `RCC_GCR.BOOT_C2`. In the simulator: spawn
/// the remote program's thread. The transport must already be set up (resource table written)
/// when `boot` is called, since the remote starts by waiting for it.
pub trait BootRemote {
    /// Starts the remote core at `address` (Arduino: 0x0810_0000 or 0x0818_0000).
    fn boot(&mut self, address: u32) -> Result<(), BootError>;
}
