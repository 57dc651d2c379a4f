//! serde `Deserializer` reading MessagePack from a [`Decoder`], zero-copy.

use crate::raw::RAW_TOKEN;
use crate::{Decoder, Error, Kind, Result, MAX_DEPTH};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

impl de::Error for Error {
    fn custom<T: core::fmt::Display>(_msg: T) -> Self {
        Error::Custom
    }
    // The defaults format a message; these map straight to a variant, so no `core::fmt`
    // code is pulled into firmware.
    fn invalid_type(_: de::Unexpected<'_>, _: &dyn de::Expected) -> Self {
        Error::WrongType
    }
    fn invalid_value(_: de::Unexpected<'_>, _: &dyn de::Expected) -> Self {
        Error::OutOfRange
    }
    fn invalid_length(_: usize, _: &dyn de::Expected) -> Self {
        Error::InvalidLength
    }
    fn unknown_variant(_: &str, _: &'static [&'static str]) -> Self {
        Error::WrongType
    }
    fn unknown_field(_: &str, _: &'static [&'static str]) -> Self {
        Error::WrongType
    }
    fn missing_field(_: &'static str) -> Self {
        Error::InvalidLength
    }
    fn duplicate_field(_: &'static str) -> Self {
        Error::WrongType
    }
}

/// Reads exactly one serde value from `dec`. On error the position is restored.
pub fn decode<'de, T: de::Deserialize<'de>>(dec: &mut Decoder<'de>) -> Result<T> {
    let start = dec.position();
    let r = T::deserialize(&mut Deserializer::new(dec));
    if r.is_err() {
        dec.rewind(start);
    }
    r
}

/// Deserializes a `T` that fills all of `buf`; bytes left over: [`Error::TrailingBytes`].
/// Strings and byte slices in `T` borrow from `buf`.
pub fn from_slice<'de, T: de::Deserialize<'de>>(buf: &'de [u8]) -> Result<T> {
    let mut dec = Decoder::new(buf);
    let v = decode(&mut dec)?;
    if dec.is_empty() {
        Ok(v)
    } else {
        Err(Error::TrailingBytes)
    }
}

/// The serde deserializer: reads through a borrowed [`Decoder`], at most [`MAX_DEPTH`] nested
/// arrays/maps. See the crate docs for how MessagePack maps to serde types. On error the
/// decoder may be left mid-value; [`decode`] restores it.
#[derive(Debug)]
pub struct Deserializer<'de, 'b> {
    dec: &'b mut Decoder<'de>,
    depth: usize,
}

impl<'de, 'b> Deserializer<'de, 'b> {
    /// A deserializer reading from `dec`'s position.
    pub fn new(dec: &'b mut Decoder<'de>) -> Self {
        Deserializer { dec, depth: 0 }
    }

    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::DepthLimit);
        }
        self.depth += 1;
        Ok(())
    }

    /// Visits `len` array elements; all of them must be consumed.
    fn seq<V: Visitor<'de>>(&mut self, len: u32, v: V) -> Result<V::Value> {
        self.enter()?;
        let mut access = Seq {
            de: self,
            left: len,
        };
        let r = v.visit_seq(&mut access);
        let left = access.left;
        self.depth -= 1;
        let r = r?;
        if left != 0 {
            return Err(Error::InvalidLength);
        }
        Ok(r)
    }

    /// Visits `len` map entries; all of them must be consumed.
    fn map<V: Visitor<'de>>(&mut self, len: u32, v: V) -> Result<V::Value> {
        self.enter()?;
        let mut access = Seq {
            de: self,
            left: len,
        };
        let r = v.visit_map(&mut access);
        let left = access.left;
        self.depth -= 1;
        let r = r?;
        if left != 0 {
            return Err(Error::InvalidLength);
        }
        Ok(r)
    }

    /// Visits the bytes of a bin as a sequence of `u8` (for `[u8; N]` and byte vectors).
    fn bin_seq<V: Visitor<'de>>(&mut self, expect: Option<usize>, v: V) -> Result<V::Value> {
        let bytes = self.dec.read_bin()?;
        if expect.is_some_and(|n| n != bytes.len()) {
            return Err(Error::InvalidLength);
        }
        let mut access = BinSeq {
            bytes: bytes.iter(),
        };
        let r = v.visit_seq(&mut access)?;
        if access.bytes.len() != 0 {
            return Err(Error::InvalidLength);
        }
        Ok(r)
    }

    fn seq_or_bin<V: Visitor<'de>>(&mut self, expect: Option<usize>, v: V) -> Result<V::Value> {
        if let 0xc4..=0xc6 = self.dec.peek_byte()? {
            return self.bin_seq(expect, v);
        }
        let n = self.dec.read_array_len()?;
        if expect.is_some_and(|e| e != n as usize) {
            return Err(Error::InvalidLength);
        }
        self.seq(n, v)
    }

    /// nil or an empty array.
    fn unit(&mut self) -> Result<()> {
        if let 0x90..=0x9f | 0xdc | 0xdd = self.dec.peek_byte()? {
            if self.dec.read_array_len()? != 0 {
                return Err(Error::InvalidLength);
            }
            Ok(())
        } else {
            self.dec.read_nil()
        }
    }
}

/// Array elements or map entries still to be read.
struct Seq<'s, 'de, 'b> {
    de: &'s mut Deserializer<'de, 'b>,
    left: u32,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de, '_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

impl<'de> de::MapAccess<'de> for Seq<'_, 'de, '_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

/// The bytes of a bin, visited as `u8` elements.
struct BinSeq<'de> {
    bytes: core::slice::Iter<'de, u8>,
}

impl<'de> de::SeqAccess<'de> for BinSeq<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.bytes.next() {
            Some(b) => seed
                .deserialize(IntoDeserializer::<Error>::into_deserializer(*b))
                .map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// Enum access: `tagged` = a one-entry map `{variant: value}`, else a bare variant name/index.
struct Enum<'s, 'de, 'b> {
    de: &'s mut Deserializer<'de, 'b>,
    tagged: bool,
}

impl<'de, 's, 'b> de::EnumAccess<'de> for Enum<'s, 'de, 'b> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let v = seed.deserialize(&mut *self.de)?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_, 'de, '_> {
    type Error = Error;
    fn unit_variant(self) -> Result<()> {
        if self.tagged {
            self.de.unit()
        } else {
            Ok(())
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        if !self.tagged {
            return Err(Error::WrongType);
        }
        seed.deserialize(&mut *self.de)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value> {
        if !self.tagged {
            return Err(Error::WrongType);
        }
        de::Deserializer::deserialize_tuple(&mut *self.de, len, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        if !self.tagged {
            return Err(Error::WrongType);
        }
        de::Deserializer::deserialize_struct(&mut *self.de, "", fields, v)
    }
}

macro_rules! de_int {
    ($($method:ident => $ty:ty, $visit:ident, $read:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
            let x = self.dec.$read()?;
            v.$visit(<$ty>::try_from(x).map_err(|_| Error::OutOfRange)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match self.dec.peek_kind()? {
            Kind::Nil => {
                self.dec.read_nil()?;
                v.visit_unit()
            }
            Kind::Bool => v.visit_bool(self.dec.read_bool()?),
            Kind::Uint => v.visit_u64(self.dec.read_u64()?),
            Kind::Int => v.visit_i64(self.dec.read_i64()?),
            Kind::F32 => v.visit_f32(self.dec.read_f32()?),
            Kind::F64 => v.visit_f64(self.dec.read_f64()?),
            Kind::Str => v.visit_borrowed_str(self.dec.read_str()?),
            Kind::Bin => v.visit_borrowed_bytes(self.dec.read_bin()?),
            Kind::Array => {
                let n = self.dec.read_array_len()?;
                self.seq(n, v)
            }
            Kind::Map => {
                let n = self.dec.read_map_len()?;
                self.map(n, v)
            }
            Kind::Ext => Err(Error::Unsupported),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_bool(self.dec.read_bool()?)
    }

    de_int! {
        deserialize_i8 => i8, visit_i8, read_i64;
        deserialize_i16 => i16, visit_i16, read_i64;
        deserialize_i32 => i32, visit_i32, read_i64;
        deserialize_i64 => i64, visit_i64, read_i64;
        deserialize_i128 => i128, visit_i128, read_i64;
        deserialize_u8 => u8, visit_u8, read_u64;
        deserialize_u16 => u16, visit_u16, read_u64;
        deserialize_u32 => u32, visit_u32, read_u64;
        deserialize_u64 => u64, visit_u64, read_u64;
        deserialize_u128 => u128, visit_u128, read_u64;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_f32(self.dec.read_f32()?)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_f64(self.dec.read_f64()?)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let s = self.dec.read_str()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(Error::InvalidLength),
        }
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_borrowed_str(self.dec.read_str()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_str(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        v.visit_borrowed_bytes(self.dec.read_bytes_or_str()?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.deserialize_bytes(v)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        if self.dec.peek_kind()? == Kind::Nil {
            self.dec.read_nil()?;
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.unit()?;
        v.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value> {
        self.deserialize_unit(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value> {
        if name == RAW_TOKEN {
            let raw = self.dec.read_raw_at(self.depth)?;
            return v.visit_borrowed_bytes(raw.as_bytes());
        }
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.seq_or_bin(None, v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value> {
        self.seq_or_bin(Some(len), v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value> {
        self.seq_or_bin(Some(len), v)
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        let n = self.dec.read_map_len()?;
        self.map(n, v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        match self.dec.peek_kind()? {
            Kind::Array => {
                let n = self.dec.read_array_len()?;
                self.seq(n, v)
            }
            Kind::Map => {
                let n = self.dec.read_map_len()?;
                self.map(n, v)
            }
            _ => Err(Error::WrongType),
        }
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        match self.dec.peek_kind()? {
            Kind::Str | Kind::Uint => v.visit_enum(Enum {
                de: self,
                tagged: false,
            }),
            Kind::Map => {
                if self.dec.read_map_len()? != 1 {
                    return Err(Error::InvalidLength);
                }
                self.enter()?;
                let r = v.visit_enum(Enum {
                    de: &mut *self,
                    tagged: true,
                });
                self.depth -= 1;
                r
            }
            _ => Err(Error::WrongType),
        }
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        match self.dec.peek_kind()? {
            Kind::Str => v.visit_borrowed_str(self.dec.read_str()?),
            Kind::Uint => v.visit_u64(self.dec.read_u64()?),
            Kind::Bin => v.visit_borrowed_bytes(self.dec.read_bin()?),
            _ => Err(Error::WrongType),
        }
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value> {
        self.dec.skip_at(self.depth)?;
        v.visit_unit()
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}
