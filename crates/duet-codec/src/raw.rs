//! A borrowed, already encoded MessagePack value.

use crate::{Decoder, Error, Kind, Result};

/// The newtype-struct name by which [`RawValue`] tells duet-codec's serde (de)serializer to copy
/// bytes verbatim. Reserved: do not name your own newtype struct like this.
pub(crate) const RAW_TOKEN: &str = "$duet_codec::RawValue";

/// Exactly one encoded MessagePack value, borrowed (for example the params or result of an RPC
/// message, kept encoded until the receiver knows its type).
///
/// Serializing a `RawValue` with duet-codec's [`Serializer`](crate::Serializer) writes its bytes
/// verbatim. Other serde serializers see a newtype struct around a byte string, so they write the
/// encoded bytes as a bin (a bytes fallback, not the value itself). Deserializing a `RawValue`
/// works only with duet-codec's [`Deserializer`](crate::Deserializer); others give an error.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawValue<'a> {
    bytes: &'a [u8],
}

/// The encoded nil value.
const NIL: &[u8] = &[0xc0];

impl<'a> RawValue<'a> {
    /// Wraps `bytes` after checking that they are exactly one complete value (nesting at most
    /// [`MAX_DEPTH`](crate::MAX_DEPTH)); extra bytes: [`Error::TrailingBytes`].
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        let mut d = Decoder::new(bytes);
        d.skip()?;
        if !d.is_empty() {
            return Err(Error::TrailingBytes);
        }
        Ok(RawValue { bytes })
    }

    /// For bytes that a decoder has just skipped over as one value.
    pub(crate) fn from_validated(bytes: &'a [u8]) -> Self {
        RawValue { bytes }
    }

    /// The encoded nil value (`0xC0`).
    pub const fn nil() -> RawValue<'static> {
        RawValue { bytes: NIL }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True if the value is nil.
    pub fn is_nil(&self) -> bool {
        self.bytes == NIL
    }

    /// The value's MessagePack type.
    pub fn kind(&self) -> Kind {
        // A RawValue always holds a valid value, so the fallback is never taken.
        self.bytes
            .first()
            .and_then(|m| Kind::of_marker(*m).ok())
            .unwrap_or(Kind::Nil)
    }

    /// A [`Decoder`] positioned at the value, for reading it by hand.
    pub fn decoder(&self) -> Decoder<'a> {
        Decoder::new(self.bytes)
    }

    /// Decodes the value into `T` with serde (see [`from_slice`](crate::from_slice)).
    pub fn decode<T: serde::Deserialize<'a>>(&self) -> Result<T> {
        crate::from_slice(self.bytes)
    }
}

impl core::fmt::Debug for RawValue<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("RawValue").field(&self.bytes).finish()
    }
}

impl Default for RawValue<'_> {
    /// nil.
    fn default() -> Self {
        RawValue { bytes: NIL }
    }
}

/// Serializes its bytes through `serialize_bytes` (the inside of the newtype).
struct Bytes<'a>(&'a [u8]);

impl serde::Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl serde::Serialize for RawValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(RAW_TOKEN, &Bytes(self.bytes))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawValue<'a>;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("an encoded MessagePack value (duet-codec's deserializer only)")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                v: &'de [u8],
            ) -> core::result::Result<RawValue<'a>, E> {
                // Checked again: another deserializer could hand us any bytes.
                RawValue::new(v)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(v), &self))
            }
        }
        d.deserialize_newtype_struct(RAW_TOKEN, V(core::marker::PhantomData))
    }
}

impl<'a> TryFrom<&'a [u8]> for RawValue<'a> {
    type Error = Error;
    /// Same as [`RawValue::new`].
    fn try_from(bytes: &'a [u8]) -> Result<Self> {
        RawValue::new(bytes)
    }
}
