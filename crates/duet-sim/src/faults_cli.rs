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

/// Which core `--restart` halts and restarts (or `--stall` stops).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CoreArg {
    /// The M7 (RPMsg host): a fresh program re-runs its start-up (`start_host`).
    M7,
    /// The M4 (RPMsg remote): the M7 re-lays the rings, then a fresh M4 program boots.
    M4,
}

/// Arguments of `duet-sim faults`.
#[derive(Args, Debug)]
pub struct FaultArgs {
    /// Seed of the fault plan (which doorbells, which bytes, which masks) and of the sizes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Probability (0..1) that a doorbell ring is lost.
    #[arg(long, default_value_t = 0.0)]
    pub drop_doorbells: f64,
    /// Probability (0..1) that a doorbell ring is delivered late (up to --max-delay-us).
    #[arg(long, default_value_t = 0.0)]
    pub delay_doorbells: f64,
    /// Longest doorbell delay in microseconds.
    #[arg(long, default_value_t = 2000)]
    pub max_delay_us: u64,
    /// Probability (0..1) that a doorbell ring is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_doorbells: f64,
    /// Flip random bytes of this area while the cores talk, then reset the link.
    #[arg(long, value_parser = parse_target, conflicts_with = "restart")]
    pub corrupt: Option<duet_sim::faults::Target>,
    /// How many bytes --corrupt flips.
    #[arg(long, default_value_t = 2000)]
    pub flips: u32,
    /// Pause between two flips, in microseconds.
    #[arg(long, default_value_t = 300)]
    pub flip_every_us: u64,
    /// Halt this core in the middle of its calls and start a fresh program on it.
    #[arg(long, value_enum, conflicts_with = "stall")]
    pub restart: Option<CoreArg>,
    /// Make this core stop consuming (no polling at all) for --stall-ms, then go on.
    #[arg(long, value_enum, conflicts_with = "corrupt")]
    pub stall: Option<CoreArg>,
    /// How long --stall lasts, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub stall_ms: u64,
    /// Calls each core makes before the fault event.
    #[arg(long, default_value_t = 20)]
    pub warm_up: u64,
    /// Calls each core makes after the recovery (all must succeed).
    #[arg(long, default_value_t = 50)]
    pub after: u64,
    /// Deadline of each call before the recovery, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub call_timeout_ms: u64,
}

fn parse_target(s: &str) -> Result<duet_sim::faults::Target, String> {
    s.parse()
}

/// `duet-sim faults`: runs the scenario, prints what happened, fails unless the link recovered,
/// every call after the recovery succeeded and every buffer came back.
pub fn faults(a: &FaultArgs) -> Result<(), Box<dyn std::error::Error>> {
    use duet_sim::scenario::{self, Event, Scenario};
    let cpu = |c: CoreArg| match c {
        CoreArg::M7 => duet_sim::CpuId::Cm7,
        CoreArg::M4 => duet_sim::CpuId::Cm4,
    };
    let event = match (a.corrupt, a.restart, a.stall) {
        (Some(target), _, _) => Event::Corrupt {
            target,
            flips: a.flips,
            every: Duration::from_micros(a.flip_every_us),
        },
        (None, Some(c), _) => Event::Restart(cpu(c)),
        (None, None, Some(c)) => Event::Stall {
            core: cpu(c),
            for_: Duration::from_millis(a.stall_ms),
        },
        (None, None, None) => Event::None,
    };
    let report = scenario::run(&Scenario {
        seed: a.seed,
        doorbells: duet_sim::faults::DoorbellFaults {
            drop: a.drop_doorbells,
            delay: a.delay_doorbells,
            max_delay: Duration::from_micros(a.max_delay_us),
            duplicate: a.duplicate_doorbells,
        },
        event,
        warm_up: a.warm_up,
        after: a.after,
        call_timeout: Duration::from_millis(a.call_timeout_ms),
    });
    println!("{report}");
    report.check()?;
    Ok(())
}
