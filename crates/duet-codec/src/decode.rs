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

/// Marker classes: what the number after a marker means (see [`MARKERS`]).
const NIL: u8 = 0;
const BOOL: u8 = 1;
const INVALID: u8 = 2;
const BIN: u8 = 3;
const EXT: u8 = 4;
const F32: u8 = 5;
const F64: u8 = 6;
const UINT: u8 = 7;
const INT: u8 = 8;
const FIXEXT: u8 = 9;
const STR: u8 = 10;
const ARRAY: u8 = 11;
const MAP: u8 = 12;

/// For each marker 0xC0..=0xDF: class << 4 | the width in bytes of the number that follows it
/// (the value, the length or the count).
const MARKERS: [u8; 32] = [
    NIL << 4,
    INVALID << 4,
    BOOL << 4,
    BOOL << 4,
    BIN << 4 | 1,
    BIN << 4 | 2,
    BIN << 4 | 4,
    EXT << 4 | 1,
    EXT << 4 | 2,
    EXT << 4 | 4,
    F32 << 4 | 4,
    F64 << 4 | 8,
    UINT << 4 | 1,
    UINT << 4 | 2,
    UINT << 4 | 4,
    UINT << 4 | 8,
    INT << 4 | 1,
    INT << 4 | 2,
    INT << 4 | 4,
    INT << 4 | 8,
    FIXEXT << 4,
    FIXEXT << 4,
    FIXEXT << 4,
    FIXEXT << 4,
    FIXEXT << 4,
    STR << 4 | 1,
    STR << 4 | 2,
    STR << 4 | 4,
    ARRAY << 4 | 2,
    ARRAY << 4 | 4,
    MAP << 4 | 2,
    MAP << 4 | 4,
];

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

    /// Reads a `width`-byte big-endian number (width 0, 1, 2, 4 or 8; other widths read 0),
    /// sign-extended if `signed`.
    #[inline(always)]
    fn be(&mut self, width: usize, signed: bool) -> Result<u64> {
        let v = match *self.take(width)? {
            [a] => u64::from(a),
            [a, b] => u64::from(u16::from_be_bytes([a, b])),
            [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            _ => 0,
        };
        Ok(match (signed, width) {
            (true, 1) => v as i8 as u64,
            (true, 2) => v as i16 as u64,
            (true, 4) => v as i32 as u64,
            _ => v,
        })
    }

    /// Consumes the next byte if it is a fix-form marker (`byte & !mask == lo`) and returns
    /// the number it holds (`byte & mask`): the common case, without going through [`Token`].
    #[inline(always)]
    fn fix(&mut self, lo: u8, mask: u8) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        if b & !mask != lo {
            return None;
        }
        self.pos += 1;
        Some(b & mask)
    }

    /// The next byte, not consumed.
    pub(crate) fn peek_byte(&self) -> Result<u8> {
        self.buf.get(self.pos).copied().ok_or(Error::Truncated)
    }

    /// Takes one byte.
    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads the next item. On error the position may have moved; callers restore it.
    pub(crate) fn token(&mut self) -> Result<Token<'a>> {
        let m = self.byte()?;
        // Every marker is a class plus a number: the value (ints), the length (str, bin, ext)
        // or the element count (array, map); fix forms hold it in the marker itself.
        let (class, n) = match m {
            0x00..=0x7f => return Ok(Token::Uint(m.into())),
            0x80..=0x8f => return Ok(Token::Map((m & 0x0f).into())),
            0x90..=0x9f => return Ok(Token::Array((m & 0x0f).into())),
            0xa0..=0xbf => return Ok(Token::Str(self.take(usize::from(m & 0x1f))?)),
            0xe0..=0xff => return Ok(Token::Int((m as i8).into())),
            _ => {
                let info = MARKERS.get(usize::from(m & 0x1f)).copied().unwrap_or(0);
                let class = info >> 4;
                (class, self.be(usize::from(info & 0x0f), class == INT)?)
            }
        };
        // str, bin and ext lengths have at most 4 bytes, so `n as usize` keeps them whole.
        Ok(match class {
            NIL => Token::Nil,
            BOOL => Token::Bool(m & 1 != 0),
            UINT => Token::Uint(n),
            INT => Token::Int(n as i64),
            F32 => Token::F32(f32::from_bits(n as u32)),
            F64 => Token::F64(f64::from_bits(n)),
            BIN => Token::Bin(self.take(n as usize)?),
            STR => Token::Str(self.take(n as usize)?),
            ARRAY => Token::Array(n as u32),
            MAP => Token::Map(n as u32),
            EXT | FIXEXT => {
                let len = if class == EXT {
                    n
                } else {
                    u64::from(1u32 << (m.wrapping_sub(0xd4) & 7))
                };
                let t = self.byte()? as i8;
                Token::Ext(t, self.take(len as usize)?)
            }
            _ => return Err(Error::InvalidMarker),
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
        if let Some(b) = self.fix(0xc2, 0x01) {
            return Ok(b != 0);
        }
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

    /// Reads an integer of any width as its 64-bit two's-complement bits.
    pub(crate) fn read_int_bits(&mut self) -> Result<u64> {
        self.read(|t| match t {
            Token::Uint(v) => Ok(v),
            Token::Int(v) => Ok(v as u64),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a float32. A float64 is [`Error::WrongType`] (it would lose precision).
    pub fn read_f32(&mut self) -> Result<f32> {
        if let Some(&[0xca, a, b, c, d]) = self.remaining().get(..5) {
            self.pos += 5;
            return Ok(f32::from_be_bytes([a, b, c, d]));
        }
        self.read(|t| match t {
            Token::F32(v) => Ok(v),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a float64 or a float32 (widened exactly).
    pub fn read_f64(&mut self) -> Result<f64> {
        if let Some(&[0xcb, a, b, c, d, e, f, g, h]) = self.remaining().get(..9) {
            self.pos += 9;
            return Ok(f64::from_be_bytes([a, b, c, d, e, f, g, h]));
        }
        self.read(|t| match t {
            Token::F32(v) => Ok(f64::from(v)),
            Token::F64(v) => Ok(v),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a str, borrowed from the input. Not UTF-8: [`Error::InvalidUtf8`].
    pub fn read_str(&mut self) -> Result<&'a str> {
        self.read(|t| match t {
            Token::Str(s) => utf8(s),
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
        if let Some(n) = self.fix(0x90, 0x0f) {
            return Ok(n.into());
        }
        self.read(|t| match t {
            Token::Array(n) => Ok(n),
            _ => Err(Error::WrongType),
        })
    }

    /// Reads a map header and returns the number of key/value pairs; the pairs follow.
    pub fn read_map_len(&mut self) -> Result<u32> {
        if let Some(n) = self.fix(0x80, 0x0f) {
            return Ok(n.into());
        }
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
        let mut open = [0usize; MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            let items = match self.token()? {
                Token::Array(n) => Some(n as usize),
                Token::Map(n) => Some((n as usize).saturating_mul(2)),
                _ => None,
            };
            if let Some(items) = items {
                // Every container counts against the limit, even an empty one.
                if depth >= limit {
                    return Err(Error::DepthLimit);
                }
                // Each item takes at least one byte: more items than bytes left is truncated
                // input (and keeps every count within `usize`).
                if items > self.buf.len().saturating_sub(self.pos) {
                    return Err(Error::Truncated);
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

/// Checks that `s` is UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
/// Much smaller than `core::str::from_utf8`, which matters on the firmware side.
fn utf8(s: &[u8]) -> Result<&str> {
    // ASCII prefix a word at a time (RPC strings are mostly ASCII), then byte by byte.
    const W: usize = core::mem::size_of::<usize>();
    let mut ascii = 0;
    while let Some(w) = s.get(ascii..ascii + W) {
        let w = usize::from_ne_bytes(w.try_into().unwrap_or([0x80; W]));
        if w & (usize::MAX / 0xff * 0x80) != 0 {
            break;
        }
        ascii += W;
    }
    let mut it = s.get(ascii..).unwrap_or(&[]).iter();
    while let Some(&b) = it.next() {
        if b < 0x80 {
            continue;
        }
        let (n, min) = match b {
            0xc2..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf4 => (3, 0x1_0000),
            _ => return Err(Error::InvalidUtf8),
        };
        let mut cp = u32::from(b & (0x3f >> n));
        for _ in 0..n {
            match it.next() {
                Some(&c) if c & 0xc0 == 0x80 => cp = cp << 6 | u32::from(c & 0x3f),
                _ => return Err(Error::InvalidUtf8),
            }
        }
        if cp < min || cp > 0x10_ffff || (0xd800..=0xdfff).contains(&cp) {
            return Err(Error::InvalidUtf8);
        }
    }
    // SAFETY: the loop above accepted only well-formed UTF-8: every multi-byte sequence has
    // a valid lead byte, the right number of continuation bytes, and encodes a scalar value
    // (not overlong, not a surrogate, at most U+10FFFF). This is exactly what `str` requires;
    // the unit test `utf8_matches_core` checks it against `core::str::from_utf8`.
    Ok(unsafe { core::str::from_utf8_unchecked(s) })
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

    #[test]
    fn be_reads_every_width() {
        let b = [0x80, 0x01, 0xff, 0x7f, 0x12, 0x34, 0x56, 0x78, 0x9a];
        for start in [0, 1] {
            for w in [0usize, 1, 2, 4, 8] {
                for signed in [false, true] {
                    let s = &b[start..start + w];
                    // Reference: accumulate bytes, starting from all ones for a negative value.
                    let neg = signed && s.first().is_some_and(|x| *x >= 0x80);
                    let want = s.iter().fold(if neg { u64::MAX } else { 0 }, |a, x| {
                        a << 8 | u64::from(*x)
                    });
                    let mut d = Decoder::new(&b[start..]);
                    assert_eq!(d.be(w, signed), Ok(want), "{w} {signed} {start}");
                    assert_eq!(d.position(), w);
                }
            }
        }
        assert_eq!(Decoder::new(&b[..3]).be(4, true), Err(Error::Truncated));
    }

    #[test]
    fn utf8_matches_core() {
        let check = |b: &[u8]| {
            assert_eq!(utf8(b).is_ok(), core::str::from_utf8(b).is_ok(), "{b:02x?}");
        };
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
                check(&[b'x', a, b]);
            }
        }
        // Every 3-byte sequence with a 3- or 4-byte lead, and 4-byte ones with sampled tails.
        for a in 0xe0..=0xffu8 {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    check(&[a, b, c]);
                    if a >= 0xf0 && c & 0xc0 == 0x80 {
                        check(&[a, b, c, 0x80]);
                        check(&[a, b, c, 0xbf]);
                        check(&[a, b, c, 0x7f]);
                        check(&[a, b, c, 0xc0]);
                    }
                }
            }
        }
        check("héllo ✓ 😀".as_bytes());
        // Longer strings take the word-at-a-time ASCII path first: put a multi-byte, broken or
        // forbidden sequence at every offset of an ASCII run, across word boundaries.
        let tails: [&[u8]; 6] = [
            b"",
            b"\xc3\xa9",
            b"\xe2\x9c\x93",
            b"\x80",
            b"\xed\xa0\x80",
            b"\xf0\x9f",
        ];
        for len in 0..40 {
            for at in 0..=len {
                for t in tails {
                    let mut v = [b'a'; 48];
                    let s = &mut v[..len + t.len()];
                    s[at..at + t.len()].copy_from_slice(t);
                    check(s);
                }
            }
        }
    }
}
