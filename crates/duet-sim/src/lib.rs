//! duet-sim: the host simulator of the STM32H747's two cores.
//!
//! The platform layer under `duet-rpmsg` for host programs:
//! - [`SimMemory`]: the 64 KiB SRAM4 region (firmware addresses `0x3800_0000..0x3801_0000`),
//!   volatile-style atomic, bounds-checked accesses; in-process or a file mapped `MAP_SHARED`.
//! - Doorbells: HSEM 0 (M7 -> M4) and HSEM 1 (M4 -> M7), in-process (condition variables) or in
//!   the control page of the process-mode file (polled counters; see `PROCESS-MODE.md`).
//! - [`SimPlatform`]: one core's `duet_rpmsg::Platform`; [`pair`] gives both cores of one
//!   simulated chip in this process, [`SimPlatform::open_file`] one core in process mode.
//! - [`runner`]: the handshake image and the stress exchange (thread and process mode) behind
//!   the `duet-sim` subcommands; [`stress`]: its deterministic, self-checking message stream.
#![deny(missing_docs)]

mod doorbell;
pub mod memory;
pub mod platform;
pub mod process;
pub mod runner;
pub mod stress;

pub use memory::{SimMemory, SHM_BASE, SHM_SIZE};
pub use platform::{pair, CoreId, SimPlatform};
pub use process::OpenError;
