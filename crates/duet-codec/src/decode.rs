//! The low-level MessagePack reader.

use crate::{Error, Kind, RawValue, Result, MAX_DEPTH};

/// Marker classes: what the number after a marker means (see [`MARKERS`]).
const NIL: u8 = 0;
const BOOL: u8 = 1;
const INVALID: u8 = 2;
pub(crate) const BIN: u8 = 3;
pub(crate) const EXT: u8 = 4;
const F32: u8 = 5;
const F64: u8 = 6;
const UINT: u8 = 7;
const INT: u8 = 8;
const FIXEXT: u8 = 9;
pub(crate) const STR: u8 = 10;
pub(crate) const ARRAY: u8 = 11;
pub(crate) const MAP: u8 = 12;

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

/// The class of each fix-form marker by its high nibble (0xC0..=0xDF are not fix forms and
/// use [`MARKERS`]).
const FIX: [u8; 16] = [
    UINT, UINT, UINT, UINT, UINT, UINT, UINT, UINT, MAP, ARRAY, STR, STR, NIL, NIL, INT, INT,
];

/// The length of the header that starts with `marker`: the marker and the number behind it
/// (a value, a length or a count), as [`Decoder::head`] reads it. 1 to 9.
pub(crate) fn head_len(marker: u8) -> usize {
    match marker {
        0xc0..=0xdf => {
            1 + usize::from(
                MARKERS
                    .get(usize::from(marker & 0x1f))
                    .copied()
                    .unwrap_or(0)
                    & 0x0f,
            )
        }
        _ => 1,
    }
}

/// Reads MessagePack values from a byte slice, borrowing strings and byte strings from it.
///
/// Every `read_*` either reads a whole value of the asked type or returns an error and leaves
/// [`position`](Decoder::position) unchanged. Any valid encoding width is accepted.
///
/// The common small forms (fixint, fixstr, fixarray, fixmap, nil, bool) are read straight from
/// the first byte; the other widths go through one shared table-driven path.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder that reads from the start of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// A decoder over `buf` that starts reading at `pos` (for example behind a header that
    /// was already parsed, such as the params of [`rpc::parse_split`](crate::rpc::parse_split)).
    /// A `pos` past the end reads as empty input.
    #[inline]
    pub fn new_at(buf: &'a [u8], pos: usize) -> Self {
        Decoder { buf, pos }
    }

    /// How many bytes have been consumed.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves back to an earlier [`position`](Self::position) (to undo a partly read value).
    #[inline]
    pub(crate) fn rewind(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// True when every byte has been consumed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The type of the next value, without consuming it. Empty input: [`Error::Truncated`].
    pub fn peek_kind(&self) -> Result<Kind> {
        Kind::of_marker(self.peek_byte()?)
    }

    /// The next byte, not consumed.
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The next byte, not consumed.
    #[inline(always)]
    pub(crate) fn peek_byte(&self) -> Result<u8> {
        self.peek().ok_or(Error::Truncated)
    }

    /// Takes the next `n` bytes (one bounds check).
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a `width`-byte big-endian number (width 0 to 8), sign-extended if `signed`.
    fn be(&mut self, width: usize, signed: bool) -> Result<u64> {
        let mut v = 0u64;
        for &b in self.take(width)? {
            v = v << 8 | u64::from(b);
        }
        if signed {
            v = match width {
                1 => v as i8 as u64,
                2 => v as i16 as u64,
                4 => v as i32 as u64,
                _ => v,
            };
        }
        Ok(v)
    }

    /// Consumes the next byte if it is a fix-form marker (`byte & !mask == lo`) and returns
    /// the number it holds (`byte & mask`): the common case, without going through the table.
    #[inline(always)]
    fn fix(&mut self, lo: u8, mask: u8) -> Option<u8> {
        let b = self.peek()?;
        if b & !mask != lo {
            return None;
        }
        self.pos += 1;
        Some(b & mask)
    }

    /// Reads a marker and the number that goes with it: sets `class` and returns `n`, the
    /// value (ints, sign-extended for the signed forms; float bits; 0 for nil and bool, whose
    /// value only [`read_bool`](Self::read_bool)'s first-byte path reads), the length of the
    /// body that follows (str, bin, ext: the ext type byte comes before those `n` bytes) or the
    /// element count (array, map). The body is not consumed. On error the position may have
    /// moved; callers restore it. (An out parameter: a returned `(class, n)` pair would be
    /// moved around with `memcpy` at opt-level "z".)
    #[inline(never)]
    pub(crate) fn head(&mut self, class: &mut u8) -> Result<u64> {
        let m = self.peek_byte()?;
        self.pos += 1;
        let (c, n) = if m & 0xe0 == 0xc0 {
            let info = MARKERS.get(usize::from(m & 0x1f)).copied().unwrap_or(0);
            match info >> 4 {
                INVALID => return Err(Error::InvalidMarker),
                // fixext1..16: 1 << (marker - 0xD4) data bytes.
                FIXEXT => (EXT, 1 << (m.wrapping_sub(0xd4) & 7)),
                c => (c, self.be(usize::from(info & 0x0f), c == INT)?),
            }
        } else {
            // Fix forms: the class by the high nibble, the number in the low bits (negative
            // fixints are the marker sign-extended).
            let c = FIX.get(usize::from(m >> 4)).copied().unwrap_or(INT);
            let n = m as i8 as u64;
            (
                c,
                match c {
                    MAP | ARRAY => n & 0x0f,
                    STR => n & 0x1f,
                    _ => n,
                },
            )
        };
        *class = c;
        Ok(n)
    }

    /// [`head`](Self::head), then checks that bit `class` of `classes` is set. On error the
    /// position is restored.
    #[inline(never)]
    fn head_in(&mut self, classes: u16, class: &mut u8) -> Result<u64> {
        let start = self.pos;
        // Each outcome is built where it is returned (a `Result` kept in a variable is
        // copied with `memcpy` at opt-level "z").
        let e = match self.head(class) {
            Ok(n) if classes >> *class & 1 != 0 => return Ok(n),
            Ok(_) => Error::WrongType,
            Err(e) => e,
        };
        self.pos = start;
        Err(e)
    }

    /// [`head_in`](Self::head_in) for one class: the number `n`.
    #[inline(always)]
    fn head_of(&mut self, class: u8) -> Result<u64> {
        self.head_in(1 << class, &mut 0)
    }

    /// Reads a str or bin (`class`) of any width: its body. On error the position is
    /// restored.
    #[inline(never)]
    fn bytes_of(&mut self, class: u8) -> Result<&'a [u8]> {
        let start = self.pos;
        let e = match self.head_of(class) {
            Ok(n) => match usize::try_from(n) {
                Ok(n) => match self.take(n) {
                    Ok(s) => return Ok(s),
                    Err(e) => e,
                },
                Err(_) => Error::Truncated,
            },
            Err(e) => e,
        };
        self.pos = start;
        Err(e)
    }

    /// Reads nil.
    pub fn read_nil(&mut self) -> Result<()> {
        if self.fix(0xc0, 0) == Some(0) {
            return Ok(());
        }
        self.head_of(NIL).map(|_| ())
    }

    /// Reads a bool.
    pub fn read_bool(&mut self) -> Result<bool> {
        if let Some(b) = self.fix(0xc2, 0x01) {
            return Ok(b != 0);
        }
        // Not a bool (head gives the error: truncated, invalid marker or wrong type).
        self.head_of(BOOL).and(Err(Error::WrongType))
    }

    /// Reads an integer of any width: returns its 64-bit two's-complement bits and sets
    /// `class` to `UINT` or `INT` (a signed form: negative fixint, int8..int64). On error the
    /// position is unchanged.
    #[inline(always)]
    fn int(&mut self, class: &mut u8) -> Result<u64> {
        if let Some(b) = self.peek() {
            if b < 0x80 {
                self.pos += 1;
                *class = UINT;
                return Ok(b.into());
            }
        }
        self.head_in(1 << UINT | 1 << INT, class)
    }

    /// Reads an integer of any width as `u64`. Negative values: [`Error::OutOfRange`].
    pub fn read_u64(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut class = UINT;
        let v = self.int(&mut class)?;
        if class == INT && (v as i64) < 0 {
            self.pos = start;
            return Err(Error::OutOfRange);
        }
        Ok(v)
    }

    /// Reads an integer of any width as `i64`. A uint64 above `i64::MAX`: [`Error::OutOfRange`].
    pub fn read_i64(&mut self) -> Result<i64> {
        let start = self.pos;
        let mut class = UINT;
        let v = self.int(&mut class)?;
        if class == UINT && (v as i64) < 0 {
            self.pos = start;
            return Err(Error::OutOfRange);
        }
        Ok(v as i64)
    }

    /// Reads an integer of any width as its 64-bit two's-complement bits.
    #[inline]
    pub(crate) fn read_int_bits(&mut self) -> Result<u64> {
        self.int(&mut 0)
    }

    /// Reads a float32. A float64 is [`Error::WrongType`] (it would lose precision).
    pub fn read_f32(&mut self) -> Result<f32> {
        self.head_of(F32).map(|v| f32::from_bits(v as u32))
    }

    /// Reads a float64 or a float32 (widened exactly).
    pub fn read_f64(&mut self) -> Result<f64> {
        if self.peek() == Some(0xca) {
            return self.read_f32().map(f64::from);
        }
        self.head_of(F64).map(f64::from_bits)
    }

    /// The bytes of a str (fixstr inline; any width), not checked for UTF-8. On error the
    /// position is unchanged.
    #[inline(always)]
    fn str_bytes(&mut self) -> Result<&'a [u8]> {
        if let Some(b) = self.peek() {
            if b & 0xe0 == 0xa0 {
                let end = self.pos + 1 + usize::from(b & 0x1f);
                if let Some(s) = self.buf.get(self.pos + 1..end) {
                    self.pos = end;
                    return Ok(s);
                }
            }
        }
        self.bytes_of(STR)
    }

    /// Reads a str, borrowed from the input. Not UTF-8: [`Error::InvalidUtf8`].
    pub fn read_str(&mut self) -> Result<&'a str> {
        let start = self.pos;
        let r = self.str_bytes().and_then(utf8);
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    /// Reads a bin, borrowed from the input.
    pub fn read_bin(&mut self) -> Result<&'a [u8]> {
        self.bytes_of(BIN)
    }

    /// Reads a bin or the raw bytes of a str (no UTF-8 check).
    pub(crate) fn read_bytes_or_str(&mut self) -> Result<&'a [u8]> {
        match self.peek() {
            Some(0xc4..=0xc6) => self.read_bin(),
            _ => self.str_bytes(),
        }
    }

    /// Reads an array header and returns the element count; the elements follow.
    #[inline(never)]
    pub fn read_array_len(&mut self) -> Result<u32> {
        if let Some(n) = self.fix(0x90, 0x0f) {
            return Ok(n.into());
        }
        self.head_of(ARRAY).map(|n| n as u32)
    }

    /// Reads a map header and returns the number of key/value pairs; the pairs follow.
    pub fn read_map_len(&mut self) -> Result<u32> {
        if let Some(n) = self.fix(0x80, 0x0f) {
            return Ok(n.into());
        }
        self.head_of(MAP).map(|n| n as u32)
    }

    /// Reads an ext value: its type and its data, borrowed.
    pub fn read_ext(&mut self) -> Result<(i8, &'a [u8])> {
        let start = self.pos;
        let n = self.head_of(EXT)?;
        let r = usize::try_from(n)
            .map_err(|_| Error::Truncated)
            .and_then(|n| self.ext_body(n));
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    /// The type byte and `n` data bytes of an ext after its header.
    fn ext_body(&mut self, n: usize) -> Result<(i8, &'a [u8])> {
        let ty = self.peek_byte()? as i8;
        self.pos += 1;
        Ok((ty, self.take(n)?))
    }

    /// Skips one whole value, including everything nested in it.
    ///
    /// More than [`MAX_DEPTH`] nested containers give [`Error::DepthLimit`]; nesting is
    /// followed by recursion at most that deep (32 bytes of stack a level on thumbv7em; none
    /// for scalars and arrays of scalars). On error the position is left unchanged.
    pub fn skip(&mut self) -> Result<()> {
        self.skip_at(0)
    }

    /// [`skip`](Self::skip) for a value that is already `depth` containers deep.
    pub(crate) fn skip_at(&mut self, depth: usize) -> Result<()> {
        let start = self.pos;
        let e = match self.item() {
            Ok(None) => return Ok(()),
            Ok(Some(items)) => match self.skip_items(items, MAX_DEPTH.saturating_sub(depth)) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            Err(e) => e,
        };
        self.pos = start;
        Err(e)
    }

    /// Passes one item: a scalar with its body, or only the header of an array/map. Returns
    /// the number of items inside for a container (map entries count twice), else `None`.
    fn item(&mut self) -> Result<Option<usize>> {
        let b = self.peek_byte()?;
        // Positive fixint and nil (args, results, errors), fixarray (params): no table.
        if b < 0x80 || b == 0xc0 {
            self.pos += 1;
            return Ok(None);
        }
        if b & 0xf0 == 0x90 {
            self.pos += 1;
            return Ok(Some(usize::from(b & 0x0f)));
        }
        let mut class = 0;
        let n = self.head(&mut class)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        match class {
            ARRAY => return Ok(Some(n)),
            MAP => return Ok(Some(n.saturating_mul(2))),
            STR | BIN => {
                self.take(n)?;
            }
            EXT => {
                self.ext_body(n)?;
            }
            _ => {}
        }
        Ok(None)
    }

    /// Passes the `items` items of a container whose header was just read; `limit` is how
    /// many more containers may nest here, counting this one.
    fn skip_items(&mut self, items: usize, limit: usize) -> Result<()> {
        // Every container counts against the limit, even an empty one.
        let Some(inner) = limit.checked_sub(1) else {
            return Err(Error::DepthLimit);
        };
        // Each item takes at least one byte: more items than bytes left is truncated input
        // (and keeps every count within `usize`).
        if items > self.buf.len().saturating_sub(self.pos) {
            return Err(Error::Truncated);
        }
        for _ in 0..items {
            if let Some(n) = self.item()? {
                self.skip_items(n, inner)?;
            }
        }
        Ok(())
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
    let mut it = s.iter();
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
        // A multi-byte, broken or forbidden sequence at every offset of an ASCII run.
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
