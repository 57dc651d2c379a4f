//! MessagePack as readable text, and the reassembly of payload streams into messages.

use std::fmt::Write;

use duet_codec::{Decoder, Kind};

/// The longest text [`render`] returns, in characters (longer texts end in `...`).
pub const RENDER_LIMIT: usize = 160;

/// Deepest nesting [`render`] follows (deeper values show as `...`).
const MAX_DEPTH: usize = 16;

/// Renders the MessagePack values in `bytes` as text close to JSON (`nil` for nil, bins as
/// `b"..."` or hex, exts as `ext(type, hex)`), at most [`RENDER_LIMIT`] characters. Invalid
/// or truncated data ends the text with `<...>` saying so. Never panics.
pub fn render(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut d = Decoder::new(bytes);
    let mut first = true;
    while !d.is_empty() && out.len() <= RENDER_LIMIT {
        if !first {
            out.push(' ');
        }
        first = false;
        if let Err(e) = value(&mut d, &mut out, 0) {
            let _ = write!(out, "<{e}>");
            break;
        }
    }
    if out.chars().count() > RENDER_LIMIT {
        out = out.chars().take(RENDER_LIMIT - 3).collect();
        out.push_str("...");
    }
    out
}

fn value(d: &mut Decoder<'_>, out: &mut String, depth: usize) -> Result<(), duet_codec::Error> {
    if out.len() > RENDER_LIMIT {
        // Enough text: skip the rest of this value.
        return d.skip();
    }
    if depth >= MAX_DEPTH {
        out.push_str("...");
        return d.skip();
    }
    match d.peek_kind()? {
        Kind::Nil => {
            d.read_nil()?;
            out.push_str("nil");
        }
        Kind::Bool => {
            let _ = write!(out, "{}", d.read_bool()?);
        }
        Kind::Uint => {
            let _ = write!(out, "{}", d.read_u64()?);
        }
        Kind::Int => {
            let _ = write!(out, "{}", d.read_i64()?);
        }
        Kind::F32 => {
            let _ = write!(out, "{}", d.read_f32()?);
        }
        Kind::F64 => {
            let _ = write!(out, "{}", d.read_f64()?);
        }
        Kind::Str => {
            let _ = write!(out, "{:?}", d.read_str()?);
        }
        Kind::Bin => {
            let b = d.read_bin()?;
            match std::str::from_utf8(b) {
                Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n') => {
                    let _ = write!(out, "b{s:?}");
                }
                _ => {
                    out.push_str("bin[");
                    hex_into(out, b, 32);
                    out.push(']');
                }
            }
        }
        Kind::Array => {
            let n = d.read_array_len()?;
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                value(d, out, depth + 1)?;
            }
            out.push(']');
        }
        Kind::Map => {
            let n = d.read_map_len()?;
            out.push('{');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                value(d, out, depth + 1)?;
                out.push_str(": ");
                value(d, out, depth + 1)?;
            }
            out.push('}');
        }
        Kind::Ext => {
            let (t, b) = d.read_ext()?;
            let _ = write!(out, "ext({t}, ");
            hex_into(out, b, 16);
            out.push(')');
        }
    }
    Ok(())
}

/// Appends up to `max` bytes of `b` as hex pairs separated by spaces (`..` if cut).
pub(crate) fn hex_into(out: &mut String, b: &[u8], max: usize) {
    for (i, x) in b.iter().take(max).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{x:02x}");
    }
    if b.len() > max {
        out.push_str(" ..");
    }
}

/// Text of raw-endpoint bytes: a Rust string literal of the UTF-8 (lossy).
pub(crate) fn render_raw(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out = format!("{s:?}");
    if out.chars().count() > RENDER_LIMIT {
        out = out.chars().take(RENDER_LIMIT - 3).collect();
        out.push_str("...");
    }
    out
}

/// Reassembles one direction of one endpoint: payloads in, whole MessagePack values out.
///
/// A value that is not complete at the end of a payload is kept for the next one only while
/// payloads are full (`full` bytes, the transport's payload per buffer), as MicroPython's
/// `streaming=True` and duet do; a shorter payload ends it, and the incomplete rest is
/// returned as one malformed piece.
#[derive(Default)]
pub(crate) struct Splitter {
    buf: Vec<u8>,
    /// Indices of the payloads that contributed to `buf` (for times).
    parts: Vec<usize>,
}

/// One piece out of a [`Splitter`]: bytes, whether they are one whole value, and the indices
/// of the payloads they came from.
pub(crate) struct Piece {
    pub bytes: Vec<u8>,
    pub whole: bool,
    pub parts: Vec<usize>,
}

impl Splitter {
    /// Adds payload number `index` (`is_full`: it filled its buffer) and returns the pieces it
    /// completed.
    pub(crate) fn push(&mut self, index: usize, payload: &[u8], is_full: bool) -> Vec<Piece> {
        self.buf.extend_from_slice(payload);
        self.parts.push(index);
        let mut out = Vec::new();
        loop {
            if self.buf.is_empty() {
                self.parts.clear();
                return out;
            }
            let mut d = Decoder::new(&self.buf);
            match d.skip() {
                Ok(()) => {
                    let n = d.position();
                    let bytes: Vec<u8> = self.buf.drain(..n).collect();
                    out.push(Piece {
                        bytes,
                        whole: true,
                        parts: self.parts.clone(),
                    });
                    // The rest (if any) started in the latest payload.
                    self.parts = vec![index];
                }
                Err(duet_codec::Error::Truncated) if is_full => return out,
                Err(_) => {
                    out.push(Piece {
                        bytes: std::mem::take(&mut self.buf),
                        whole: false,
                        parts: std::mem::take(&mut self.parts),
                    });
                    return out;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_like_json() {
        let bytes = [
            0x94, 0x00, 0x05, 0xa3, b'a', b'd', b'd', 0x92, 0x01,
            0xff, // [0, 5, "add", [1, -1]]
            0xc0, 0xc3, 0xc4, 0x02, 0x00, 0x01, 0x81, 0xa1, b'k', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0,
            0,
        ];
        assert_eq!(
            render(&bytes),
            "[0, 5, \"add\", [1, -1]] nil true bin[00 01] {\"k\": 1.5}"
        );
        assert_eq!(render(&[0x92, 0x01]), "[1, <input ends inside a value>");
        assert!(render(&[0xc1]).starts_with('<'));
    }

    #[test]
    fn long_and_deep_values_are_cut_without_panicking() {
        let mut deep = vec![0x91; 10_000];
        deep.push(0x01);
        assert!(render(&deep).starts_with(&format!("{}...", "[".repeat(16))));
        let mut long = vec![0xdc, 0x03, 0xe8];
        long.extend(std::iter::repeat_n(0x7f, 1000));
        let r = render(&long);
        assert_eq!(r.chars().count(), RENDER_LIMIT);
        assert!(r.ends_with("..."));
    }

    #[test]
    fn splitter_joins_full_payloads_and_splits_batches() {
        let mut s = Splitter::default();
        // Two messages in one payload.
        let p = s.push(0, &[0x93, 0x02, 0xa1, b'x', 0x90, 0x91, 0x01], false);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.whole && p.parts == [0]));
        // One message over two payloads (the first full).
        let mut msg = vec![0xc4, 0x20];
        msg.extend([7u8; 0x20]);
        assert!(s.push(1, &msg[..10], true).is_empty());
        let p = s.push(2, &msg[10..], false);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].bytes, msg);
        assert_eq!(p[0].parts, [1, 2]);
        // A short payload ends an incomplete value: malformed.
        let p = s.push(3, &msg[..10], false);
        assert_eq!(p.len(), 1);
        assert!(!p[0].whole);
    }
}
