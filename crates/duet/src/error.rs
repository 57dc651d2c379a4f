//! Error values of the RPC engine and the texts it exchanges with the peer.

use core::fmt;

/// Longest error text (in bytes) kept from a peer's error reply; longer texts are cut at a
/// character boundary and [`RemoteError::truncated`] is set.
pub const REMOTE_ERROR_LEN: usize = 160;

/// An error reply from the peer, copied out of the message (no heap): its text if it was a
/// MessagePack str, else its encoded MessagePack bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RemoteError {
    buf: [u8; REMOTE_ERROR_LEN],
    len: u8,
    text: bool,
    truncated: bool,
}

impl RemoteError {
    /// Keeps `s` (cut to [`REMOTE_ERROR_LEN`] bytes at a char boundary) as an error text.
    pub fn from_text(s: &str) -> Self {
        let mut end = s.len().min(REMOTE_ERROR_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut e = Self::empty(true);
        e.buf[..end].copy_from_slice(&s.as_bytes()[..end]);
        e.len = end as u8;
        e.truncated = end < s.len();
        e
    }

    /// Keeps an error value that is not a str, as its encoded bytes (cut to the limit).
    pub fn from_raw(bytes: &[u8]) -> Self {
        let end = bytes.len().min(REMOTE_ERROR_LEN);
        let mut e = Self::empty(false);
        e.buf[..end].copy_from_slice(&bytes[..end]);
        e.len = end as u8;
        e.truncated = end < bytes.len();
        e
    }

    /// Builds the error from the `error` field of a response.
    pub fn from_value(v: duet_codec::RawValue<'_>) -> Self {
        match v.decoder().read_str() {
            Ok(s) => Self::from_text(s),
            Err(_) => Self::from_raw(v.as_bytes()),
        }
    }

    fn empty(text: bool) -> Self {
        RemoteError {
            buf: [0; REMOTE_ERROR_LEN],
            len: 0,
            text,
            truncated: false,
        }
    }

    /// The error text, if the peer sent a str.
    pub fn text(&self) -> Option<&str> {
        if self.text {
            core::str::from_utf8(&self.buf[..self.len as usize]).ok()
        } else {
            None
        }
    }

    /// The encoded MessagePack value, if the peer sent something other than a str.
    pub fn raw(&self) -> Option<&[u8]> {
        (!self.text).then(|| &self.buf[..self.len as usize])
    }

    /// True if the text or value was longer than [`REMOTE_ERROR_LEN`] and was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Debug for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => write!(f, "{t:?}"),
            None => write!(f, "raw{:02x?}", &self.buf[..self.len as usize]),
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => f.write_str(t),
            None => write!(f, "{:02x?}", &self.buf[..self.len as usize]),
        }
    }
}

/// Why an RPC operation failed. Every failure is one of these values; none of them leaves the
/// engine unusable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// No reply before the deadline. The call's slot is freed; a late reply is dropped.
    Timeout,
    /// The peer has no handler for the name (rpclib's or MicroPython's "not found" text).
    UnknownMethod(RemoteError),
    /// The peer's handler takes a different number of arguments (rpclib's C0002 text).
    WrongArgCount(RemoteError),
    /// The peer could not decode an argument as the handler's parameter type.
    WrongArgType(RemoteError),
    /// The peer's handler returned an error (any other error value).
    Remote(RemoteError),
    /// All call slots are in use (the capacity is the `CALLS` const generic), counting calls
    /// whose reply arrived but was not taken yet (see [`Pending`](crate::Pending)).
    TooManyCalls,
    /// The transport has not bound the `"rpc"` (or `"raw"`) endpoint with the peer yet.
    NotReady,
    /// The peer re-initialised the shared memory; pending calls were failed.
    PeerReset,
    /// A message is longer than the transport's or the engine's limit; nothing was sent
    /// (outgoing), or a reply did not fit the call slot (incoming).
    MessageTooLarge {
        /// Length of the message, if known (0 when encoding stopped at the buffer's end).
        len: usize,
        /// The limit that was exceeded.
        max: usize,
    },
    /// The reply's result could not be decoded as the expected type.
    Decode(duet_codec::Error),
    /// The arguments could not be encoded.
    Encode(duet_codec::Error),
    /// The transport failed (other than the cases above).
    Transport(duet_rpmsg::Error),
    /// The remote core could not be booted (see [`BootError`](crate::BootError)).
    Boot(crate::BootError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("timed out waiting for the reply"),
            Error::UnknownMethod(e) => write!(f, "unknown method: {e}"),
            Error::WrongArgCount(e) => write!(f, "wrong argument count: {e}"),
            Error::WrongArgType(e) => write!(f, "wrong argument type: {e}"),
            Error::Remote(e) => write!(f, "remote error: {e}"),
            Error::TooManyCalls => f.write_str("too many calls in flight"),
            Error::NotReady => f.write_str("peer endpoint not bound yet"),
            Error::PeerReset => f.write_str("peer reset"),
            Error::MessageTooLarge { len: 0, max } => {
                write!(f, "message too large (over the {max}-byte limit)")
            }
            Error::MessageTooLarge { len, max } => {
                write!(f, "message too large ({len} bytes, limit {max})")
            }
            Error::Decode(e) => write!(f, "cannot decode the result: {e}"),
            Error::Encode(e) => write!(f, "cannot encode the arguments: {e}"),
            Error::Transport(e) => write!(f, "transport error: {e:?}"),
            Error::Boot(e) => write!(f, "boot failed: {e:?}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<duet_rpmsg::Error> for Error {
    fn from(e: duet_rpmsg::Error) -> Self {
        match e {
            duet_rpmsg::Error::NotReady => Error::NotReady,
            duet_rpmsg::Error::Timeout => Error::Timeout,
            duet_rpmsg::Error::PeerReset => Error::PeerReset,
            duet_rpmsg::Error::MessageTooLarge { len, max } => Error::MessageTooLarge { len, max },
            other => Error::Transport(other),
        }
    }
}

/// [`Error`] as the engine passes it around inside: the same cases, but an error reply's value
/// stays in the engine (see `Link::stash_remote`) until the public API builds the [`Error`],
/// so results on the call path are a few bytes, not a [`RemoteError`] (about 170 bytes) copied
/// at every step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fail {
    Timeout,
    TooManyCalls,
    NotReady,
    PeerReset,
    MessageTooLarge {
        len: usize,
        max: usize,
    },
    Decode(duet_codec::Error),
    Encode(duet_codec::Error),
    Transport(duet_rpmsg::Error),
    /// The peer answered with an error value; the engine holds it.
    Remote,
}

impl Fail {
    /// The public error; `remote` gives the stashed error value for [`Fail::Remote`].
    pub(crate) fn into_error(self, remote: impl FnOnce() -> RemoteError) -> Error {
        match self {
            Fail::Timeout => Error::Timeout,
            Fail::TooManyCalls => Error::TooManyCalls,
            Fail::NotReady => Error::NotReady,
            Fail::PeerReset => Error::PeerReset,
            Fail::MessageTooLarge { len, max } => Error::MessageTooLarge { len, max },
            Fail::Decode(e) => Error::Decode(e),
            Fail::Encode(e) => Error::Encode(e),
            Fail::Transport(e) => Error::Transport(e),
            Fail::Remote => text::classify(remote()),
        }
    }
}

impl From<duet_rpmsg::Error> for Fail {
    fn from(e: duet_rpmsg::Error) -> Self {
        match e {
            duet_rpmsg::Error::NotReady => Fail::NotReady,
            duet_rpmsg::Error::Timeout => Fail::Timeout,
            duet_rpmsg::Error::PeerReset => Fail::PeerReset,
            duet_rpmsg::Error::MessageTooLarge { len, max } => Fail::MessageTooLarge { len, max },
            other => Fail::Transport(other),
        }
    }
}

/// The texts duet sends for dispatch errors, and how it classifies the texts it receives.
pub mod text {
    use super::{Error, RemoteError};

    /// rpclib's unknown-method text starts with this (then `<name>' with argument count <n>.`).
    pub const UNKNOWN_PREFIX: &str = "rpclib: server could not find function '";
    /// rpclib's wrong-arity text starts with this.
    pub const ARITY_PREFIX: &str = "rpclib: client error C0002:";
    /// MicroPython msgpackrpc's unknown-method text starts with this.
    pub const MPY_UNKNOWN_PREFIX: &str = "Unbound function called";
    /// duet's wrong-argument-type text starts with this (then `<name>' ...`).
    pub const TYPE_PREFIX: &str = "duet: wrong argument type for function '";
    /// duet's text for a request received while handlers are nested too deeply.
    pub const NESTING: &str = "duet: too many nested calls; request refused";
    /// duet's text for a request too large for the receiver's buffer.
    pub const TOO_LARGE: &str = "duet: message too large for the receive buffer";
    /// duet's text for a result too large to send.
    pub const RESULT_TOO_LARGE: &str = "duet: result too large to send";
    /// duet's text for a result whose serialization failed starts with this (then the
    /// encoder's reason, e.g. `error reported by a serde implementation`).
    pub const RESULT_UNENCODABLE_PREFIX: &str = "duet: result could not be encoded: ";
    /// duet's text for a request whose msgid can be read but whose envelope, method or params
    /// cannot be used starts with this (then what is wrong, e.g. `params are not an array`).
    pub const MALFORMED_PREFIX: &str = "duet: malformed request: ";

    /// Maps an `error` field to the matching [`Error`] variant by its text.
    pub fn classify(e: RemoteError) -> Error {
        // On the bytes: a str's text is valid UTF-8 (checked when it was read), and the
        // prefixes are ASCII, so no second UTF-8 check is needed.
        let t: &[u8] = if e.text {
            &e.buf[..e.len as usize]
        } else {
            &[]
        };
        let has = |prefix: &str| t.starts_with(prefix.as_bytes());
        if has(UNKNOWN_PREFIX) || has(MPY_UNKNOWN_PREFIX) {
            Error::UnknownMethod(e)
        } else if has(ARITY_PREFIX) {
            Error::WrongArgCount(e)
        } else if has(TYPE_PREFIX) {
            Error::WrongArgType(e)
        } else {
            Error::Remote(e)
        }
    }
}
