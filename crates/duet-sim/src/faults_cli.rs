//! The `soak` and `faults` subcommands (kept apart from `main.rs` so that their arguments
//! and code stay in one place).

use std::time::Duration;

use clap::Args;

use duet_sim::soak::{self, SoakConfig};

/// Arguments of `duet-sim soak` (defaults: the full soak of `cargo xtask soak`).
#[derive(Args, Debug)]
pub struct SoakArgs {
    /// Calls each core makes to the other (both at once; the total is twice this).
    #[arg(long, default_value_t = SoakConfig::full().calls)]
    pub calls: u64,
    /// Stream bytes each core sends to the other, in MiB (the total is twice this).
    #[arg(long, default_value_t = SoakConfig::full().stream_bytes >> 20)]
    pub stream_mib: u64,
    /// Seed of the argument sizes and all contents.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest argument in bytes (at most 1900; over 470 a request spans several buffers).
    #[arg(long, default_value_t = soak::MAX_ARG)]
    pub max_arg: usize,
    /// Calls each core keeps in flight (1..=8).
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Deadline of each call in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub call_timeout_ms: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

impl SoakArgs {
    /// The workload these arguments describe.
    pub fn config(&self) -> SoakConfig {
        SoakConfig {
            calls: self.calls,
            stream_bytes: self.stream_mib << 20,
            seed: self.seed,
            max_arg: self.max_arg,
            in_flight: self.in_flight,
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            timeout: Duration::from_secs(self.timeout),
        }
    }
}

/// `duet-sim soak`: runs the workload without faults, prints the figures, fails unless nothing
/// was lost, duplicated or corrupted and every buffer came back.
pub fn soak(args: &SoakArgs) -> Result<(), Box<dyn std::error::Error>> {
    let report = soak::run(&args.config())?;
    println!("{report}");
    report.check()?;
    Ok(())
}
