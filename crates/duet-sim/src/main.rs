//! `duet-sim`: command-line front end of the duet host simulator.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Host simulator of the STM32H747's two cores (M7 + M4) for duet.
#[derive(Parser, Debug)]
#[command(name = "duet-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each variant's doc comment is its `--help` text.
#[derive(Subcommand, Debug)]
enum Command {
    /// Create (or re-initialise) a process-mode shared-memory file (format: PROCESS-MODE.md).
    ShmCreate {
        /// Path of the file to create.
        file: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ShmCreate { file } => {
            duet_sim::SimPlatform::open_file(&file, duet_sim::CoreId::Cm7, true)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", file.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
