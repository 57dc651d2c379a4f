//! MessagePack-RPC messages: request `[0, msgid, method, params]`, response
//! `[1, msgid, error, result]` and notification `[2, method, params]`.
//!
//! Encoding follows what Arduino's RPC library requires: the outer array uses the one-byte
//! fixarray header (0x94/0x93) and the type is a positive fixint, because the receiver
//! dispatches on byte 1. Parsing accepts any valid width for every field. msgids are kept as
//! received ([`MsgId`]) so a response echoes them byte for byte.

use crate::encode::int_head;
use crate::{encode as encode_value, Decoder, Encoder, Error, RawValue, Result};
use serde::Serialize;

/// Message type of a request.
pub const REQUEST: u8 = 0;
/// Message type of a response.
pub const RESPONSE: u8 = 1;
/// Message type of a notification.
pub const NOTIFICATION: u8 = 2;

/// A message id as received, re-encoded byte-for-byte identically.
///
/// Arduino sends thread pointers as uint32 (`0xCE`), msgpack-c may use any width, and a peer
/// could even send a negative int; the marker byte is kept so the echo matches. Equality and
/// hashing compare the numeric value only, so `0x05` and `0xCE 00 00 00 05` are equal.
#[derive(Clone, Copy, Debug)]
pub struct MsgId {
    /// The MessagePack marker byte (for fixints: the whole encoding).
    marker: u8,
    /// The value's bits (sign-extended for signed markers).
    bits: u64,
}

impl MsgId {
    /// A msgid with `value` in the smallest encoding.
    pub fn new(value: i64) -> Self {
        MsgId {
            marker: int_head(value as u64, value < 0).0,
            bits: value as u64,
        }
    }

    /// The numeric value. A uint64 above `i64::MAX` wraps to a negative number.
    pub fn value(&self) -> i64 {
        self.bits as i64
    }

    /// The value as `u32` if it fits (Arduino msgids do).
    pub fn as_u32(&self) -> Option<u32> {
        if self.is_negative() {
            None
        } else {
            u32::try_from(self.bits).ok()
        }
    }

    fn is_negative(&self) -> bool {
        matches!(self.marker, 0xd0..=0xd3 | 0xe0..=0xff) && (self.bits as i64) < 0
    }

    /// Reads a msgid (any integer width) from `dec`, remembering its encoding. On error the
    /// position is unchanged.
    pub fn read(dec: &mut Decoder<'_>) -> Result<Self> {
        let marker = dec.peek_byte()?;
        let bits = dec.read_int_bits()?;
        Ok(MsgId { marker, bits })
    }

    /// Writes the msgid with the encoding it was received in.
    pub fn write(&self, enc: &mut Encoder<'_>) -> Result<()> {
        // uint8..uint64 (0xCC..=0xCF) and int8..int64 (0xD0..=0xD3): 1 << (marker & 3) bytes;
        // fixints: the marker is the value.
        let width = if (0xcc..=0xd3).contains(&self.marker) {
            1 << (self.marker & 3)
        } else {
            0
        };
        enc.emit(self.marker, self.bits, width, &[])
    }
}

impl From<u32> for MsgId {
    /// A msgid with `value` in the smallest encoding.
    fn from(value: u32) -> Self {
        MsgId::new(i64::from(value))
    }
}

impl PartialEq for MsgId {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits && self.is_negative() == other.is_negative()
    }
}

impl Eq for MsgId {}

impl core::hash::Hash for MsgId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
        self.is_negative().hash(state);
    }
}

/// One parsed MessagePack-RPC message; strings and values borrow from the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Message<'a> {
    /// `[0, msgid, method, params]`: a call that expects a response.
    Request {
        /// The caller's id, to echo in the response.
        msgid: MsgId,
        /// The method name.
        method: &'a str,
        /// The arguments, an array (checked).
        params: RawValue<'a>,
    },
    /// `[1, msgid, error, result]`: the answer to a request.
    Response {
        /// The id of the request this answers.
        msgid: MsgId,
        /// nil on success, else the error (Arduino and MicroPython send a str).
        error: RawValue<'a>,
        /// The result (nil for void functions and on error).
        result: RawValue<'a>,
    },
    /// `[2, method, params]`: a call without a response.
    Notification {
        /// The method name.
        method: &'a str,
        /// The arguments, an array (checked).
        params: RawValue<'a>,
    },
}

/// Parses one message from the front of `buf` and returns it with the number of bytes it took;
/// several messages may follow each other in one buffer (as Arduino's receiver allows).
///
/// Errors: not an array or a type that is not an integer → [`Error::WrongType`]; type not 0, 1
/// or 2 → [`Error::OutOfRange`]; wrong element count → [`Error::InvalidLength`]; params that are
/// not an array → [`Error::WrongType`]; plus any decoding error of the fields.
pub fn parse(buf: &[u8]) -> Result<(Message<'_>, usize)> {
    let mut d = Decoder::new(buf);
    let n = d.read_array_len()?;
    let ty = d.read_u64()?;
    if ty > 2 {
        return Err(Error::OutOfRange);
    }
    if n != if ty == 2 { 3 } else { 4 } {
        return Err(Error::InvalidLength);
    }
    // Requests and responses carry a msgid; requests and notifications a method and params;
    // responses an error and a result.
    let msgid = if ty != 2 {
        Some(MsgId::read(&mut d)?)
    } else {
        None
    };
    let msg = match msgid {
        Some(msgid) if ty == 1 => Message::Response {
            msgid,
            error: d.read_raw_at(1)?,
            result: d.read_raw_at(1)?,
        },
        _ => {
            let method = d.read_str()?;
            if !matches!(d.peek_byte()?, 0x90..=0x9f | 0xdc | 0xdd) {
                return Err(Error::WrongType);
            }
            let params = d.read_raw_at(1)?;
            match msgid {
                Some(msgid) => Message::Request {
                    msgid,
                    method,
                    params,
                },
                None => Message::Notification { method, params },
            }
        }
    };
    Ok((msg, d.position()))
}

/// [`parse`] for a receive buffer that the caller keeps writing behind the message: parses the
/// message at the front of `buf[..len]` (`len` is capped at `buf.len()`) once and splits `buf`
/// behind it. Returns the message (borrowing `buf[..used]`), `used` (the bytes it took, as from
/// [`parse`]) and `buf[used..]`, mutable: the bytes after the message and the free space, for
/// example to receive more while a handler runs. Errors as [`parse`].
///
/// This is `parse(&buf[..len])` followed by `buf.split_at_mut(used)`, with the message moved
/// over to the front part instead of parsed a second time (safe code for what would otherwise
/// need raw pointers).
pub fn parse_split(buf: &mut [u8], len: usize) -> Result<(Message<'_>, usize, &mut [u8])> {
    let len = len.min(buf.len());
    let (msg, used) = parse(buf.get(..len).unwrap_or(&[]))?;
    // Where the message's fields lie in `buf` (all of them are inside `buf[..used]`).
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| {
        let start = (s.as_ptr() as usize).wrapping_sub(base);
        start..start.wrapping_add(s.len())
    };
    let (ty, msgid, a, b) = match msg {
        Message::Request {
            msgid,
            method,
            params,
        } => (REQUEST, msgid, at(method.as_bytes()), at(params.as_bytes())),
        Message::Response {
            msgid,
            error,
            result,
        } => (RESPONSE, msgid, at(error.as_bytes()), at(result.as_bytes())),
        Message::Notification { method, params } => (
            NOTIFICATION,
            MsgId::new(0),
            at(method.as_bytes()),
            at(params.as_bytes()),
        ),
    };
    let (head, rest) = buf.split_at_mut(used);
    let head: &[u8] = head;
    let a = head.get(a).unwrap_or(&[]);
    let b = RawValue::from_validated(head.get(b).unwrap_or(&[]));
    let msg = if ty == RESPONSE {
        Message::Response {
            msgid,
            error: RawValue::from_validated(a),
            result: b,
        }
    } else {
        // SAFETY: `a` is the method that `parse` returned as a `&str` just above, so these
        // bytes are UTF-8: they are the same memory (same offsets into `buf`), and nothing
        // wrote to `buf` in between (this function holds its `&mut` borrow throughout).
        let method = unsafe { core::str::from_utf8_unchecked(a) };
        if ty == REQUEST {
            Message::Request {
                msgid,
                method,
                params: b,
            }
        } else {
            Message::Notification { method, params: b }
        }
    };
    Ok((msg, used, rest))
}

/// Appends `params`, which must serialize as an array (a tuple, array or sequence). A value that
/// serializes as nil (such as `()`) is sent as the empty array. Else [`Error::WrongType`].
fn write_params<P: Serialize + ?Sized>(e: &mut Encoder<'_>, params: &P) -> Result<()> {
    let start = e.position();
    encode_value(e, params)?;
    match e.byte_at(start) {
        Some(0xc0) => e.set_byte(start, 0x90),
        Some(0x90..=0x9f | 0xdc | 0xdd) => {}
        _ => {
            e.truncate(start);
            return Err(Error::WrongType);
        }
    }
    Ok(())
}

/// Encodes the request `[0, msgid, method, params]` into `buf` and returns its length.
/// `params` must serialize as an array (see the module docs); `()` is sent as `[]`.
pub fn encode_request<P: Serialize + ?Sized>(
    buf: &mut [u8],
    msgid: MsgId,
    method: &str,
    params: &P,
) -> Result<usize> {
    let mut e = Encoder::new(buf);
    e.header(0x94, REQUEST)?;
    msgid.write(&mut e)?;
    e.write_str(method)?;
    write_params(&mut e, params)?;
    Ok(e.position())
}

/// Encodes the notification `[2, method, params]` into `buf` and returns its length.
/// `params` must serialize as an array; `()` is sent as `[]`.
pub fn encode_notification<P: Serialize + ?Sized>(
    buf: &mut [u8],
    method: &str,
    params: &P,
) -> Result<usize> {
    let mut e = Encoder::new(buf);
    e.header(0x93, NOTIFICATION)?;
    e.write_str(method)?;
    write_params(&mut e, params)?;
    Ok(e.position())
}

/// Encodes the response `[1, msgid, error, result]` into `buf` and returns its length.
/// `error: None` writes nil; with an error the result is written as nil.
pub fn encode_response<E: Serialize + ?Sized, R: Serialize + ?Sized>(
    buf: &mut [u8],
    msgid: MsgId,
    error: Option<&E>,
    result: &R,
) -> Result<usize> {
    let mut e = Encoder::new(buf);
    e.header(0x94, RESPONSE)?;
    msgid.write(&mut e)?;
    match error {
        Some(err) => {
            encode_value(&mut e, err)?;
            e.write_nil()?;
        }
        None => {
            e.write_nil()?;
            encode_value(&mut e, result)?;
        }
    }
    Ok(e.position())
}

/// Encodes the response `[1, msgid, error, result]` from already encoded values.
pub fn encode_response_raw(
    buf: &mut [u8],
    msgid: MsgId,
    error: RawValue<'_>,
    result: RawValue<'_>,
) -> Result<usize> {
    let mut e = Encoder::new(buf);
    e.header(0x94, RESPONSE)?;
    msgid.write(&mut e)?;
    e.write_raw(error.as_bytes())?;
    e.write_raw(result.as_bytes())?;
    Ok(e.position())
}
