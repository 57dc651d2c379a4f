//! `duet-sim`: command-line front end of the duet host simulator.
//!
//! Each subcommand is one variant of [`Command`] with its arguments; `main` dispatches. To add
//! one, add a variant (its doc comment is the `--help` text) and a match arm. Without a
//! subcommand it runs the demo (every example in turn).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use duet_sim::board::{Console, Source};
use duet_sim::examples;
use duet_sim::runner::{self, Role};
use duet_sim::stress::StressConfig;

mod faults_cli;
mod role_args;
mod trace_args;

/// Host simulator of the STM32H747's two cores (M7 + M4) for duet.
///
/// Without a subcommand: the demo, every example of the Arduino GIGA R1 dual-core guide in
/// turn (blink, serial, sensor, servo, rtc, led, objects, errors). Each example is also a
/// subcommand.
///
/// The two cores share a 64 KiB SRAM4 region and two doorbells (HSEM 0: M7 -> M4, HSEM 1:
/// M4 -> M7). In thread mode both cores run in this process; in process mode each core is a
/// process and they share a file (format: crates/duet-sim/PROCESS-MODE.md).
#[derive(Parser, Debug)]
#[command(name = "duet-sim", version, about, long_about)]
struct Cli {
    /// How much faster than real time the examples run (virtual ms per real ms in `delay`).
    #[arg(long, global = true, default_value_t = duet_sim::board::DEFAULT_SPEED,
          value_parser = clap::value_parser!(u32).range(1..))]
    speed: u32,
    #[command(flatten)]
    trace: trace_args::TraceArgs,
    #[command(flatten)]
    role: role_args::RoleArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Every example in turn, each under a header (the default).
    Demo,
    /// Example: core identification; each core blinks its own LED, chosen by cpu_id.
    Blink,
    /// Example: RPC serial; the M4 prints through the M7's Serial Monitor.
    Serial,
    /// Example: the M4 calls sensorRead (A0) on the M7 every second and prints the value.
    Sensor,
    /// Example: the M4 calls servoMove(angle) on the M7, which moves the servo.
    Servo,
    /// Example: the M4 sets and reads the RTC; the M7 prints the time.
    Rtc,
    /// Example (MicroPython): the host (M7) calls led(true/false) on the M4.
    Led,
    /// Example (MicroPython): bound objects ("foo1.add") and call_async + join.
    Objects,
    /// Example: errors are values (unbound name, wrong type, timeout, messages over one buffer).
    Errors,
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
    /// Run the duet RPC engine as the M4 (RPMsg remote) on a shared-memory file, for a host
    /// written in another language (e.g. crates/duet-sim/tests/peers/mpy_host.py): binds add,
    /// echo, blob(n) (n bytes, byte i = i mod 251, n <= 2000) and done, calls led(true),
    /// led(false) and nope_host() on the host, writes a line on "raw", echoes raw lines back,
    /// and exits 0 once the host calls done().
    ///
    /// Transport: the Arduino profile with max_message_len = 2048. A message over 496 bytes
    /// goes out as consecutive 496-byte buffers (the last shorter) on one endpoint, so the host
    /// must reassemble "rpc" by MessagePack completeness (MicroPython's streaming=True); the
    /// host may send such messages too (requests up to 1984 bytes).
    RpcRemote {
        /// The shared-memory file (created by the host; waited for).
        #[arg(long)]
        shm: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Run both cores as two threads of this process (thread mode) and the same stress exchange
    /// as `peer`.
    Stress {
        #[command(flatten)]
        stress: StressArgs,
    },
    /// Soak: RPC calls both ways at once with random argument sizes (some spanning several
    /// buffers) plus the byte stream both ways, every result and byte checked; prints calls,
    /// bytes, seconds and throughput, and fails unless nothing was lost, duplicated or
    /// corrupted and every buffer came back (`cargo xtask soak` runs it in release mode).
    Soak(faults_cli::SoakArgs),
    /// Fault injection: the cores call each other (both ways, every result checked end to
    /// end) and stream while doorbells are dropped/delayed/duplicated, and one event happens:
    /// shared memory is corrupted (then the M7 resets the link), a core stops consuming for a
    /// while, or a core is halted mid-call and restarted. Prints what each core saw; fails unless the link recovered, every call
    /// after the recovery succeeded and every buffer came back.
    /// Example: `duet-sim faults --corrupt indices --drop-doorbells 0.3`.
    Faults(faults_cli::FaultArgs),
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
    let cli = Cli::parse();
    let recorder = cli.trace.recorder();
    let side = cli.role.side();
    let command = cli.command.unwrap_or(Command::Demo);
    let result = run(command, cli.speed, recorder.clone(), side.as_ref());
    let written = match &recorder {
        Some(r) => cli
            .trace
            .write(r)
            .map_err(|e| format!("writing the trace: {e}").into()),
        None => Ok(()),
    };
    match result.and(written) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one example on a console that prints as it goes.
fn example(name: &str, speed: u32, rec: Rec, side: Side) -> Result<(), Box<dyn std::error::Error>> {
    let e = examples::find(name).ok_or_else(|| format!("no example called {name}"))?;
    let console = Console::new(true);
    console.note(Source::Demo, format!("=== {}: {} ===", e.name, e.title));
    match side {
        None => examples::run_traced(e, &console, speed, rec)?,
        Some(s) => duet_sim::role::run_side(e, s.role, &s.shm, &console, speed, rec, s.limit)?,
    };
    Ok(())
}

/// The recorder of `--trace` / `--log`, if tracing.
type Rec = Option<std::sync::Arc<duet_trace::Recorder>>;

/// `--role`: one core of an example in process mode.
type Side<'a> = Option<&'a role_args::Side>;

/// Runs one subcommand.
fn run(
    command: Command,
    speed: u32,
    rec: Rec,
    side: Side,
) -> Result<(), Box<dyn std::error::Error>> {
    let example = |name: &str| self::example(name, speed, rec.clone(), side);
    match command {
        Command::Blink => example("blink")?,
        Command::Serial => example("serial")?,
        Command::Sensor => example("sensor")?,
        Command::Servo => example("servo")?,
        Command::Rtc => example("rtc")?,
        Command::Led => example("led")?,
        Command::Objects => example("objects")?,
        Command::Errors => example("errors")?,
        _ if side.is_some() => {
            return Err("--role runs one core of an example: name it (e.g. sensor)".into())
        }
        Command::Demo => examples::demo_traced(&Console::new(true), speed, rec)?,
        Command::ShmImage { file } => {
            let image = runner::shm_image(&file)?;
            println!("wrote {} bytes to {}", image.len(), file.display());
        }
        Command::ShmCreate { file } => {
            duet_sim::SimPlatform::open_file(&file, duet_sim::CpuId::Cm7, true)
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
        Command::RpcRemote { shm, timeout } => {
            let t = Duration::from_secs(timeout);
            duet_sim::rpc_peer::run_remote(&shm, t, &mut |l| println!("{l}"))?;
        }
        Command::Stress { stress } => {
            let [host, remote] = runner::run_threads(&stress.config())?;
            println!("{host}\n{remote}");
        }
        Command::Soak(args) => faults_cli::soak(&args)?,
        Command::Faults(args) => faults_cli::faults(&args)?,
    }
    Ok(())
}
