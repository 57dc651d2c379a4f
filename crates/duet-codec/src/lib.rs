//! MessagePack and MessagePack-RPC as bytes: `no_std`, no heap, zero-copy, with serde.
//!
//! duet-codec turns values into MessagePack bytes in a caller's `&mut [u8]` and reads them back
//! from a `&[u8]`, borrowing strings and byte strings from the input. It does no I/O.
//!
//! # Layers
//! - [`Encoder`] / [`Decoder`]: one MessagePack value at a time (nil, bool, every int width,
//!   f32/f64, str, bin, array and map headers, ext). Encoding is compact (the smallest width, as
//!   msgpack-c and rmp do); decoding accepts every valid width.
//! - [`RawValue`]: exactly one encoded value, borrowed, to decode later or forward verbatim.
//! - [`Skipper`]: finds where a value ends when its bytes arrive in chunks (to drop a message
//!   too large to buffer and resume behind it).
//! - serde: [`encode`], [`decode`], [`to_slice`], [`from_slice`], [`Serializer`], [`Deserializer`].
//! - [`rpc`]: MessagePack-RPC request, response and notification messages.
//!
//! # Limits
//! - Nesting depth: at most [`MAX_DEPTH`] arrays/maps inside each other. Deeper input is rejected
//!   with [`Error::DepthLimit`]; no input causes recursion beyond that, a panic or an
//!   out-of-bounds access.
//! - Lengths are `u32` on the wire (str32/bin32/array32/map32); longer values give
//!   [`Error::OutOfRange`].
//!
//! # How serde types map to MessagePack
//! The mapping is byte-for-byte the same as rmp-serde's default configuration (this is tested).
//!
//! | Rust / serde | MessagePack |
//! |---|---|
//! | `bool`, integers | bool; ints in the smallest form; non-negative signed values use the unsigned forms (as msgpack-c does) |
//! | `f32` / `f64` | float32 / float64 (decoding an `f64` also accepts float32) |
//! | `char`, `&str` | str |
//! | `serialize_bytes` (`&[u8]` via a serde_bytes-like wrapper) | bin; `&[u8]` decodes from bin or str |
//! | `Option` | `None` = nil, `Some(v)` = `v` |
//! | `()` | nil (decoding also accepts an empty array) |
//! | unit struct | empty array (decoding also accepts nil) |
//! | newtype struct | the inner value |
//! | tuples, tuple structs, sequences | array (byte sequences such as `[u8; N]` also decode from bin) |
//! | maps | map |
//! | structs | **array** of the fields in declaration order (like msgpack-c's `MSGPACK_DEFINE` and rmp-serde); decoding accepts an array *or* a map keyed by field name (what MicroPython's dicts give); unknown map keys are skipped |
//! | unit variant | the variant name as str (decoding also accepts the variant index as uint) |
//! | newtype / tuple / struct variant | a one-entry map `{name: value}`; tuple and struct variants carry an array |
//!
//! Sequences and maps of unknown length (`serialize_seq(None)`) are supported: the encoder
//! reserves an array32/map32 header, counts the elements and then rewrites the header in its
//! compact form, moving the body down. `collect_str` works the same way for str.
//!
//! `deserialize_any` works for every type except ext (it gives [`Error::Unsupported`]), so serde's
//! `IgnoredAny`, untagged enums and `flatten` (the latter two need serde's `alloc` feature) work.
//! Decoding is strict about element counts: an array with more or fewer elements than a tuple or
//! struct has gives [`Error::InvalidLength`].
//!
//! # Example
//! ```
//! use duet_codec::rpc::{self, Message, MsgId};
//!
//! // Arduino's `RPC.call("add", 1, 2)` from thread 0x24001A30:
//! let mut buf = [0u8; 64];
//! let n = rpc::encode_request(&mut buf, MsgId::from(0x2400_1A30), "add", &(1, 2))?;
//! assert_eq!(&buf[..n], b"\x94\x00\xCE\x24\x00\x1A\x30\xA3add\x92\x01\x02");
//!
//! let (msg, used) = rpc::parse(&buf[..n])?;
//! assert_eq!(used, n);
//! if let Message::Request { msgid, method: "add", params } = msg {
//!     let (a, b): (i32, i32) = params.decode()?;
//!     let mut out = [0u8; 16];
//!     let n = rpc::encode_response::<(), _>(&mut out, msgid, None, &(a + b))?;
//!     assert_eq!(&out[..n], b"\x94\x01\xCE\x24\x00\x1A\x30\xC0\x03");
//! }
//! # Ok::<(), duet_codec::Error>(())
//! ```
#![no_std]
#![deny(missing_docs)]

mod decode;
mod encode;
mod raw;
pub mod rpc;
mod serde_de;
mod serde_ser;
mod skipper;

pub use decode::Decoder;
pub use encode::Encoder;
pub use raw::RawValue;
pub use serde_de::{decode, from_slice, Deserializer};
pub use serde_ser::{encode, to_slice, Serializer};
pub use skipper::Skipper;

/// Moves `buf[src]` to `buf[dst..]` when `dst <= src.start`, by a forward byte copy (correct
/// for that overlap). For no_std users that shift buffers: unlike `copy_within` it does not
/// link the general `memmove` (about 1.5 KiB on thumbv7em). Indices out of range end the copy
/// early; it never panics.
#[inline(never)]
pub fn move_down(buf: &mut [u8], src: core::ops::Range<usize>, dst: usize) {
    for (to, from) in (dst..).zip(src) {
        // The second bound check also keeps LLVM from turning the loop into a `memmove` call.
        let (Some(&b), true) = (buf.get(from), to < buf.len()) else {
            return;
        };
        buf[to] = b;
    }
}

/// The deepest nesting of arrays and maps that is accepted (a top-level array is depth 1).
///
/// Input that nests deeper is rejected with [`Error::DepthLimit`] by [`Decoder::skip`],
/// [`Skipper`], [`RawValue::new`], [`rpc::parse`] and the serde [`Deserializer`].
pub const MAX_DEPTH: usize = 32;

/// What went wrong while encoding or decoding. Every failure is one of these values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The input ended in the middle of a value.
    Truncated,
    /// The next value has a different MessagePack type than the one asked for.
    WrongType,
    /// A number does not fit the target type, a length does not fit in 32 bits, or an RPC
    /// message type is not 0, 1 or 2.
    OutOfRange,
    /// The output buffer is too small; the encoder's position is left where it was.
    BufferTooSmall,
    /// Arrays/maps are nested deeper than [`MAX_DEPTH`].
    DepthLimit,
    /// A str is not valid UTF-8.
    InvalidUtf8,
    /// Bytes are left after the value (or message) that should fill the whole input.
    TrailingBytes,
    /// The byte 0xC1, which MessagePack never uses, was found where a value starts.
    InvalidMarker,
    /// An array or map has more or fewer elements than the target type (tuple, struct, RPC
    /// message) needs.
    InvalidLength,
    /// A value the codec cannot represent: ext through `deserialize_any`, or a 128-bit integer
    /// out of the 64-bit range.
    Unsupported,
    /// A serde `Serialize`/`Deserialize` implementation reported its own error (the message is
    /// dropped: there is no heap to keep it).
    Custom,
}

impl Error {
    /// A short English description, without pulling in `core::fmt`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "input ends inside a value",
            Error::WrongType => "unexpected MessagePack type",
            Error::OutOfRange => "value out of range",
            Error::BufferTooSmall => "output buffer too small",
            Error::DepthLimit => "nesting too deep",
            Error::InvalidUtf8 => "string is not valid UTF-8",
            Error::TrailingBytes => "trailing bytes after the value",
            Error::InvalidMarker => "invalid MessagePack marker 0xC1",
            Error::InvalidLength => "wrong number of elements",
            Error::Unsupported => "unsupported value",
            Error::Custom => "error reported by a serde implementation",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for Error {}

/// `Result` with the codec's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// The MessagePack type family of a value, as told by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// nil (0xC0).
    Nil,
    /// true/false (0xC2, 0xC3).
    Bool,
    /// An unsigned-format integer: positive fixint, uint8..uint64.
    Uint,
    /// A signed-format integer: negative fixint, int8..int64 (the value may still be >= 0).
    Int,
    /// float32.
    F32,
    /// float64.
    F64,
    /// str (fixstr, str8/16/32).
    Str,
    /// bin8/16/32.
    Bin,
    /// array (fixarray, array16/32).
    Array,
    /// map (fixmap, map16/32).
    Map,
    /// ext (fixext1..16, ext8/16/32).
    Ext,
}

impl Kind {
    /// The kind of a value whose first byte is `marker`; 0xC1 is [`Error::InvalidMarker`].
    pub const fn of_marker(marker: u8) -> Result<Kind> {
        Ok(match marker {
            0x00..=0x7f | 0xcc..=0xcf => Kind::Uint,
            0x80..=0x8f | 0xde | 0xdf => Kind::Map,
            0x90..=0x9f | 0xdc | 0xdd => Kind::Array,
            0xa0..=0xbf | 0xd9..=0xdb => Kind::Str,
            0xc0 => Kind::Nil,
            0xc1 => return Err(Error::InvalidMarker),
            0xc2 | 0xc3 => Kind::Bool,
            0xc4..=0xc6 => Kind::Bin,
            0xc7..=0xc9 | 0xd4..=0xd8 => Kind::Ext,
            0xca => Kind::F32,
            0xcb => Kind::F64,
            0xd0..=0xd3 | 0xe0..=0xff => Kind::Int,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::move_down;

    #[test]
    fn move_down_shifts_overlapping_bytes_and_stops_at_bounds() {
        let mut b = *b"0123456789";
        move_down(&mut b, 3..8, 1);
        assert_eq!(&b, b"0345676789");
        let mut b = *b"0123456789";
        move_down(&mut b, 4..10, 0);
        assert_eq!(&b, b"4567896789");
        // Out of range: copies what exists, never panics.
        let mut b = *b"abcd";
        move_down(&mut b, 2..9, 0);
        assert_eq!(&b, b"cdcd");
        move_down(&mut b, 0..2, 7);
        assert_eq!(&b, b"cdcd");
    }
}
