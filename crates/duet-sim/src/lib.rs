//! duet-sim: the host simulator of the STM32H747's two cores.
//!
//! The platform layer under `duet-rpmsg` for host programs:
//! - [`SimMemory`]: the 64 KiB SRAM4 region (firmware addresses `0x3800_0000..0x3801_0000`),
//!   volatile-style atomic, bounds-checked accesses; in-process or a file mapped `MAP_SHARED`.
//! - Doorbells: HSEM 0 (M7 -> M4) and HSEM 1 (M4 -> M7), in-process (condition variables) or in
//!   the control page of the process-mode file (polled counters; see `PROCESS-MODE.md`).
//! - [`SimPlatform`]: one core's `duet_rpmsg::Platform`; [`pair`] gives both cores of one
//!   simulated chip in this process, [`SimPlatform::open_file`] one core in process mode.
//! - [`machine`]: a simulated chip running an M7 program and an M4 program on two threads over
//!   the real stack (boot at a firmware address, duet doorbells); helpers for RPC tests.
//! - [`board`]: the GIGA R1's peripherals the dual-core guide uses (RGB LED, A0, servo, RTC),
//!   virtual time, and the Serial Monitor console.
//! - [`examples`]: the Arduino GIGA R1 dual-core guide's examples (and its MicroPython
//!   section) as M7 + M4 programs; `duet-sim` with no arguments runs them all (the demo).
//! - [`runner`]: the handshake image and the stress exchange (thread and process mode) behind
//!   the `duet-sim` subcommands; [`stress`]: its deterministic, self-checking message stream.
//! - [`trace`]: recording the traffic between the cores and their activity for
//!   `duet-sim --trace FILE` / `--log` (model and writers: the `duet-trace` crate).
//! - [`faults`]: fault injection between the cores (doorbells dropped, delayed or duplicated,
//!   a core halted and restarted, shared memory corrupted) on a [`SimChip`].
//! - [`scenario`]: fault scenarios (corruption, a core restarted) with recovery, checked.
//! - [`soak`]: the soak workload (calls both ways with random sizes, the stream both ways,
//!   everything checked; `duet-sim soak`, `cargo xtask soak`).
//! - [`rpc_peer`]: the duet engine as the M4 of a process-mode file, for a host written in
//!   another language (`duet-sim rpc-remote`; `tests/peers/mpy_host.py` is such a host).
#![deny(missing_docs)]
// `duet::Error` carries the peer's error text inline (no heap): about 170 bytes, by design.
#![allow(clippy::result_large_err)]

pub mod board;
mod doorbell;
pub mod examples;
pub mod faults;
mod hints;
pub mod machine;
pub mod memory;
pub mod platform;
pub mod process;
pub mod role;
pub mod rpc_peer;
pub mod runner;
pub mod scenario;
pub mod soak;
pub mod stress;
pub mod trace;

pub use duet::CpuId;
pub use machine::{Machine, M4, M7};
pub use memory::{SimMemory, SHM_BASE, SHM_SIZE};
pub use platform::{pair, SimChip, SimPlatform};
pub use process::OpenError;
