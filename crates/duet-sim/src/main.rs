//! `duet-sim`: command-line front end of the duet host simulator.
//!
//! Each subcommand is one variant of [`Command`] with its arguments; `main` dispatches. To add
//! one, add a variant (its doc comment is the `--help` text) and a match arm.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use duet_sim::runner::{self, Role};
use duet_sim::stress::StressConfig;

/// Host simulator of the STM32H747's two cores (M7 + M4) for duet.
///
/// The two cores share a 64 KiB SRAM4 region and two doorbells (HSEM 0: M7 -> M4, HSEM 1:
/// M4 -> M7). In thread mode both cores run in this process; in process mode each core is a
/// process and they share a file (format: crates/duet-sim/PROCESS-MODE.md).
#[derive(Parser, Debug)]
#[command(name = "duet-sim", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the RPMsg handshake between a host (M7) and a remote (M4) in this process and write
    /// the 64 KiB shared-memory image, as it stands once both endpoints are bound, to FILE.
    ShmImage {
        /// Where to write the image (65 536 bytes; offset 0 = address 0x3800_0000).
        file: PathBuf,
    },
    /// Create (or re-initialise) a process-mode shared-memory file, for `peer` processes to
    /// attach to.
    ShmCreate {
        /// Path of the file (0x11000 bytes: the region plus the control page).
        file: PathBuf,
    },
    /// Run one core as a separate process on a shared-memory file: handshake, then a stress
    /// exchange with a peer started with the other role and the same --count/--seed/--max-len.
    Peer {
        /// Which core this process is.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The shared-memory file.
        #[arg(long)]
        shm: PathBuf,
        /// Create (re-initialise) the file first instead of waiting for it to exist.
        #[arg(long)]
        create: bool,
        #[command(flatten)]
        stress: StressArgs,
    },
    /// Run both cores as two threads of this process (thread mode) and the same stress exchange
    /// as `peer`.
    Stress {
        #[command(flatten)]
        stress: StressArgs,
    },
}

/// A core role on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    /// The M7: RPMsg host (virtio driver); writes the resource table and rings.
    Host,
    /// The M4: RPMsg remote (virtio device); announces the endpoints "raw" and "rpc".
    Remote,
}

/// Parameters of the stress exchange (both sides must use the same values).
#[derive(Args, Debug)]
struct StressArgs {
    /// Messages per endpoint ("raw" and "rpc") per direction.
    #[arg(long, default_value_t = 1000)]
    count: u32,
    /// Seed of the message sizes and contents.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest message in bytes (8..; above 496 messages span several 512-byte buffers).
    #[arg(long, default_value_t = 496)]
    max_len: usize,
    /// Give up after this many seconds (handshake, exchange, buffer return each).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

impl StressArgs {
    fn config(&self) -> StressConfig {
        StressConfig {
            count: self.count,
            seed: self.seed,
            max_len: self.max_len,
            timeout: Duration::from_secs(self.timeout),
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand.
fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::ShmImage { file } => {
            let image = runner::shm_image(&file)?;
            println!("wrote {} bytes to {}", image.len(), file.display());
        }
        Command::ShmCreate { file } => {
            duet_sim::SimPlatform::open_file(&file, duet_sim::CoreId::Cm7, true)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            println!("created {}", file.display());
        }
        Command::Peer {
            role,
            shm,
            create,
            stress,
        } => {
            let role = match role {
                RoleArg::Host => Role::Host,
                RoleArg::Remote => Role::Remote,
            };
            println!(
                "{}",
                runner::run_peer(role, &shm, create, &stress.config())?
            );
        }
        Command::Stress { stress } => {
            let [host, remote] = runner::run_threads(&stress.config())?;
            println!("{host}\n{remote}");
        }
    }
    Ok(())
}
