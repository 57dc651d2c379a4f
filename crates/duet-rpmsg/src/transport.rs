//! The interface the RPC layer uses: send and receive whole payloads on the two endpoints.

use crate::platform::{Instant, OutOfBounds, Platform};

/// The two endpoints of the Arduino/MicroPython wire profile.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Endpoint {
    /// `"raw"`: opaque bytes (Arduino's `RPC.print`/`RPC.write`). Announced first (0x400).
    Raw = 0,
    /// `"rpc"`: MessagePack-RPC messages. Announced second (0x401).
    Rpc = 1,
}

impl Endpoint {
    /// Both endpoints, in announcement order.
    pub const ALL: [Endpoint; 2] = [Endpoint::Raw, Endpoint::Rpc];

    /// The name-service name (`"raw"` or `"rpc"`).
    pub const fn name(self) -> &'static str {
        match self {
            Endpoint::Raw => "raw",
            Endpoint::Rpc => "rpc",
        }
    }
}

/// A field in shared memory that held a value the protocol does not allow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Corruption {
    /// The resource table is missing or inconsistent.
    // Numbered from 1, so that the transport's internal `Result<(), Fault>` is 0 when `Ok`.
    ResourceTable = 1,
    /// A ring index moved by more than the ring size.
    RingIndex,
    /// A ring entry named a descriptor outside the table.
    DescriptorIndex,
    /// A descriptor's buffer address lies outside the buffer pool or is misaligned.
    DescriptorAddress,
    /// A descriptor's or used entry's length is larger than a buffer (or too small for a header).
    DescriptorLength,
    /// A descriptor's flags do not fit its direction (write-only for remote-to-host buffers,
    /// read-only for host-to-remote buffers; chained and indirect descriptors are refused).
    DescriptorFlags,
    /// A descriptor was returned twice or was never handed out.
    DescriptorState,
    /// An RPMsg header's payload length exceeds the buffer.
    HeaderLength,
    /// An RPMsg header's addresses match no endpoint.
    HeaderAddress,
    /// A name-service record was malformed.
    NameService,
}

/// Why a transport operation failed. Every variant leaves the transport usable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The handshake has not bound this endpoint yet.
    NotReady,
    /// Backpressure: not enough free buffers for this message right now. Nothing was sent.
    NoBuffer,
    /// The deadline passed before the operation could complete. Nothing was sent.
    Timeout,
    /// The message is longer than the configured maximum. Nothing was sent.
    MessageTooLarge {
        /// Length of the refused message.
        len: usize,
        /// The configured maximum message length.
        max: usize,
    },
    /// The receive buffer is too small for the next payload; it stays queued.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The peer wrote an invalid value; the offending entry was skipped.
    Corrupt(Corruption),
    /// The shared memory refused an access: `Host::new` found it smaller than the config's
    /// region (or a payload access's `OutOfBounds`, converted).
    Memory(OutOfBounds),
    /// The peer re-initialised the shared memory (reset); endpoints must be bound again.
    PeerReset,
    /// The [`Config`](crate::Config) breaks one of its documented limits.
    InvalidConfig,
}

impl From<OutOfBounds> for Error {
    fn from(e: OutOfBounds) -> Self {
        Error::Memory(e)
    }
}

/// One received payload: which endpoint and how many bytes were copied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Received {
    /// The endpoint it arrived on.
    pub endpoint: Endpoint,
    /// Payload length in bytes (at most one buffer's payload, 496 in the default profile).
    pub len: usize,
}

/// Read access to a received payload that is still in the transport's memory (see
/// [`Transport::try_recv_with`]); never a Rust reference into memory the peer writes.
pub trait PayloadRead {
    /// Payload length in bytes.
    fn len(&self) -> usize;

    /// Whether the payload is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `buf.len()` bytes from `offset` of the payload into `buf`; `OutOfBounds`
    /// (payload-relative) if that passes the payload's end or the memory refused the access.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds>;
}

/// A payload held in ordinary memory (transports that queue copies, tests).
impl PayloadRead for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let oob = OutOfBounds {
            offset,
            len: buf.len(),
        };
        let end = offset.checked_add(buf.len()).ok_or(oob)?;
        buf.copy_from_slice(self.get(offset..end).ok_or(oob)?);
        Ok(())
    }
}

/// A bound RPMsg transport (host or remote role), as seen by the layer above.
///
/// Messages longer than one buffer's payload are sent as consecutive buffers on the same
/// endpoint, and only if the configuration allows it; the receiver gets them buffer by buffer
/// (the layer above reassembles, as MicroPython's `streaming=True` does).
pub trait Transport {
    /// The platform underneath.
    type Platform: Platform;

    /// The platform (clock, wait, shared memory).
    fn platform(&self) -> &Self::Platform;

    /// Makes progress without blocking: handshake steps, name service, buffer reclaim.
    /// Once both endpoints are ready, `try_recv` does all that is left of it (control
    /// messages, reporting a reset; sends reclaim buffers themselves), so the caller may stop
    /// polling until an endpoint is no longer ready.
    fn poll(&mut self) -> Result<(), Error>;

    /// Whether `endpoint` is bound on both sides and can carry traffic.
    fn is_ready(&self, endpoint: Endpoint) -> bool;

    /// The largest message `try_send` accepts (496 unless multi-buffer messages are configured).
    fn max_message_len(&self) -> usize;

    /// The payload capacity of one buffer (496 in the default profile).
    fn payload_per_buffer(&self) -> usize;

    /// Sends `data` now, or fails with nothing sent (`NoBuffer` if the buffers it needs are
    /// not all free, `MessageTooLarge`, `NotReady`). Rings the peer's doorbell on success.
    fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), Error>;

    /// `try_send` of the message `head` followed by `tail`, each copied straight into the
    /// shared buffers (a byte stream sends its buffered bytes and the start of the next write
    /// together without joining them first). Same errors, for the combined length.
    fn try_send_parts(&mut self, endpoint: Endpoint, head: &[u8], tail: &[u8])
        -> Result<(), Error>;

    /// Like `try_send`, but waits for free buffers until `deadline` (`Timeout`, nothing sent).
    fn send(&mut self, endpoint: Endpoint, data: &[u8], deadline: Instant) -> Result<(), Error>;

    /// Copies the next received payload into `buf` (the only copy) and returns its buffer to
    /// the peer. `Ok(None)` when nothing is pending. Handles control messages on the way and
    /// reports a peer reset (`PeerReset`) as `poll` does.
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error>;

    /// Shows the next received payload to `f` where it lies (no copy by the transport): `f`
    /// gets its endpoint and read access, copies what it wants, and returns `(consume,
    /// value)`. With `consume` the payload's buffer goes back to the peer; without, the
    /// payload stays queued and the next receive shows it again. `Ok(None)` when nothing is
    /// pending; control messages and a peer reset are handled as by `try_recv`. (Generic, so
    /// not part of `dyn Transport`.)
    fn try_recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, &dyn PayloadRead) -> (bool, R),
    ) -> Result<Option<R>, Error>
    where
        Self: Sized;
}
