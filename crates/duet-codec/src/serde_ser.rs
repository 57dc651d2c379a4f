//! serde `Serializer` writing MessagePack into an [`Encoder`].

use crate::raw::RAW_TOKEN;
use crate::{Encoder, Error, Result};
use serde::ser::{self, Serialize};

impl ser::Error for Error {
    fn custom<T: core::fmt::Display>(_msg: T) -> Self {
        Error::Custom
    }
}

/// Appends one serde value to `enc`. On error nothing is appended (the position is restored).
pub fn encode<T: Serialize + ?Sized>(enc: &mut Encoder<'_>, value: &T) -> Result<()> {
    let start = enc.position();
    let r = value.serialize(&mut Serializer::new(enc));
    if r.is_err() {
        enc.truncate(start);
    }
    r
}

/// Serializes `value` into the front of `buf` and returns the number of bytes written.
pub fn to_slice<T: Serialize + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize> {
    let mut enc = Encoder::new(buf);
    encode(&mut enc, value)?;
    Ok(enc.position())
}

/// The serde serializer: writes through a borrowed [`Encoder`]. See the crate docs for how
/// serde types map to MessagePack. Nothing is undone on error; [`encode`] does that.
#[derive(Debug)]
pub struct Serializer<'a, 'b> {
    enc: &'b mut Encoder<'a>,
    /// Set while serializing the inside of a [`RawValue`](crate::RawValue).
    raw: bool,
}

impl<'a, 'b> Serializer<'a, 'b> {
    /// A serializer appending to `enc`.
    pub fn new(enc: &'b mut Encoder<'a>) -> Self {
        Serializer { enc, raw: false }
    }

    /// Reserves a 32-bit header (str32 = 0xDB, array32 = 0xDD, map32 = 0xDF) to patch later.
    fn reserve(&mut self, m32: u8) -> Result<usize> {
        let start = self.enc.position();
        self.enc.write_raw(&[m32, 0, 0, 0, 0])?;
        Ok(start)
    }
}

fn len32(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::OutOfRange)
}

/// The state of an array or map being serialized.
#[derive(Debug)]
pub struct Compound<'s, 'a, 'b> {
    ser: &'s mut Serializer<'a, 'b>,
    /// `Some((header position, elements so far))` when the length was unknown up front.
    patch: Option<(usize, usize)>,
}

impl Compound<'_, '_, '_> {
    fn count(&mut self) {
        if let Some((_, n)) = &mut self.patch {
            *n += 1;
        }
    }

    fn finish(self, kind: u8) -> Result<()> {
        match self.patch {
            Some((start, n)) => self.ser.enc.finish_reserved(start, kind, n),
            None => Ok(()),
        }
    }
}

/// Writes formatted text straight into the encoder (for `collect_str`).
struct TextSink<'s, 'a> {
    enc: &'s mut Encoder<'a>,
    err: Option<Error>,
}

impl core::fmt::Write for TextSink<'_, '_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.enc.write_raw(s.as_bytes()).map_err(|e| {
            self.err = Some(e);
            core::fmt::Error
        })
    }
}

impl<'s, 'a, 'b> ser::Serializer for &'s mut Serializer<'a, 'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'a, 'b>;
    type SerializeTuple = Compound<'s, 'a, 'b>;
    type SerializeTupleStruct = Compound<'s, 'a, 'b>;
    type SerializeTupleVariant = Compound<'s, 'a, 'b>;
    type SerializeMap = Compound<'s, 'a, 'b>;
    type SerializeStruct = Compound<'s, 'a, 'b>;
    type SerializeStructVariant = Compound<'s, 'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.enc.write_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.enc.write_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.enc.write_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.enc.write_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.enc.write_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.enc
            .write_i64(i64::try_from(v).map_err(|_| Error::Unsupported)?)
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.enc.write_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.enc.write_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.enc.write_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.enc.write_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.enc
            .write_u64(u64::try_from(v).map_err(|_| Error::Unsupported)?)
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.enc.write_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.enc.write_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<()> {
        let mut b = [0u8; 4];
        self.enc.write_str(v.encode_utf8(&mut b))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.enc.write_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        if core::mem::take(&mut self.raw) {
            self.enc.write_raw(v)
        } else {
            self.enc.write_bin(v)
        }
    }
    fn serialize_none(self) -> Result<()> {
        self.enc.write_nil()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.enc.write_nil()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.enc.write_array_len(0)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.enc.write_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<()> {
        if name == RAW_TOKEN {
            self.raw = true;
            let r = value.serialize(&mut *self);
            self.raw = false;
            return r;
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.enc.write_map_len(1)?;
        self.enc.write_str(variant)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq> {
        let patch = match len {
            Some(n) => {
                self.enc.write_array_len(len32(n)?)?;
                None
            }
            None => Some((self.reserve(0xdd)?, 0)),
        };
        Ok(Compound { ser: self, patch })
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        self.enc.write_map_len(1)?;
        self.enc.write_str(variant)?;
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap> {
        let patch = match len {
            Some(n) => {
                self.enc.write_map_len(len32(n)?)?;
                None
            }
            None => Some((self.reserve(0xdf)?, 0)),
        };
        Ok(Compound { ser: self, patch })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Self::SerializeStruct> {
        self.serialize_seq(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        self.serialize_tuple_variant("", 0, variant, len)
    }
    fn collect_str<T: core::fmt::Display + ?Sized>(self, value: &T) -> Result<()> {
        use core::fmt::Write;
        let start = self.reserve(0xdb)?;
        let mut sink = TextSink {
            enc: &mut *self.enc,
            err: None,
        };
        if write!(sink, "{value}").is_err() {
            return Err(sink.err.unwrap_or(Error::Custom));
        }
        let len = self.enc.position() - start - 5;
        self.enc.finish_reserved(start, 0, len)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl ser::SerializeSeq for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.count();
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        self.finish(1)
    }
}

impl ser::SerializeMap for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.count();
        key.serialize(&mut *self.ser)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        self.finish(2)
    }
}

/// Fixed-count compounds (tuples, structs and their variants): the header already holds the
/// count, so each element is written as is and `end` has nothing to patch.
macro_rules! fixed_compound {
    ($($tr:ident :: $method:ident ($($key:ty)?)),* $(,)?) => {$(
        impl ser::$tr for Compound<'_, '_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $key,)? value: &T) -> Result<()> {
                value.serialize(&mut *self.ser)
            }
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

fixed_compound!(
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);
