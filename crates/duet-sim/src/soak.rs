//! The soak workload: RPC calls in both directions at once, with random argument sizes (some
//! spanning several buffers), plus the byte stream in both directions, every byte checked.
//!
//! Each side (M7 and M4, two threads) keeps up to [`SoakConfig::in_flight`] calls to the
//! peer's `soak(seq, bin)` in flight. The argument's length and bytes come from a seeded
//! generator both sides share, so the handler checks the bytes it got; it answers
//! `[seq, crc32(bin), reply]` where `reply` is generated from `seq` as well, and the caller
//! checks all three. At the same time each side writes [`SoakConfig::stream_bytes`] generated
//! bytes on the stream (`Serial`, default backpressure policy) and checks every byte the
//! peer's stream delivers, in order. When both sides are done, each polls until its transport's
//! buffer pools are full again.
//!
//! [`run`] returns the figures; [`SoakReport::check`] says whether nothing was lost,
//! duplicated or corrupted. `duet-sim soak` and `cargo xtask soak` run it; the fault-injection
//! scenarios (`duet-sim faults`) run the same workload and count what went wrong instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use duet::{Bin, Context, Error, Pending, Request, Rpc};
use duet_rpmsg::{connect, Config, Host, Platform, Remote, Transport};
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use crate::machine::CORE_STACK;
use crate::platform::SimPlatform;
use crate::runner::Pools;

/// The largest argument the workload sends: its request (about 25 bytes more) still starts a
/// buffer and fits the engine's 1984-byte limit for such messages (see [`duet::Rpc`]).
pub const MAX_ARG: usize = 1900;

/// The largest generated reply bin (the reply fits one 512-byte call slot).
pub const MAX_REPLY: usize = 400;

/// Parameters of a soak run (both sides use the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoakConfig {
    /// Calls each side makes (so `2 * calls` in total).
    pub calls: u64,
    /// Stream bytes each side sends.
    pub stream_bytes: u64,
    /// Seed of the sizes and contents.
    pub seed: u64,
    /// Largest argument in bytes (at most [`MAX_ARG`]).
    pub max_arg: usize,
    /// Calls each side keeps in flight (1..=8).
    pub in_flight: usize,
    /// Deadline of each call.
    pub call_timeout: Duration,
    /// Give up on the whole run after this long.
    pub timeout: Duration,
}

impl SoakConfig {
    /// The CI size: 2 x 2000 calls and 2 x 256 KiB of stream, arguments up to [`MAX_ARG`].
    pub fn short() -> SoakConfig {
        SoakConfig {
            calls: 2000,
            stream_bytes: 256 << 10,
            seed: 1,
            max_arg: MAX_ARG,
            in_flight: 4,
            call_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
        }
    }

    /// The full soak: 2 x 500 000 calls (one million) and 2 x 50 MiB of stream (100 MiB).
    pub fn full() -> SoakConfig {
        SoakConfig {
            calls: 500_000,
            stream_bytes: 50 << 20,
            timeout: Duration::from_secs(3600),
            ..SoakConfig::short()
        }
    }
}

/// What one side saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideReport {
    /// Calls started.
    pub calls: u64,
    /// Calls that returned the right result.
    pub calls_ok: u64,
    /// Calls that failed, by error (`Display` of the first of each kind, and how many).
    pub calls_failed: Vec<(String, u64)>,
    /// Calls that returned `Ok` with a result that fails the workload's checks (corruption
    /// that duet cannot see: see the README's threat model).
    pub wrong_results: u64,
    /// Requests of the peer this side served.
    pub served: u64,
    /// Requests whose argument bytes were not the generated ones (served anyway).
    pub bad_arguments: u64,
    /// Calls whose request spanned more than one buffer.
    pub multi_buffer_calls: u64,
    /// Argument bytes sent.
    pub arg_bytes: u64,
    /// Stream bytes sent (accepted by `Serial`) and flushed.
    pub stream_sent: u64,
    /// Stream bytes received.
    pub stream_received: u64,
    /// Offset of the first received stream byte that differed from the generator's, if any.
    pub stream_mismatch: Option<u64>,
    /// CRC-32 of the stream bytes received.
    pub stream_crc: u32,
    /// Peer resets reported by the engine.
    pub resets: u64,
    /// The engine's counters at the end.
    pub rpc: duet::Stats,
    /// The transport's counters at the end.
    pub transport: duet_rpmsg::Stats,
    /// Transmit buffers free at the end, and the pool's size.
    pub tx_free: (usize, usize),
    /// M7 only: receive buffers posted at the end, and how many there are.
    pub rx_posted: Option<(usize, usize)>,
    /// Whether this side finished its work before the run's timeout.
    pub finished: bool,
}

impl SideReport {
    /// Calls that failed.
    pub fn failed(&self) -> u64 {
        self.calls_failed.iter().map(|(_, n)| n).sum()
    }

    /// Whether every buffer is back in its pool.
    pub fn pools_full(&self) -> bool {
        self.tx_free.0 == self.tx_free.1 && self.rx_posted.is_none_or(|(a, b)| a == b)
    }

    fn fail(&mut self, e: &Error) {
        let kind = error_kind(e);
        match self.calls_failed.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.calls_failed.push((kind, 1)),
        }
    }
}

/// A short name of an error's kind (its variant), for counting.
pub fn error_kind(e: &Error) -> String {
    let s = format!("{e:?}");
    let end = s.find(['(', ' ', '{']).unwrap_or(s.len());
    match e {
        Error::Transport(t) => format!("Transport({:?})", t),
        _ => s[..end].to_string(),
    }
}

/// Both sides' figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoakReport {
    /// The configuration.
    pub config: SoakConfig,
    /// The M7 (host) side.
    pub m7: SideReport,
    /// The M4 (remote) side.
    pub m4: SideReport,
    /// Wall-clock time of the whole run (both sides' work).
    pub elapsed: Duration,
}

impl SoakReport {
    /// Every call succeeded with the right result and was served once, every stream byte
    /// arrived intact and in order, and every buffer is back: `Err` says what was not.
    pub fn check(&self) -> Result<(), String> {
        let cfg = &self.config;
        let mut bad = Vec::new();
        for (name, me, peer) in [("M7", &self.m7, &self.m4), ("M4", &self.m4, &self.m7)] {
            if !me.finished {
                bad.push(format!("{name} did not finish"));
            }
            if me.calls_ok != cfg.calls || me.failed() != 0 || me.wrong_results != 0 {
                bad.push(format!(
                    "{name}: {} of {} calls right, failed {:?}, {} wrong",
                    me.calls_ok, cfg.calls, me.calls_failed, me.wrong_results
                ));
            }
            if peer.served != me.calls || peer.bad_arguments != 0 {
                bad.push(format!(
                    "{name}'s {} calls were served {} times by the peer ({} bad arguments)",
                    me.calls, peer.served, peer.bad_arguments
                ));
            }
            if me.stream_sent != cfg.stream_bytes
                || peer.stream_received != cfg.stream_bytes
                || peer.stream_mismatch.is_some()
                || peer.stream_crc != stream_crc(cfg, me_dir(name), cfg.stream_bytes)
            {
                bad.push(format!(
                    "{name}'s stream: {} sent, {} received, first bad byte {:?}",
                    me.stream_sent, peer.stream_received, peer.stream_mismatch
                ));
            }
            if !me.pools_full() {
                bad.push(format!(
                    "{name}'s buffers: tx {:?}, rx {:?}",
                    me.tx_free, me.rx_posted
                ));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }

    /// Calls made by both sides.
    pub fn calls(&self) -> u64 {
        self.m7.calls + self.m4.calls
    }

    /// Stream bytes delivered in both directions.
    pub fn stream_bytes(&self) -> u64 {
        self.m7.stream_received + self.m4.stream_received
    }
}

fn me_dir(name: &str) -> u64 {
    if name == "M7" {
        0
    } else {
        1
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let calls = self.calls();
        let bytes = self.stream_bytes();
        writeln!(
            f,
            "soak: {calls} calls ({} multi-buffer), {:.1} MB of arguments, {:.1} MB of stream \
             in {secs:.1} s: {:.0} calls/s, {:.1} MB/s of stream",
            self.m7.multi_buffer_calls + self.m4.multi_buffer_calls,
            (self.m7.arg_bytes + self.m4.arg_bytes) as f64 / 1e6,
            bytes as f64 / 1e6,
            calls as f64 / secs,
            bytes as f64 / 1e6 / secs,
        )?;
        for (name, s) in [("M7", &self.m7), ("M4", &self.m4)] {
            writeln!(
                f,
                "  {name}: calls {} ok {} failed {:?} wrong {}; served {} (bad args {}); \
                 stream out {} in {} (first bad byte {:?}); resets {}; tx_free {}/{}{}; \
                 transport: {} corrupt, {} no-buffer; engine: {} framing, {} malformed, \
                 {} late, {} expired, {} reply failures, {} transport errors",
                s.calls,
                s.calls_ok,
                s.calls_failed,
                s.wrong_results,
                s.served,
                s.bad_arguments,
                s.stream_sent,
                s.stream_received,
                s.stream_mismatch,
                s.resets,
                s.tx_free.0,
                s.tx_free.1,
                s.rx_posted
                    .map(|(a, b)| format!(" rx_posted {a}/{b}"))
                    .unwrap_or_default(),
                s.transport.corrupt,
                s.transport.no_buffer,
                s.rpc.framing_errors,
                s.rpc.malformed_messages,
                s.rpc.late_replies,
                s.rpc.expired_calls,
                s.rpc.reply_failures,
                s.rpc.transport_errors,
            )?;
        }
        match self.check() {
            Ok(()) => write!(
                f,
                "  check: nothing lost, duplicated or corrupted; buffer pools full"
            ),
            Err(e) => write!(f, "  check FAILED: {e}"),
        }
    }
}

/// Why a soak run could not run.
#[derive(Debug)]
pub enum SoakError {
    /// The configuration is out of range.
    Config(String),
    /// A side could not start (transport set-up or handshake).
    Start(&'static str, duet_rpmsg::Error),
    /// A side's thread panicked.
    Panic,
}

impl std::fmt::Display for SoakError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SoakError::Config(s) => write!(f, "bad configuration: {s}"),
            SoakError::Start(side, e) => write!(f, "{side} could not start: {e:?}"),
            SoakError::Panic => f.write_str("a simulated core panicked"),
        }
    }
}

impl std::error::Error for SoakError {}

// ---------------------------------------------------------------------------------------------
// The generator and the checksum.

/// splitmix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` from the key (8 bytes per generator output).
fn fill(key: u64, out: &mut [u8]) {
    for (i, c) in out.chunks_mut(8).enumerate() {
        let v = mix(key ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

/// The key of call `seq` by the side `dir` (0: M7, 1: M4); `what` 0 argument, 1 reply.
fn key(cfg: &SoakConfig, dir: u64, seq: u64, what: u64) -> u64 {
    mix(cfg.seed ^ mix(dir << 62 | what << 60 | seq))
}

/// Argument length of call `seq` of side `dir`: a third small (up to 64 bytes), a third up to
/// one buffer, a third up to `max_arg` (several buffers).
pub fn arg_len(cfg: &SoakConfig, dir: u64, seq: u64) -> usize {
    let r = mix(key(cfg, dir, seq, 2));
    let max = cfg.max_arg.max(1);
    let cap = match r % 3 {
        0 => 64,
        1 => 480,
        _ => max,
    }
    .min(max);
    ((r >> 8) % (cap as u64 + 1)) as usize
}

/// Reply length of call `seq` of side `dir` (up to [`MAX_REPLY`]).
fn reply_len(cfg: &SoakConfig, dir: u64, seq: u64) -> usize {
    (mix(key(cfg, dir, seq, 3)) % (MAX_REPLY as u64 + 1)) as usize
}

/// Stream byte `i` of side `dir`.
fn stream_fill(cfg: &SoakConfig, dir: u64, start: u64, out: &mut [u8]) {
    for (j, b) in out.iter_mut().enumerate() {
        let i = start + j as u64;
        let w = mix(cfg.seed ^ mix(1 << 63 | dir << 62 | (i / 8)));
        *b = (w >> (8 * (i % 8))) as u8;
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib) table.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues a CRC-32 over `data` (start with 0).
pub fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32 of the first `n` stream bytes of side `dir`.
fn stream_crc(cfg: &SoakConfig, dir: u64, n: u64) -> u32 {
    let mut crc = 0;
    let mut buf = [0u8; 4096];
    let mut at = 0;
    while at < n {
        let k = (n - at).min(buf.len() as u64) as usize;
        stream_fill(cfg, dir, at, &mut buf[..k]);
        crc = crc32(crc, &buf[..k]);
        at += k as u64;
    }
    crc
}

/// Owned bytes decoded from MessagePack bin.
#[derive(Debug)]
struct OwnedBin(Vec<u8>);

impl<'de> Deserialize<'de> for OwnedBin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OwnedBin;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bin")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<OwnedBin, E> {
                Ok(OwnedBin(v.to_vec()))
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<OwnedBin, E> {
                Ok(OwnedBin(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<OwnedBin, E> {
                Ok(OwnedBin(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// The reply of `soak`: `[seq, crc32(argument), reply bytes]`.
type Reply = (u64, u32, OwnedBin);

// ---------------------------------------------------------------------------------------------
// One side.

/// What a side needs from its transport besides `Transport`: the pool counts.
pub trait SoakTransport: Transport + Pools {}
impl<T: Transport + Pools> SoakTransport for T {}

/// The engine both sides use: default router and call slots, a 16 KiB reassembly buffer and
/// a 32 KiB stream ring ([`SOAK_BUF`], [`SOAK_SERIAL`]).
type SoakRpc<'a, T> = Rpc<'a, T, 16, 8, SOAK_BUF, 512, SOAK_SERIAL>;

/// The soak engine's reassembly buffer: room for every request and reply the peer can have in
/// flight (8 calls of at most 1984 bytes), so a side that waits to send still drains its
/// receive ring of RPC traffic (see the README's "Soak" section for why this matters).
pub const SOAK_BUF: usize = 16 << 10;

/// The soak engine's stream ring: room for every stream byte the peer can have in flight (64
/// buffers of 496 bytes), for the same reason.
pub const SOAK_SERIAL: usize = 32 << 10;

/// Runs one side of the workload (`dir` 0: M7, 1: M4) on a connected transport. `done` are
/// both sides' "my work is finished" flags; the side keeps serving until the peer's is set,
/// then polls until its pools are full (or the deadline).
pub fn run_side<T: SoakTransport>(
    t: T,
    config: &Config,
    dir: u64,
    cfg: &SoakConfig,
    done: &[AtomicBool; 2],
) -> SideReport {
    let mut report = SideReport::default();
    let served = std::cell::Cell::new(0u64);
    let bad_args = std::cell::Cell::new(0u64);
    let peer = 1 - dir;
    let handler = |ctx: &mut Context<'_>, req: Request<'_>| {
        served.set(served.get() + 1);
        let (seq, data): (u64, &[u8]) = match req.args() {
            Ok(a) => a,
            Err(_) => {
                bad_args.set(bad_args.get() + 1);
                ctx.respond_error("soak: bad arguments");
                return;
            }
        };
        let mut want = vec![0u8; arg_len(cfg, peer, seq)];
        fill(key(cfg, peer, seq, 0), &mut want);
        if want != data {
            bad_args.set(bad_args.get() + 1);
        }
        let mut reply = vec![0u8; reply_len(cfg, peer, seq)];
        fill(key(cfg, peer, seq, 1), &mut reply);
        ctx.respond(&(seq, crc32(0, data), Bin(&reply)));
    };
    let mut rpc: SoakRpc<'_, T> = Rpc::new(t);
    rpc.set_timeout(cfg.call_timeout);
    rpc.bind_handler("soak", &handler)
        .expect("a fresh router has room");

    let started = StdInstant::now();
    let deadline = started + cfg.timeout;
    let in_flight = cfg.in_flight.clamp(1, 8);
    let mut pending: Vec<(Pending<Reply>, u64)> = Vec::new();
    let mut next = 0u64;
    let mut arg = vec![0u8; cfg.max_arg.min(MAX_ARG)];
    let mut chunk = [0u8; duet::MAX_PAYLOAD];
    let mut rx = [0u8; 1024];
    let mut rx_crc = 0u32;
    let per = rpc.transport().payload_per_buffer();
    let mut flushed = false;

    loop {
        // Start calls up to the in-flight limit.
        while pending.len() < in_flight && next < cfg.calls {
            let seq = next;
            let a = &mut arg[..arg_len(cfg, dir, seq).min(MAX_ARG)];
            fill(key(cfg, dir, seq, 0), a);
            match rpc.call_async::<Reply, _>("soak", (seq, Bin(a))) {
                Ok(p) => {
                    pending.push((p, seq));
                    report.calls += 1;
                    report.arg_bytes += a.len() as u64;
                    if a.len() + 24 > per {
                        report.multi_buffer_calls += 1;
                    }
                    next += 1;
                }
                Err(Error::TooManyCalls) => break,
                Err(e) => {
                    // Not sent (no buffer before the deadline, peer reset, not ready...).
                    report.calls += 1;
                    report.fail(&e);
                    next += 1;
                    break;
                }
            }
        }
        if let Err(Error::PeerReset) = rpc.poll() {
            report.resets += 1;
        }
        // Collect finished calls.
        let mut i = 0;
        while i < pending.len() {
            match rpc.poll_pending(&pending[i].0) {
                std::task::Poll::Pending => i += 1,
                std::task::Poll::Ready(r) => {
                    let (_, seq) = pending.swap_remove(i);
                    match r {
                        Ok((s, crc, bytes)) => {
                            let mut a = vec![0u8; arg_len(cfg, dir, seq)];
                            fill(key(cfg, dir, seq, 0), &mut a);
                            let mut want = vec![0u8; reply_len(cfg, dir, seq)];
                            fill(key(cfg, dir, seq, 1), &mut want);
                            if s == seq && crc == crc32(0, &a) && bytes.0 == want {
                                report.calls_ok += 1;
                            } else {
                                report.wrong_results += 1;
                            }
                        }
                        Err(Error::PeerReset) => {
                            report.fail(&Error::PeerReset);
                        }
                        Err(e) => report.fail(&e),
                    }
                }
            }
        }
        // Stream out, without blocking.
        {
            let mut s = rpc.serial();
            while report.stream_sent < cfg.stream_bytes {
                if !embedded_io::WriteReady::write_ready(&mut s).unwrap_or(false) {
                    break;
                }
                let k = (cfg.stream_bytes - report.stream_sent).min(chunk.len() as u64) as usize;
                stream_fill(cfg, dir, report.stream_sent, &mut chunk[..k]);
                match embedded_io::Write::write(&mut s, &chunk[..k]) {
                    Ok(n) => report.stream_sent += n as u64,
                    Err(_) => break,
                }
            }
            if report.stream_sent == cfg.stream_bytes && !flushed {
                let _ = embedded_io::WriteReady::write_ready(&mut s);
                // `poll` sends a partly filled buffer; done when nothing is left.
                flushed = s.pending_tx() == 0;
            }
            // Stream in.
            while s.available() > 0 {
                let n = embedded_io::Read::read(&mut s, &mut rx).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let mut want = [0u8; 1024];
                stream_fill(cfg, peer, report.stream_received, &mut want[..n]);
                if report.stream_mismatch.is_none() {
                    if let Some(j) = (0..n).find(|&j| rx[j] != want[j]) {
                        report.stream_mismatch = Some(report.stream_received + j as u64);
                    }
                }
                rx_crc = crc32(rx_crc, &rx[..n]);
                report.stream_received += n as u64;
            }
        }
        let mine_done = next >= cfg.calls && pending.is_empty() && flushed;
        let all_in = report.stream_received >= cfg.stream_bytes;
        if mine_done && all_in && !done[dir as usize].load(Ordering::SeqCst) {
            report.finished = true;
            done[dir as usize].store(true, Ordering::SeqCst);
        }
        if done[0].load(Ordering::SeqCst) && done[1].load(Ordering::SeqCst) {
            break;
        }
        if StdInstant::now() >= deadline {
            // Whatever is still pending stays counted as neither ok nor failed.
            for (p, _) in pending.drain(..) {
                let _ = rpc.poll_pending(&p);
                report.fail(&Error::Timeout);
            }
            break;
        }
        let p = rpc.transport().platform();
        if pending.len() >= in_flight || next >= cfg.calls {
            p.wait(p.now().saturating_add(Duration::from_micros(200)));
        }
    }
    // Both are done: poll until every buffer is back.
    let give_up = StdInstant::now() + Duration::from_secs(5);
    loop {
        let _ = rpc.poll();
        if let Ok(free) = rpc.transport_mut().tx_free(config) {
            report.tx_free = free;
        }
        report.rx_posted = rpc.transport().rx_posted(config);
        if report.pools_full() || StdInstant::now() >= give_up {
            break;
        }
        let p = rpc.transport().platform();
        p.wait(p.now().saturating_add(Duration::from_millis(1)));
    }
    report.served = served.get();
    report.bad_arguments = bad_args.get();
    report.stream_crc = rx_crc;
    report.rpc = rpc.stats();
    report.transport = rpc.transport().stats_now();
    report
}

/// Runs the workload on a fresh simulated chip without faults.
pub fn run(cfg: &SoakConfig) -> Result<SoakReport, SoakError> {
    let (m7, m4) = crate::platform::pair();
    run_on(m7, m4, crate::machine::sim_config(), cfg)
}

/// Runs the workload on two platforms of one chip (e.g. of a [`crate::SimChip`] with faults):
/// the M7 lays the memory out and both handshake, then both sides run [`run_side`] on two
/// threads.
pub fn run_on(
    m7: SimPlatform,
    m4: SimPlatform,
    config: Config,
    cfg: &SoakConfig,
) -> Result<SoakReport, SoakError> {
    if cfg.max_arg > MAX_ARG {
        return Err(SoakError::Config(format!(
            "max_arg {} is over {MAX_ARG}",
            cfg.max_arg
        )));
    }
    if config.max_message_len < MAX_ARG + 64 {
        return Err(SoakError::Config(
            "the transport must allow messages of 1964 bytes".into(),
        ));
    }
    let done = [AtomicBool::new(false), AtomicBool::new(false)];
    let started = StdInstant::now();
    let handshake = Duration::from_secs(10);
    let (a, b) = thread::scope(|s| {
        let spawn = |name: &str| {
            thread::Builder::new()
                .name(name.into())
                .stack_size(CORE_STACK)
        };
        let done = &done;
        let hb = spawn("M4")
            .spawn_scoped(s, move || {
                let mut t = Remote::new(m4, config);
                let deadline = t.platform().now().saturating_add(handshake);
                connect(&mut t, deadline).map_err(|e| SoakError::Start("M4", e))?;
                Ok(run_side(t, &config, 1, cfg, done))
            })
            .expect("spawn the M4 thread");
        let ha = spawn("M7")
            .spawn_scoped(s, move || {
                let mut t = Host::new(m7, config).map_err(|e| SoakError::Start("M7", e))?;
                let deadline = t.platform().now().saturating_add(handshake);
                connect(&mut t, deadline).map_err(|e| SoakError::Start("M7", e))?;
                Ok(run_side(t, &config, 0, cfg, done))
            })
            .expect("spawn the M7 thread");
        (ha.join(), hb.join())
    });
    let (Ok(a), Ok(b)) = (a, b) else {
        return Err(SoakError::Panic);
    };
    Ok(SoakReport {
        config: *cfg,
        m7: a?,
        m4: b?,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn sizes_cover_small_one_buffer_and_several() {
        let cfg = SoakConfig::short();
        let lens: Vec<usize> = (0..300).map(|s| arg_len(&cfg, 0, s)).collect();
        assert!(lens.iter().all(|&l| l <= MAX_ARG));
        assert!(lens.iter().any(|&l| l <= 64));
        assert!(lens.iter().any(|&l| l > 1000));
        assert_ne!(
            (0..50).map(|s| arg_len(&cfg, 0, s)).collect::<Vec<_>>(),
            (0..50).map(|s| arg_len(&cfg, 1, s)).collect::<Vec<_>>()
        );
    }
}
