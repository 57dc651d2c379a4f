//! Encoding a handler's return value as the `error, result` pair of a response.
//!
//! A handler returns any `Serialize` value. If that value is a `Result` (serde serializes it as
//! the newtype variant `Ok`/`Err` of an enum named `"Result"`), `Ok(v)` becomes
//! `nil, v` and `Err(e)` becomes `e, nil`; anything else becomes `nil, value`. The check is a
//! probe serializer that writes only in the `Result` case, so no specialisation is needed.
//! Limit: a user enum that is itself named `Result` is treated the same way.

use core::fmt;
use duet_codec::rpc::{self, MsgId};
use duet_codec::Encoder;
use serde::ser::{self, Impossible, Serialize};

/// Writes `error, result` for `value` (see the module docs).
pub(crate) fn encode_reply<T: Serialize + ?Sized>(
    enc: &mut Encoder<'_>,
    value: &T,
) -> duet_codec::Result<()> {
    let start = enc.position();
    let mut probe = Probe { enc };
    match value.serialize(&mut probe) {
        Ok(()) => Ok(()),
        Err(ProbeError::NotResult) => {
            enc.truncate(start);
            enc.write_nil()?;
            duet_codec::encode(enc, value)
        }
        Err(ProbeError::Codec(e)) => Err(e),
    }
}

/// Encodes the response `[1, id, <the text of parts>, nil]` into `buf`; returns its length.
pub(crate) fn error_response(
    buf: &mut [u8],
    id: MsgId,
    parts: &[Part<'_>],
) -> duet_codec::Result<usize> {
    let mut e = Encoder::new(buf);
    e.write_raw(&[0x94, rpc::RESPONSE])?;
    id.write(&mut e)?;
    Words(parts).encode(&mut e)?;
    e.write_nil()?;
    Ok(e.position())
}

/// One piece of a generated text: a str or a decimal number.
#[derive(Clone, Copy)]
pub(crate) enum Part<'a> {
    S(&'a str),
    N(usize),
}

/// A text made of [`Part`]s, encoded as one MessagePack str without a buffer, `core::fmt` or
/// serde (so no formatting code is linked on the chip).
pub(crate) struct Words<'a>(pub &'a [Part<'a>]);

impl Words<'_> {
    /// Writes the text as a str.
    pub(crate) fn encode(&self, e: &mut Encoder<'_>) -> duet_codec::Result<()> {
        let mut digits = [0u8; 20];
        let len = self.0.iter().map(|p| p.bytes(&mut digits).len()).sum();
        e.write_str_header(len)?;
        for p in self.0 {
            e.write_raw(p.bytes(&mut digits))?;
        }
        Ok(())
    }
}

impl<'a> Part<'a> {
    /// The UTF-8 bytes of this part (a number is written in decimal into `digits`).
    fn bytes<'d>(&self, digits: &'d mut [u8; 20]) -> &'d [u8]
    where
        'a: 'd,
    {
        match *self {
            Part::S(s) => s.as_bytes(),
            Part::N(mut n) => {
                let mut at = digits.len();
                loop {
                    at -= 1;
                    digits[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                &digits[at..]
            }
        }
    }
}

/// Writes `parts` to `f` (for `Display` impls of texts the engine also sends).
pub(crate) fn write_parts(f: &mut fmt::Formatter<'_>, parts: &[Part<'_>]) -> fmt::Result {
    let mut digits = [0u8; 20];
    for p in parts {
        // Parts are strs or ASCII digits: valid UTF-8.
        f.write_str(core::str::from_utf8(p.bytes(&mut digits)).unwrap_or("?"))?;
    }
    Ok(())
}

struct Probe<'p, 'a> {
    enc: &'p mut Encoder<'a>,
}

#[derive(Debug)]
enum ProbeError {
    NotResult,
    Codec(duet_codec::Error),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::NotResult => f.write_str("not a Result"),
            ProbeError::Codec(e) => f.write_str(e.as_str()),
        }
    }
}

impl core::error::Error for ProbeError {}

impl ser::Error for ProbeError {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        ProbeError::Codec(duet_codec::Error::Custom)
    }
}

type No = Impossible<(), ProbeError>;

macro_rules! not_result {
    ($($name:ident($($arg:ty),*);)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<(), ProbeError> { Err(ProbeError::NotResult) })*
    };
}

impl ser::Serializer for &mut Probe<'_, '_> {
    type Ok = ();
    type Error = ProbeError;
    type SerializeSeq = No;
    type SerializeTuple = No;
    type SerializeTupleStruct = No;
    type SerializeTupleVariant = No;
    type SerializeMap = No;
    type SerializeStruct = No;
    type SerializeStructVariant = No;

    not_result! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), ProbeError> {
        let enc = &mut *self.enc;
        match (name, index, variant) {
            ("Result", 0, "Ok") => {
                enc.write_nil().map_err(ProbeError::Codec)?;
                duet_codec::encode(enc, value).map_err(ProbeError::Codec)
            }
            ("Result", 1, "Err") => {
                duet_codec::encode(enc, value).map_err(ProbeError::Codec)?;
                enc.write_nil().map_err(ProbeError::Codec)
            }
            _ => Err(ProbeError::NotResult),
        }
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_tuple(self, _: usize) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<No, ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<(), ProbeError> {
        Err(ProbeError::NotResult)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}
