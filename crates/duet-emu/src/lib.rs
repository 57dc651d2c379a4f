//! duet-emu: an emulated dual-core STM32H747 (Cortex-M7 + Cortex-M4) that runs the unmodified
//! firmware ELF images of both cores on two unicorn-engine CPUs.
//!
//! Licence: GPL-2.0 (it links unicorn-engine). No library crate of duet depends on it.
//!
//! What is modelled (see docs/emulator.md for the register list):
//! - memory: both flash banks, AXI SRAM, SRAM1-3 (also at 0x1000_0000 on the M4), SRAM4, backup
//!   SRAM shared by both cores (one host buffer each); the M7's ITCM and DTCM;
//! - per core: NVIC (150 IRQs, priorities, grouping), SCB (CPUID, ICSR, VTOR, AIRCR, SCR, SHPR),
//!   SysTick, DWT CYCCNT, exception entry/return done by the host (FP frames included),
//!   WFI/WFE sleep, SEV to both cores' event registers, semihosting (exit, console);
//! - peripherals: HSEM (1-/2-step lock, release, interrupts 125/126), RCC (ready flags,
//!   BOOT_C2), PWR ready flags, SYSCFG (UR3 BCM4_ADD0), FLASH option status (BCM4), GPIO (level
//!   changes recorded), every U(S)ART as a console, EXTI storage, an ADC reading the simulator's
//!   potentiometer and a running RTC calendar, both on virtual time.
//!
//! Time is derived from instruction counts (one cycle per instruction at the image's
//! `DUET_CORE_HZ`, else M7 480 MHz and M4 240 MHz),
//! and scheduling is a deterministic round robin: the same images give the same output and the
//! same counters on every run.

mod core;
mod image;
mod machine;
mod soc;
mod traffic;

pub use image::{Image, Segment, Symbol};
pub use machine::{Config, Emulator, M4Boot, ProbeId};

/// One of the two cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoreId {
    /// The Cortex-M7 (boots first, HSEM COREID 3).
    M7 = 0,
    /// The Cortex-M4 (held in reset until the M7 boots it, HSEM COREID 1).
    M4 = 1,
}

impl std::fmt::Display for CoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CoreId::M7 => "M7",
            CoreId::M4 => "M4",
        })
    }
}

/// Per-core counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Instructions executed.
    pub instructions: u64,
    /// Instructions executed while an exception handler was active.
    pub handler_instructions: u64,
    /// Core clock cycles elapsed since the core started (instructions plus sleep).
    pub cycles: u64,
    /// Cycles spent asleep in WFI/WFE.
    pub asleep_cycles: u64,
    /// Exceptions (interrupts, SysTick, PendSV, SVCall) taken.
    pub interrupts: u64,
    /// Whether the core ever started (false for an M4 that was never booted).
    pub booted: bool,
}

/// A GPIO output level change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpioEvent {
    /// Virtual time of the change in nanoseconds.
    pub time_ns: u64,
    /// The core whose write changed the level.
    pub core: CoreId,
    /// Port letter, 'A'..='K'.
    pub port: char,
    /// Pin number 0..=15.
    pub pin: u8,
    /// The new level.
    pub high: bool,
}

/// A change of a timer channel's PWM output (TIM3 and TIM4 are modelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PwmEvent {
    /// Virtual time of the register write that changed it, in nanoseconds.
    pub time_ns: u64,
    /// The core whose write changed it.
    pub core: CoreId,
    /// The timer: 3 or 4.
    pub timer: u8,
    /// The channel, 1..=4.
    pub channel: u8,
    /// The period in nanoseconds, 0 when the output is off (counter stopped, channel disabled
    /// or not in PWM mode 1).
    pub period_ns: u64,
    /// How long the output is high each period, in nanoseconds (0 when off).
    pub high_ns: u64,
    /// The pin the channel reaches through alternate function 2, if one is routed.
    pub pin: Option<(char, u8)>,
}

/// A register-level trace line (HSEM, boot, GPIO, exits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Virtual time in nanoseconds.
    pub time_ns: u64,
    /// The core that caused it.
    pub core: CoreId,
    /// What happened.
    pub what: String,
}

/// How a run ended normally: the M7 exited through semihosting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The M7's exit code (0 = success).
    pub m7_exit: i32,
    /// The M4's exit code, if it exited.
    pub m4_exit: Option<i32>,
    /// Virtual time at the end, in nanoseconds.
    pub time_ns: u64,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The firmware faulted: an access to unmapped memory, a write to flash, an undefined
    /// instruction, a breakpoint other than semihosting, or a double fault.
    Fault {
        /// The faulting core.
        core: CoreId,
        /// Program counter of the faulting instruction.
        pc: u32,
        /// The data address involved, if any.
        address: Option<u32>,
        /// What happened.
        what: String,
    },
    /// A peripheral or system register outside the modelled set was accessed.
    Unmodelled {
        /// The accessing core.
        core: CoreId,
        /// Program counter at (or, for MMIO, near) the access.
        pc: u32,
        /// The register address.
        address: u32,
        /// Whether it was a write.
        write: bool,
    },
    /// The run did not finish: the time budget ran out, or both cores sleep with nothing that
    /// could wake them.
    Stall {
        /// Virtual time when the run was stopped, in nanoseconds.
        time_ns: u64,
        /// What the cores were doing.
        reason: String,
    },
    /// The images could not be loaded or the engine refused an operation.
    Setup(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Fault {
                core,
                pc,
                address,
                what,
            } => {
                write!(f, "{core} fault at pc {pc:#010x}: {what}")?;
                if let Some(a) = address {
                    write!(f, " (address {a:#010x})")?;
                }
                Ok(())
            }
            RunError::Unmodelled {
                core,
                pc,
                address,
                write,
            } => write!(
                f,
                "{core} {} of unmodelled register {address:#010x} (pc {pc:#010x})",
                if *write { "write" } else { "read" }
            ),
            RunError::Stall { time_ns, reason } => {
                write!(f, "stalled at {} us: {reason}", time_ns / 1000)
            }
            RunError::Setup(s) => write!(f, "setup: {s}"),
        }
    }
}

impl std::error::Error for RunError {}
