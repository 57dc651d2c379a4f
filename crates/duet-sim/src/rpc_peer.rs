//! `duet-sim rpc-remote`: the duet engine as the M4 (RPMsg remote) of a process-mode
//! file, for a host written in another language (e.g. `tests/peers/mpy_host.py`, a
//! MicroPython-style host) to talk to.
//!
//! Transport: [`config`], i.e. `Config::arduino()` with `max_message_len` = [`MAX_MESSAGE`]
//! (2048): a message larger than one buffer's payload (496 bytes) goes out as consecutive
//! buffers on the same endpoint, 496 bytes each but the last (MicroPython's `streaming=True`
//! framing), so the host must reassemble `"rpc"` by MessagePack completeness. Incoming
//! messages are reassembled the same way, up to [`RX_BUF`] bytes (see [`PeerRpc`]).
//!
//! What the remote does, in order (the host must expect exactly this):
//! 1. attaches to the file as the M4 (waiting for it to be created) and binds
//!    `add(i32, i32) -> i32`, `echo(str) -> str`, `blob(u32) -> bin` ([`blob`]: `n` bytes of
//!    [`blob_byte`], at most [`BLOB_MAX`], else an error text) and `done() -> true`;
//! 2. waits until the host has bound `"raw"` and `"rpc"` (the throw-away byte on each);
//! 3. calls `led(true)` (must return `true`), `led(false)` (must return `false`) and
//!    `nope_host()` (must fail as an unknown method) on the host;
//! 4. writes `hello from duet remote\n` on `"raw"`;
//! 5. serves calls and echoes every line received on `"raw"` back as `echo: <line>\n`, until
//!    the host calls `done()`.
//!
//! Every step has the run's deadline. Progress lines go to the `log` callback.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use duet::Rpc;
use duet_rpmsg::{Config, Platform, Remote, Transport};

use crate::platform::SimPlatform;
use crate::process::OpenError;
use duet::CpuId;

/// The greeting the remote writes on `"raw"` once the endpoints are bound.
pub const GREETING: &str = "hello from duet remote\n";

/// How long one call to the host may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest message the remote sends; one over 496 bytes is split into 496-byte buffers,
/// the last shorter.
pub const MAX_MESSAGE: usize = 2048;

/// The engine's reassembly (and encode) buffer: a request that starts a buffer is accepted up
/// to `floor(RX_BUF / 496) * 496` = 1984 bytes, one behind other messages in its first buffer
/// up to `RX_BUF - 495` = 1553 bytes (duet's `Rpc` docs).
pub const RX_BUF: usize = 2048;

/// The largest `n` that [`blob`] serves: its reply (`n` + at most 11 bytes) fits [`MAX_MESSAGE`].
pub const BLOB_MAX: u32 = 2000;

/// The engine as the remote runs it: 16 handlers, 8 calls, [`RX_BUF`] bytes of reassembly.
pub type PeerRpc<'a> = Rpc<'a, Remote<SimPlatform>, 16, 8, RX_BUF>;

/// The transport configuration: `Config::arduino()` with `max_message_len` = [`MAX_MESSAGE`].
pub fn config() -> Config {
    Config {
        max_message_len: MAX_MESSAGE,
        ..Config::arduino()
    }
}

/// Byte `i` of every [`blob`]: `i mod 251` (a prime, so the pattern never lines up with the
/// 496-byte buffers and a misplaced or repeated buffer shows).
pub fn blob_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// `n` bytes of [`blob_byte`], sent as MessagePack bin; over [`BLOB_MAX`]: an error text.
pub fn blob(n: u32) -> Result<Bytes, String> {
    if n > BLOB_MAX {
        return Err(format!("blob: n = {n} is over {BLOB_MAX}"));
    }
    Ok(Bytes((0..n as usize).map(blob_byte).collect()))
}

/// Owned bytes that serialize as MessagePack bin (what [`blob`] returns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// Why the remote failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerError {
    /// The process-mode file could not be attached within the deadline.
    Open(OpenError),
    /// The router has no room for the bound functions (a configuration bug).
    RouterFull,
    /// An RPC step failed: `stage` says which.
    Rpc {
        /// What was going on.
        stage: &'static str,
        /// The engine's error.
        error: duet::Error,
    },
    /// The `"raw"` stream failed.
    Serial(&'static str, duet::SerialError),
    /// A result from the host was not what the protocol above expects.
    Check(String),
    /// The host did not call `done()` before the deadline.
    NotDone,
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Open(e) => write!(f, "shared-memory file: {e}"),
            PeerError::RouterFull => f.write_str("router full"),
            PeerError::Rpc { stage, error } => write!(f, "{stage}: {error}"),
            PeerError::Serial(stage, e) => write!(f, "{stage}: {e:?}"),
            PeerError::Check(s) => write!(f, "check failed: {s}"),
            PeerError::NotDone => f.write_str("the host did not call done() before the deadline"),
        }
    }
}

impl std::error::Error for PeerError {}

fn at(stage: &'static str) -> impl Fn(duet::Error) -> PeerError {
    move |error| PeerError::Rpc { stage, error }
}

/// Runs the remote side described in the module docs on the file `shm`, giving up after
/// `timeout` (attach, handshake and the whole exchange). Returns how many calls it served.
pub fn run_remote(
    shm: &Path,
    timeout: Duration,
    log: &mut dyn FnMut(&str),
) -> Result<u32, PeerError> {
    let platform = SimPlatform::attach_file(shm, CpuId::Cm4, timeout).map_err(PeerError::Open)?;
    let deadline = platform.now().saturating_add(timeout);
    log("remote: attached as the M4");

    let served = Cell::new(0u32);
    let done = Cell::new(false);
    let add = |a: i32, b: i32| {
        served.set(served.get() + 1);
        a.wrapping_add(b)
    };
    let echo = |s: String| {
        served.set(served.get() + 1);
        s
    };
    let done_fn = || {
        done.set(true);
        true
    };
    let blob_fn = |n: u32| {
        served.set(served.get() + 1);
        blob(n)
    };
    let mut rpc: PeerRpc<'_> = Rpc::new(Remote::new(platform, config()));
    rpc.set_timeout(CALL_TIMEOUT);
    for r in [
        rpc.bind("add", &add),
        rpc.bind("echo", &echo),
        rpc.bind("blob", &blob_fn),
        rpc.bind("done", &done_fn),
    ] {
        r.map_err(|_| PeerError::RouterFull)?;
    }

    rpc.wait_ready(deadline).map_err(at("handshake"))?;
    log("remote: raw and rpc bound by the host");

    for on in [true, false] {
        let lit: bool = rpc.call("led", (on,)).map_err(at("led"))?;
        if lit != on {
            return Err(PeerError::Check(format!("led({on}) returned {lit}")));
        }
        log(&format!("remote: led({on}) -> {lit}"));
    }
    match rpc.call::<(), _>("nope_host", ()) {
        Err(duet::Error::UnknownMethod(e)) => {
            log(&format!("remote: nope_host() -> unknown method: {e}"));
        }
        other => {
            return Err(PeerError::Check(format!(
                "nope_host() should fail as unknown, got {other:?}"
            )))
        }
    }

    write_raw(&mut rpc, GREETING.as_bytes())?;
    log(&format!("remote: wrote {} bytes on raw", GREETING.len()));

    let mut line = Vec::new();
    while !done.get() {
        rpc.poll().map_err(at("serve"))?;
        let mut echoes = Vec::new();
        {
            use embedded_io::Read;
            let mut serial = rpc.serial();
            let mut buf = [0u8; 256];
            while serial.available() > 0 {
                let n = serial
                    .read(&mut buf)
                    .map_err(|e| PeerError::Serial("read", e))?;
                for &b in &buf[..n] {
                    if b == b'\n' {
                        echoes.push(String::from_utf8_lossy(&line).into_owned());
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
            }
        }
        for l in echoes {
            log(&format!("remote: raw from host: {l}"));
            write_raw(&mut rpc, format!("echo: {l}\n").as_bytes())?;
        }
        let now = rpc.transport().platform().now();
        if now >= deadline {
            return Err(PeerError::NotDone);
        }
        let slice = now.saturating_add(Duration::from_millis(10)).min(deadline);
        rpc.transport().platform().wait(slice);
    }
    // One more pass, so buffers of the last exchange are returned before detaching.
    rpc.poll().map_err(at("serve"))?;
    log(&format!("remote: done; served {} calls", served.get()));
    let st = rpc.stats();
    log(&format!(
        "remote: stats: {} framing errors, {} oversized, {} malformed, {} reply failures",
        st.framing_errors, st.oversized_messages, st.malformed_messages, st.reply_failures
    ));
    Ok(served.get())
}

/// Writes `bytes` on `"raw"` and flushes.
fn write_raw(rpc: &mut PeerRpc<'_>, bytes: &[u8]) -> Result<(), PeerError> {
    use embedded_io::Write;
    let mut serial = rpc.serial();
    serial
        .write_all(bytes)
        .map_err(|e| PeerError::Serial("write", e))?;
    serial.flush().map_err(|e| PeerError::Serial("flush", e))
}
