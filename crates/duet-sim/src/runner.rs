//! Ready-made runs on the simulator: the handshake image, the stress exchange in thread mode
//! and one side of it in process mode. The `duet-sim` subcommands call these.

use std::path::Path;
use std::time::Duration;

use duet_rpmsg::{connect, Config, Error, Host, Platform, Remote, Stats, Transport};

use crate::platform::{pair, SimPlatform};
use crate::process::OpenError;
use crate::stress::{self, Direction, StressConfig, StressError, StressReport};
use duet::CpuId;

/// A transport role.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// The M7: RPMsg host (virtio driver).
    Host,
    /// The M4: RPMsg remote (virtio device).
    Remote,
}

impl Role {
    /// The core that plays this role.
    pub fn core(self) -> CpuId {
        match self {
            Role::Host => CpuId::Cm7,
            Role::Remote => CpuId::Cm4,
        }
    }

    /// `"host"` or `"remote"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Remote => "remote",
        }
    }
}

/// Why a run failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The process-mode file could not be opened.
    Open(OpenError),
    /// The transport failed during `stage`.
    Transport {
        /// What was going on ("init", "handshake", "buffer return").
        stage: &'static str,
        /// The transport's error.
        error: Error,
    },
    /// The stress exchange failed (lost, duplicated or corrupted message, or timeout).
    Stress(StressError),
    /// Buffers did not all come back before the timeout (a leak, or a stuck peer).
    Leak {
        /// The side's summary, with the free counts it saw.
        summary: Box<Summary>,
    },
    /// Writing an output file failed.
    Io(std::io::Error),
    /// A thread of a thread-mode run panicked.
    Panic,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Open(e) => write!(f, "shared-memory file: {e}"),
            RunError::Transport { stage, error } => {
                write!(f, "transport error in {stage}: {error:?}")
            }
            RunError::Stress(e) => write!(f, "stress exchange: {e}"),
            RunError::Leak { summary } => write!(f, "buffers not returned: {summary}"),
            RunError::Io(e) => write!(f, "I/O error: {e}"),
            RunError::Panic => write!(f, "a simulated core panicked"),
        }
    }
}

impl std::error::Error for RunError {}

fn at(stage: &'static str) -> impl Fn(Error) -> RunError {
    move |error| RunError::Transport { stage, error }
}

/// What one side of a stress run did, and the state of its buffer pools at the end.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The side.
    pub role: Role,
    /// The exchange's counts.
    pub report: StressReport,
    /// The transport's counters at the end.
    pub stats: Stats,
    /// Transmit buffers free at the end, and the pool's size.
    pub tx_free: (usize, usize),
    /// Host only: receive buffers posted at the end, and how many there are.
    pub rx_posted: Option<(usize, usize)>,
}

impl Summary {
    /// Whether every buffer is back in its pool.
    pub fn pools_full(&self) -> bool {
        self.tx_free.0 == self.tx_free.1 && self.rx_posted.is_none_or(|(a, b)| a == b)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.report;
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let msgs = r
            .sent
            .iter()
            .chain(&r.received)
            .map(|&n| n as f64)
            .sum::<f64>();
        write!(
            f,
            "{}: sent raw={} rpc={} received raw={} rpc={} checked; {} B out, {} B in, \
             {} multi-buffer sent, {} backpressure; {:.3} s, {:.0} msg/s; \
             tx_free={}/{}",
            self.role.name(),
            r.sent[0],
            r.sent[1],
            r.received[0],
            r.received[1],
            r.bytes_sent,
            r.bytes_received,
            r.multi_sent,
            r.backpressure,
            secs,
            msgs / secs,
            self.tx_free.0,
            self.tx_free.1,
        )?;
        if let Some((a, b)) = self.rx_posted {
            write!(f, " rx_posted={a}/{b}")?;
        }
        write!(
            f,
            "; stats: {} msgs / {} bufs sent, {} bufs received, {} corrupt",
            self.stats.messages_sent,
            self.stats.buffers_sent,
            self.stats.buffers_received,
            self.stats.corrupt
        )
    }
}

/// The transport configuration of a stress run: the Arduino profile, with multi-buffer messages
/// enabled when `max_len` is above one buffer's payload.
pub fn transport_config(max_len: usize) -> Config {
    let mut c = Config::arduino();
    c.max_message_len = c.max_message_len.max(max_len);
    c
}

/// Runs the handshake between a host and a remote in one thread (interleaved polls) on a fresh
/// in-process region; returns both once every endpoint is bound on both sides. `Timeout` after
/// `timeout`.
pub fn handshake(
    config: Config,
    timeout: Duration,
) -> Result<(Host<SimPlatform>, Remote<SimPlatform>), RunError> {
    let (m7, m4) = pair();
    let mut host = Host::new(m7, config).map_err(at("init"))?;
    let mut remote = Remote::new(m4, config);
    let deadline = host.platform().now().saturating_add(timeout);
    loop {
        remote.poll().map_err(at("handshake"))?;
        host.poll().map_err(at("handshake"))?;
        let bound = |t: &dyn Fn(duet_rpmsg::Endpoint) -> bool| {
            duet_rpmsg::Endpoint::ALL.iter().all(|&e| t(e))
        };
        if bound(&|e| host.is_ready(e)) && bound(&|e| remote.is_ready(e)) {
            return Ok((host, remote));
        }
        if host.platform().now() >= deadline {
            return Err(at("handshake")(Error::Timeout));
        }
    }
}

/// Runs the handshake (see [`handshake`]) and writes the 64 KiB image of the shared memory,
/// as it stands once both endpoints are bound, to `path`. Returns the image.
pub fn shm_image(path: &Path) -> Result<Vec<u8>, RunError> {
    let (host, _remote) = handshake(Config::arduino(), Duration::from_secs(10))?;
    let image = host.platform().memory().snapshot();
    std::fs::write(path, &image).map_err(RunError::Io)?;
    Ok(image)
}

/// Pool counts of a transport, for the leak check (implemented by both roles on the simulator).
pub trait Pools: Transport {
    /// Transmit buffers free now (after reclaiming) and the pool's full size under `config`.
    fn tx_free(&mut self, config: &Config) -> Result<(usize, usize), Error>;
    /// Receive buffers posted now and how many there are (host only).
    fn rx_posted(&self, config: &Config) -> Option<(usize, usize)>;
    /// The transport's counters.
    fn stats_now(&self) -> Stats;
}

impl Pools for Host<SimPlatform> {
    fn tx_free(&mut self, config: &Config) -> Result<(usize, usize), Error> {
        Ok((self.free_tx_buffers()?, config.host_tx_buffers as usize))
    }
    fn rx_posted(&self, config: &Config) -> Option<(usize, usize)> {
        Some((self.rx_buffers_posted(), config.num_descriptors as usize))
    }
    fn stats_now(&self) -> Stats {
        self.stats()
    }
}

impl Pools for Remote<SimPlatform> {
    /// The remote transmits into the host's receive buffers: all of them when none is in use.
    fn tx_free(&mut self, config: &Config) -> Result<(usize, usize), Error> {
        Ok((self.free_tx_buffers()?, config.num_descriptors as usize))
    }
    fn rx_posted(&self, _: &Config) -> Option<(usize, usize)> {
        None
    }
    fn stats_now(&self) -> Stats {
        self.stats()
    }
}

/// Runs one side of the stress exchange on a bound transport, then polls until all of its
/// buffers are back in their pools (`Leak` if that does not happen within the timeout).
fn stress_side<T: Pools>(
    t: &mut T,
    role: Role,
    cfg: &StressConfig,
    config: &Config,
) -> Result<Summary, RunError> {
    let dir = match role {
        Role::Host => Direction::HostToRemote,
        Role::Remote => Direction::RemoteToHost,
    };
    let report = stress::run_side(t, dir, cfg).map_err(RunError::Stress)?;
    let deadline = t.platform().now().saturating_add(cfg.timeout);
    let mut tx_free;
    let mut rx_posted;
    loop {
        t.poll().map_err(at("buffer return"))?;
        tx_free = t.tx_free(config).map_err(at("buffer return"))?;
        rx_posted = t.rx_posted(config);
        let full = tx_free.0 == tx_free.1 && rx_posted.is_none_or(|(a, b)| a == b);
        let now = t.platform().now();
        if full || now >= deadline {
            break;
        }
        t.platform()
            .wait(now.saturating_add(Duration::from_millis(1)).min(deadline));
    }
    let summary = Summary {
        role,
        report,
        stats: t.stats_now(),
        tx_free,
        rx_posted,
    };
    if summary.pools_full() {
        Ok(summary)
    } else {
        Err(RunError::Leak {
            summary: Box::new(summary),
        })
    }
}

/// Thread mode: host and remote in two threads of this process over a fresh region; handshake,
/// then the stress exchange on both sides. Returns `[host, remote]`.
pub fn run_threads(cfg: &StressConfig) -> Result<[Summary; 2], RunError> {
    let config = transport_config(cfg.max_len);
    let (m7, m4) = pair();
    let cfg = *cfg;
    let remote = std::thread::spawn(move || -> Result<Summary, RunError> {
        let mut r = Remote::new(m4, config);
        let deadline = r.platform().now().saturating_add(cfg.timeout);
        connect(&mut r, deadline).map_err(at("handshake"))?;
        stress_side(&mut r, Role::Remote, &cfg, &config)
    });
    let host = (|| -> Result<Summary, RunError> {
        let mut h = Host::new(m7, config).map_err(at("init"))?;
        let deadline = h.platform().now().saturating_add(cfg.timeout);
        connect(&mut h, deadline).map_err(at("handshake"))?;
        stress_side(&mut h, Role::Host, &cfg, &config)
    })();
    let remote = remote.join().map_err(|_| RunError::Panic)?;
    Ok([host?, remote?])
}

/// Process mode: one side of the stress exchange on the shared-memory file `shm`. With
/// `create` the file is (re)initialised first; otherwise it is waited for (up to the timeout).
/// The peer process runs the other role with the same `cfg`.
pub fn run_peer(
    role: Role,
    shm: &Path,
    create: bool,
    cfg: &StressConfig,
) -> Result<Summary, RunError> {
    let config = transport_config(cfg.max_len);
    let platform = if create {
        SimPlatform::open_file(shm, role.core(), true)
    } else {
        SimPlatform::attach_file(shm, role.core(), cfg.timeout)
    }
    .map_err(RunError::Open)?;
    match role {
        Role::Host => {
            let mut h = Host::new(platform, config).map_err(at("init"))?;
            let deadline = h.platform().now().saturating_add(cfg.timeout);
            connect(&mut h, deadline).map_err(at("handshake"))?;
            stress_side(&mut h, role, cfg, &config)
        }
        Role::Remote => {
            let mut r = Remote::new(platform, config);
            let deadline = r.platform().now().saturating_add(cfg.timeout);
            connect(&mut r, deadline).map_err(at("handshake"))?;
            stress_side(&mut r, role, cfg, &config)
        }
    }
}
