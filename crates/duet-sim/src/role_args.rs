//! The command-line options of process mode for the examples (`--role`, `--shm`, `--limit`),
//! kept apart from the other options of `main.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use duet_sim::runner::Role;

/// Run one core of an example as this process (given before the example's name).
#[derive(Args, Debug, Default)]
pub struct RoleArgs {
    /// Run only this core of the example, attached to the shared-memory file --shm; the other
    /// core is another process (`duet-sim --role remote --shm F EXAMPLE`, or a peer in C or
    /// Python: docs/process-mode.md). host creates the file, remote waits for it.
    #[arg(long, value_enum, requires = "shm")]
    pub role: Option<SideRole>,
    /// The process-mode shared-memory file (format: crates/duet-sim/PROCESS-MODE.md).
    #[arg(long, value_name = "FILE", requires = "role")]
    pub shm: Option<PathBuf>,
    /// With --role: give up waiting for the other process after this many seconds; programs
    /// that serve until power-off stop then, or as soon as the other process detaches.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub limit: u64,
}

/// A core given to `--role`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SideRole {
    /// The M7 (RPMsg host): creates the file and runs the example's M7 program.
    Host,
    /// The M4 (RPMsg remote): attaches to the file and runs the example's M4 program.
    Remote,
}

/// What `--role` asked for.
pub struct Side {
    /// The core's transport role.
    pub role: Role,
    /// The file.
    pub shm: PathBuf,
    /// The time limit.
    pub limit: Duration,
}

impl RoleArgs {
    /// The side to run, if `--role` was given.
    pub fn side(&self) -> Option<Side> {
        let role = match self.role? {
            SideRole::Host => Role::Host,
            SideRole::Remote => Role::Remote,
        };
        Some(Side {
            role,
            shm: self.shm.clone()?,
            limit: Duration::from_secs(self.limit),
        })
    }
}
