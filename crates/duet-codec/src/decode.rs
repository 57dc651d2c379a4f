//! The low-level MessagePack reader.

use crate::{Error, Kind, RawValue, Result, MAX_DEPTH};

/// One decoded MessagePack item: a scalar, or the header of a container.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Token<'a> {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    /// str body, not yet checked for UTF-8.
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(i8, &'a [u8]),
}

/// Reads MessagePack values from a byte slice, borrowing strings and byte strings from it.
///
/// Every `read_*` either reads a whole value of the asked type or returns an error and leaves
/// [`position`](Decoder::position) unchanged. Any valid encoding width is accepted.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder that reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// How many bytes have been consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The type of the next value, without consuming it. Empty input: [`Error::Truncated`].
    pub fn peek_kind(&self) -> Result<Kind> {
        Kind::of_marker(*self.remaining().first().ok_or(Error::Truncated)?)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a `width`-byte big-endian unsigned number (width <= 8).
    fn be(&mut self, width: usize) -> Result<u64> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    /// Reads a `width`-byte length, then that many bytes.
    fn sized(&mut self, width: usize) -> Result<&'a [u8]> {
        let n = self.be(width)?;
        self.take(usize::try_from(n).map_err(|_| Error::Truncated)?)
    }

    /// Reads an ext body of `n` data bytes preceded by its type byte.
    fn ext(&mut self, n: usize) -> Result<Token<'a>> {
        let t = self.be(1)? as u8 as i8;
        Ok(Token::Ext(t, self.take(n)?))
    }

    fn ext_sized(&mut self, width: usize) -> Result<Token<'a>> {
        let n = self.be(width)?;
        self.ext(usize::try_from(n).map_err(|_| Error::Truncated)?)
    }

    /// Reads the next item. On error the position may have moved; callers restore it.
    pub(crate) fn token(&mut self) -> Result<Token<'a>> {
        let m = self.be(1)? as u8;
        Ok(match m {
            0x00..=0x7f => Token::Uint(u64::from(m)),
            0x80..=0x8f => Token::Map(u32::from(m & 0x0f)),
            0x90..=0x9f => Token::Array(u32::from(m & 0x0f)),
            0xa0..=0xbf => Token::Str(self.take(usize::from(m & 0x1f))?),
            0xc0 => Token::Nil,
            0xc1 => return Err(Error::InvalidMarker),
            0xc2 => Token::Bool(false),
            0xc3 => Token::Bool(true),
            0xc4 => Token::Bin(self.sized(1)?),
            0xc5 => Token::Bin(self.sized(2)?),
            0xc6 => Token::Bin(self.sized(4)?),
            0xc7 => self.ext_sized(1)?,
            0xc8 => self.ext_sized(2)?,
            0xc9 => self.ext_sized(4)?,
            0xca => Token::F32(f32::from_bits(self.be(4)? as u32)),
            0xcb => Token::F64(f64::from_bits(self.be(8)?)),
            0xcc => Token::Uint(self.be(1)?),
            0xcd => Token::Uint(self.be(2)?),
            0xce => Token::Uint(self.be(4)?),
            0xcf => Token::Uint(self.be(8)?),
            0xd0 => Token::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Token::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Token::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Token::Int(self.be(8)? as i64),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => Token::Str(self.sized(1)?),
            0xda => Token::Str(self.sized(2)?),
            0xdb => Token::Str(self.sized(4)?),
            0xdc => Token::Array(self.be(2)? as u32),
            0xdd => Token::Array(self.be(4)? as u32),
            0xde => Token::Map(self.be(2)? as u32),
            0xdf => Token::Map(self.be(4)? as u32),
            0xe0..=0xff => Token::Int(i64::from(m as i8)),
        })
    }

    /// Reads one token and maps it with `f`; on any error the position is restored.
    fn read<T>(&mut self, f: impl FnOnce(Token<'a>) -> Result<T>) -> Result<T> {
        let start = self.pos;
        let r = self.token().and_then(f);
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    /// Reads nil.
    pub fn read_nil(&mut self) -> Result<()> {
        self.read(|t| match t {
            Token::Nil => Ok(()),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a bool.
    pub fn read_bool(&mut self) -> Result<bool> {
        self.read(|t| match t {
            Token::Bool(b) => Ok(b),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads an integer of any width as `u64`. Negative values: [`Error::OutOfRange`].
    pub fn read_u64(&mut self) -> Result<u64> {
        self.read(|t| match t {
            Token::Uint(v) => Ok(v),
            Token::Int(v) => u64::try_from(v).map_err(|_| Error::OutOfRange),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads an integer of any width as `i64`. A uint64 above `i64::MAX`: [`Error::OutOfRange`].
    pub fn read_i64(&mut self) -> Result<i64> {
        self.read(|t| match t {
            Token::Uint(v) => i64::try_from(v).map_err(|_| Error::OutOfRange),
            Token::Int(v) => Ok(v),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a float32. A float64 is [`Error::WrongType`] (it would lose precision).
    pub fn read_f32(&mut self) -> Result<f32> {
        self.read(|t| match t {
            Token::F32(v) => Ok(v),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a float64 or a float32 (widened exactly).
    pub fn read_f64(&mut self) -> Result<f64> {
        self.read(|t| match t {
            Token::F32(v) => Ok(f64::from(v)),
            Token::F64(v) => Ok(v),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a str, borrowed from the input. Not UTF-8: [`Error::InvalidUtf8`].
    pub fn read_str(&mut self) -> Result<&'a str> {
        self.read(|t| match t {
            Token::Str(s) => core::str::from_utf8(s).map_err(|_| Error::InvalidUtf8),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a bin, borrowed from the input.
    pub fn read_bin(&mut self) -> Result<&'a [u8]> {
        self.read(|t| match t {
            Token::Bin(s) => Ok(s),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a bin or the raw bytes of a str (no UTF-8 check).
    pub(crate) fn read_bytes_or_str(&mut self) -> Result<&'a [u8]> {
        self.read(|t| match t {
            Token::Bin(s) | Token::Str(s) => Ok(s),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads an array header and returns the element count; the elements follow.
    pub fn read_array_len(&mut self) -> Result<u32> {
        self.read(|t| match t {
            Token::Array(n) => Ok(n),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a map header and returns the number of key/value pairs; the pairs follow.
    pub fn read_map_len(&mut self) -> Result<u32> {
        self.read(|t| match t {
            Token::Map(n) => Ok(n),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads an ext value: its type and its data, borrowed.
    pub fn read_ext(&mut self) -> Result<(i8, &'a [u8])> {
        self.read(|t| match t {
            Token::Ext(ty, d) => Ok((ty, d)),
            _ => Err(Error::WrongType),
        })
    }

    /// Skips one whole value, including everything nested in it.
    ///
    /// Iterative (no recursion); more than [`MAX_DEPTH`] nested containers give
    /// [`Error::DepthLimit`]. On error the position is left unchanged.
    pub fn skip(&mut self) -> Result<()> {
        self.skip_at(0)
    }

    /// [`skip`](Self::skip) for a value that is already `depth` containers deep.
    pub(crate) fn skip_at(&mut self, depth: usize) -> Result<()> {
        let start = self.pos;
        let r = self.skip_inner(MAX_DEPTH.saturating_sub(depth));
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    fn skip_inner(&mut self, limit: usize) -> Result<()> {
        // open[i] = how many items are still to be read in the i-th open container.
        let mut open = [0u64; MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            let items = match self.token()? {
                Token::Array(n) => Some(u64::from(n)),
                Token::Map(n) => Some(2 * u64::from(n)),
                _ => None,
            };
            if let Some(items) = items {
                // Every container counts against the limit, even an empty one.
                if depth >= limit {
                    return Err(Error::DepthLimit);
                }
                if items > 0 {
                    *open.get_mut(depth).ok_or(Error::DepthLimit)? = items;
                    depth += 1;
                    continue;
                }
            }
            // One value finished: count it against the innermost open container.
            loop {
                let Some(top) = depth.checked_sub(1) else {
                    return Ok(());
                };
                let left = open.get_mut(top).ok_or(Error::DepthLimit)?;
                *left -= 1;
                if *left > 0 {
                    break;
                }
                depth = top;
            }
        }
    }

    /// Reads one whole value and returns its bytes as a [`RawValue`] (depth-limited as
    /// [`skip`](Self::skip)).
    pub fn read_raw(&mut self) -> Result<RawValue<'a>> {
        self.read_raw_at(0)
    }

    pub(crate) fn read_raw_at(&mut self, depth: usize) -> Result<RawValue<'a>> {
        let start = self.pos;
        self.skip_at(depth)?;
        let bytes = self.buf.get(start..self.pos).unwrap_or(&[]);
        Ok(RawValue::from_validated(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_counts_map_entries_twice() {
        // {1: [2, 3]} then nil.
        let b = [0x81, 0x01, 0x92, 0x02, 0x03, 0xc0];
        let mut d = Decoder::new(&b);
        d.skip().unwrap();
        assert_eq!(d.position(), 5);
        // A map with a missing value is truncated.
        assert_eq!(Decoder::new(&[0x81, 0x01]).skip(), Err(Error::Truncated));
    }

    #[test]
    fn skip_at_depth_uses_remaining_budget() {
        let b = [0x91, 0x91, 0xc0];
        assert_eq!(Decoder::new(&b).skip_at(MAX_DEPTH - 2), Ok(()));
        assert_eq!(
            Decoder::new(&b).skip_at(MAX_DEPTH - 1),
            Err(Error::DepthLimit)
        );
        assert_eq!(Decoder::new(&[0x05]).skip_at(MAX_DEPTH), Ok(()));
    }
}
