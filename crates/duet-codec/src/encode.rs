//! The low-level MessagePack writer.

use crate::{Error, Result};

/// Writes MessagePack values into a caller's byte buffer.
///
/// Every `write_*` either writes the whole value or, if it does not fit, returns
/// [`Error::BufferTooSmall`] and leaves [`position`](Encoder::position) unchanged. Integers and
/// lengths use the smallest encoding.
#[derive(Debug)]
pub struct Encoder<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

/// Copies `src` into the front of `dst` (no panic path: stops at the shorter one).
fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// The marker and the number of bytes after it of the smallest encoding of an integer: `bits`
/// is the value, `neg` says it is a negative `i64`.
pub(crate) fn int_head(bits: u64, neg: bool) -> (u8, usize) {
    // Fixints: 0..=127 and -32..=-1 are the marker byte itself.
    if (!neg && bits < 0x80) || (neg && bits >= (-32i64) as u64) {
        return (bits as u8, 0);
    }
    // A negative value is measured through its complement, doubled so that the signed limits
    // (0x7f, 0x7fff, 0x7fff_ffff) become the unsigned ones (-129 -> 128 -> 256 > 0xff).
    let (x, base) = if neg {
        (!bits << 1, 0xd0)
    } else {
        (bits, 0xcc)
    };
    // k = log2 of the width in bytes.
    let k = if x >> 32 != 0 {
        3
    } else if x as u32 > 0xffff {
        2
    } else {
        u8::from(x as u32 > 0xff)
    };
    (base + k, 1 << k)
}

impl<'a> Encoder<'a> {
    /// An encoder that writes from the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Encoder { buf, pos: 0 }
    }

    /// How many bytes have been written.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Consumes the encoder and returns the bytes written, borrowed for the buffer's lifetime.
    pub fn into_written(self) -> &'a [u8] {
        let pos = self.pos;
        let buf: &'a [u8] = self.buf;
        buf.get(..pos).unwrap_or(&[])
    }

    /// How many more bytes fit in the buffer.
    pub fn capacity_left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Moves the position back to `pos` (if it is not past the current position), dropping what
    /// was written after it. Used to undo a partly written value.
    pub fn truncate(&mut self, pos: usize) {
        if pos < self.pos {
            self.pos = pos;
        }
    }

    /// Writes one byte (a fix-form value or header): one bounds check, no table.
    #[inline(always)]
    fn put(&mut self, b: u8) -> Result<()> {
        let slot = self.buf.get_mut(self.pos).ok_or(Error::BufferTooSmall)?;
        *slot = b;
        self.pos += 1;
        Ok(())
    }

    /// Writes the two bytes that start an RPC message: its fixarray header and its type.
    #[inline(never)]
    pub(crate) fn header(&mut self, array: u8, ty: u8) -> Result<()> {
        let end = self.pos.checked_add(2).ok_or(Error::BufferTooSmall)?;
        let Some([a, t]) = self.buf.get_mut(self.pos..end) else {
            return Err(Error::BufferTooSmall);
        };
        *a = array;
        *t = ty;
        self.pos = end;
        Ok(())
    }

    /// Writes `marker`, then the low `width` bytes of `value` big-endian, then `body`,
    /// all or nothing.
    pub(crate) fn emit(&mut self, marker: u8, value: u64, width: usize, body: &[u8]) -> Result<()> {
        let width = if width > 8 { 8 } else { width };
        let end = self
            .pos
            .checked_add(1 + width)
            .and_then(|e| e.checked_add(body.len()))
            .ok_or(Error::BufferTooSmall)?;
        let out = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?;
        if let Some((m, rest)) = out.split_first_mut() {
            *m = marker;
            let (num, tail) = rest
                .split_at_mut_checked(width)
                .unwrap_or((&mut [], &mut []));
            // Big-endian: the lowest byte goes last (a shift loop, not a memcpy call).
            let mut v = value;
            for d in num.iter_mut().rev() {
                *d = v as u8;
                v >>= 8;
            }
            copy(tail, body);
        }
        self.pos = end;
        Ok(())
    }

    /// Writes a header for `len` elements/bytes, followed by `body`. `fix_limit` is the number of
    /// lengths the fix form holds (0 = none); `m8` the 8-bit-length marker (0 = none); `m16` the
    /// 16-bit one; the 32-bit marker is always `m16 + 1`.
    fn emit_len(
        &mut self,
        fix: u8,
        fix_limit: u32,
        m8: u8,
        m16: u8,
        len: usize,
        body: &[u8],
    ) -> Result<()> {
        let n = u32::try_from(len).map_err(|_| Error::OutOfRange)?;
        let n64 = u64::from(n);
        if n < fix_limit {
            self.emit(fix | n as u8, 0, 0, body)
        } else if m8 != 0 && n <= 0xff {
            self.emit(m8, n64, 1, body)
        } else if n <= 0xffff {
            self.emit(m16, n64, 2, body)
        } else {
            self.emit(m16 + 1, n64, 4, body)
        }
    }

    /// Writes nil (0xC0).
    pub fn write_nil(&mut self) -> Result<()> {
        self.put(0xc0)
    }

    /// Writes true (0xC3) or false (0xC2).
    pub fn write_bool(&mut self, v: bool) -> Result<()> {
        self.put(0xc2 | v as u8)
    }

    /// Writes an unsigned integer in its smallest form (positive fixint, uint8..uint64).
    pub fn write_u64(&mut self, v: u64) -> Result<()> {
        self.write_int(v, false)
    }

    /// Writes a signed integer in its smallest form. Non-negative values use the unsigned forms
    /// (as msgpack-c and rmp do); negative ones use negative fixint or int8..int64.
    pub fn write_i64(&mut self, v: i64) -> Result<()> {
        self.write_int(v as u64, v < 0)
    }

    /// `bits` is the value; `neg` says it is a negative `i64`.
    fn write_int(&mut self, bits: u64, neg: bool) -> Result<()> {
        if (!neg && bits < 0x80) || (neg && bits >= (-32i64) as u64) {
            return self.put(bits as u8);
        }
        let (marker, width) = int_head(bits, neg);
        self.emit(marker, bits, width, &[])
    }

    /// Writes a float32 (0xCA).
    pub fn write_f32(&mut self, v: f32) -> Result<()> {
        self.emit(0xca, u64::from(v.to_bits()), 4, &[])
    }

    /// Writes a float64 (0xCB).
    pub fn write_f64(&mut self, v: f64) -> Result<()> {
        self.emit(0xcb, v.to_bits(), 8, &[])
    }

    /// Writes a str (fixstr, str8/16/32). Longer than `u32::MAX` bytes: [`Error::OutOfRange`].
    pub fn write_str(&mut self, v: &str) -> Result<()> {
        self.emit_len(0xa0, 32, 0xd9, 0xda, v.len(), v.as_bytes())
    }

    /// Writes only the header of a str of `len` bytes (fixstr, str8/16/32); the caller must then
    /// write exactly `len` bytes of UTF-8 with [`Encoder::write_raw`], or the output is not
    /// valid MessagePack. For text assembled from pieces without a buffer or `core::fmt`.
    /// Longer than `u32::MAX` bytes: [`Error::OutOfRange`].
    pub fn write_str_header(&mut self, len: usize) -> Result<()> {
        self.emit_len(0xa0, 32, 0xd9, 0xda, len, &[])
    }

    /// Writes a bin (bin8/16/32). Longer than `u32::MAX` bytes: [`Error::OutOfRange`].
    pub fn write_bin(&mut self, v: &[u8]) -> Result<()> {
        self.emit_len(0, 0, 0xc4, 0xc5, v.len(), v)
    }

    /// Writes an array header for `len` elements (fixarray, array16/32); the elements follow.
    pub fn write_array_len(&mut self, len: u32) -> Result<()> {
        if len < 16 {
            return self.put(0x90 | len as u8);
        }
        self.emit_len(0x90, 16, 0, 0xdc, len as usize, &[])
    }

    /// Writes a map header for `len` key/value pairs (fixmap, map16/32); the pairs follow.
    pub fn write_map_len(&mut self, len: u32) -> Result<()> {
        self.emit_len(0x80, 16, 0, 0xde, len as usize, &[])
    }

    /// Writes an ext value of type `ty` (fixext1/2/4/8/16 when the length allows, else
    /// ext8/16/32).
    pub fn write_ext(&mut self, ty: i8, data: &[u8]) -> Result<()> {
        let t = u64::from(ty as u8);
        let n = u32::try_from(data.len()).map_err(|_| Error::OutOfRange)?;
        let n64 = u64::from(n);
        match n {
            1 => self.emit(0xd4, t, 1, data),
            2 => self.emit(0xd5, t, 1, data),
            4 => self.emit(0xd6, t, 1, data),
            8 => self.emit(0xd7, t, 1, data),
            16 => self.emit(0xd8, t, 1, data),
            0..=0xff => self.emit(0xc7, n64 << 8 | t, 2, data),
            0x100..=0xffff => self.emit(0xc8, n64 << 8 | t, 3, data),
            _ => self.emit(0xc9, n64 << 8 | t, 5, data),
        }
    }

    /// Writes bytes verbatim. The caller promises they are valid MessagePack (for example a
    /// [`RawValue`](crate::RawValue)); nothing is checked.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(Error::BufferTooSmall)?;
        let out = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?;
        copy(out, bytes);
        self.pos = end;
        Ok(())
    }

    /// Overwrites one already written byte (no-op if `at` is not before the position).
    pub(crate) fn set_byte(&mut self, at: usize, value: u8) {
        if at < self.pos {
            if let Some(b) = self.buf.get_mut(at) {
                *b = value;
            }
        }
    }

    /// The byte at `at` if it has been written.
    pub(crate) fn byte_at(&self, at: usize) -> Option<u8> {
        self.written().get(at).copied()
    }

    /// Rewrites a 5-byte header reserved at `start` (by `write_raw(&[m32, 0, 0, 0, 0])`) into the
    /// compact header for `count` (`kind`: 0 = str, 1 = array, 2 = map) and moves the body down.
    pub(crate) fn finish_reserved(&mut self, start: usize, kind: u8, count: usize) -> Result<()> {
        let mut hdr = [0u8; 5];
        let mut h = Encoder::new(&mut hdr);
        match kind {
            0 => h.emit_len(0xa0, 32, 0xd9, 0xda, count, &[])?,
            1 => h.emit_len(0x90, 16, 0, 0xdc, count, &[])?,
            _ => h.emit_len(0x80, 16, 0, 0xde, count, &[])?,
        }
        let k = h.pos;
        let body_start = start.checked_add(5).ok_or(Error::BufferTooSmall)?;
        if body_start > self.pos || k > 5 {
            return Err(Error::BufferTooSmall);
        }
        let region = self
            .buf
            .get_mut(start..self.pos)
            .ok_or(Error::BufferTooSmall)?;
        crate::move_down(region, 5..region.len(), k);
        copy(region, hdr.get(..k).unwrap_or(&[]));
        self.pos -= 5 - k;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_header_is_compacted() {
        let mut buf = [0u8; 16];
        let mut e = Encoder::new(&mut buf);
        e.write_nil().unwrap();
        e.write_raw(&[0xdd, 0, 0, 0, 0]).unwrap();
        e.write_raw(&[1, 2, 3]).unwrap();
        e.finish_reserved(1, 1, 3).unwrap();
        assert_eq!(e.written(), &[0xc0, 0x93, 1, 2, 3]);
        // A start that is not a reserved header is refused, not a panic.
        assert_eq!(e.finish_reserved(3, 1, 0), Err(Error::BufferTooSmall));
        assert_eq!(
            e.finish_reserved(usize::MAX, 1, 0),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn emit_writes_exact_width() {
        let mut buf = [0xaa; 6];
        let mut e = Encoder::new(&mut buf);
        e.emit(0xcd, 0x1234, 2, &[9]).unwrap();
        assert_eq!(e.position(), 4);
        assert_eq!(buf, [0xcd, 0x12, 0x34, 9, 0xaa, 0xaa]);
    }

    #[test]
    fn truncate_only_moves_back() {
        let mut buf = [0u8; 4];
        let mut e = Encoder::new(&mut buf);
        e.write_raw(&[1, 2, 3]).unwrap();
        e.truncate(5);
        assert_eq!(e.position(), 3);
        e.truncate(1);
        assert_eq!(e.into_written(), &[1]);
    }
}
