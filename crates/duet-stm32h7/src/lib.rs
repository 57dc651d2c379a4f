//! duet-stm32h7: duet on the STM32H747, both cores (Arduino GIGA R1 WiFi, Portenta H7,
//! STM32H747I-DISCO).
//!
//! - [`Chip`]: duet-rpmsg's [`Platform`](duet_rpmsg::Platform) (SRAM4 through [`Sram4`], the
//!   HSEM doorbell, `WFE` sleep, the SysTick clock) and duet's [`Core`](duet::Core) (`cpu_id`
//!   from `SCB->CPUID`).
//! - [`boot`]: booting the M4 from the M7 ([`M4Boot`] is duet's [`BootRemote`](duet::BootRemote)),
//!   with the flash splits and errors that say what to do.
//! - [`hsem`]: the doorbells (semaphore 0 = M7 -> M4, 1 = M4 -> M7).
//! - [`mpu`]: SRAM4 non-cacheable on the M7. [`clock`]: SysTick time. [`board`]: LEDs and the
//!   console UART per board. [`servo`]: a hobby servo's 50 Hz pulse on TIM3. `exit::exit`
//!   (on the chip): the end of a run (semihosting when a debugger is attached).
//!
//! ```no_run
//! use core::time::Duration;
//! use duet::Rpc;
//! use duet_rpmsg::{Arduino, Host};
//! use duet_stm32h7::{Chip, FlashSplit, M4Boot};
//!
//! // The M7; `chip` is `Chip::init()` (once per core, first). The M4 uses `Remote::new`.
//! fn m7(chip: Chip) -> Result<(), duet::Error> {
//!     let mut rpc: Rpc<'_, _> = Rpc::new(Host::new(chip, Arduino)?);
//!     // SAFETY: nothing else writes RCC_GCR or SYSCFG_UR3.
//!     let mut boot = unsafe { M4Boot::chip() };
//!     rpc.start(&mut boot, FlashSplit::Half.m4_address(), Duration::from_secs(5))?;
//!     let sum: i32 = rpc.call("add", (1, 2))?;
//!     rpc.notify("sum", (sum,))
//! }
//! ```
//!
//! The firmware's vector table must route two interrupts here: the `SysTick` exception to
//! [`clock::on_systick`], and the core's HSEM interrupt (M7: IRQ 125, M4: IRQ 126) to
//! [`on_doorbell_interrupt`] (or any interrupt to [`on_interrupt`], for a `DefaultHandler`).
//!
//! Register logic (boot address encoding, the boot sequence's checks, the HSEM ring and
//! acknowledge sequences, the MPU and SysTick values) is written against small register traits
//! and tested on the host against register models. The PAC is `stm32h7` with the
//! `stm32h747cm7` device (without its `rt` feature: the peripherals duet uses have the same
//! addresses and layout on both cores, and the firmware brings its own vector table).
#![no_std]
#![deny(missing_docs)]

pub mod adc;
pub mod board;
pub mod boot;
pub mod clock;
pub mod exit;
pub mod hsem;
pub mod mpu;
mod platform;
pub mod rtc;
pub mod servo;

pub use boot::{FlashSplit, M4Boot, M4BootError};
pub use platform::{
    cpu_id, doorbell, on_doorbell_interrupt, on_interrupt, sleep, Chip, Sram4, SRAM4_BASE,
    SRAM4_SIZE,
};

/// The peripheral access crate (`stm32h7`, device `stm32h747cm7`).
pub use stm32h7::stm32h747cm7 as pac;

/// A duet-rpmsg host (the M7) on the chip with the Arduino profile.
pub type HostTransport = duet_rpmsg::Host<Chip, duet_rpmsg::Arduino>;
/// A duet-rpmsg remote (the M4) on the chip with the Arduino profile.
pub type RemoteTransport = duet_rpmsg::Remote<Chip, duet_rpmsg::Arduino>;

#[cfg(all(target_arch = "arm", target_os = "none"))]
pub use exit::exit;
