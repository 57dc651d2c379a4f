//! Finding the end of a MessagePack value that arrives in pieces.

use crate::decode::{ARRAY, BIN, EXT, MAP, STR};
use crate::{Decoder, Error, Result, MAX_DEPTH};

const _: () = assert!(MAX_DEPTH <= 32, "the map bit sets are u32");

/// Finds where one MessagePack value ends when its bytes arrive in chunks, without keeping
/// them: a receiver uses it to drop a message too large to buffer and to resume right behind it.
///
/// The state is a stack of element counts (at most [`MAX_DEPTH`] open arrays/maps, as
/// [`Decoder::skip`](crate::Decoder::skip)), the bytes still to pass inside a str, bin, ext or
/// number, and the part of a length field read so far. No heap, no recursion; about 150 bytes.
///
/// Nothing is validated beyond the structure: strs are not checked for UTF-8, and a length
/// field is believed (a str32 of 4 GiB is skipped until 4 GiB have passed). The caller bounds
/// that by its own framing if needed.
///
/// ```
/// use duet_codec::Skipper;
///
/// // [1, "abc"] followed by the next value (0x07), split in the middle of the str.
/// let mut s = Skipper::new();
/// assert_eq!(s.feed(&[0x92, 0x01, 0xa3, b'a']), Ok(None));
/// assert_eq!(s.feed(&[b'b', b'c', 0x07]), Ok(Some(2)));
/// ```
#[derive(Clone, Debug)]
pub struct Skipper {
    /// Elements (arrays) or entries (maps) still to pass in each open container.
    left: [u32; MAX_DEPTH],
    /// Bit `d`: container `d` is a map.
    map: u32,
    /// Bit `d`: the map at `d` has passed the key of its current entry and waits for its value.
    key_done: u32,
    /// Open containers.
    depth: u8,
    /// Bytes still to pass inside the current str/bin/ext body.
    body: u64,
    /// The header of the current item so far: its marker and the number behind it (a value,
    /// a length or a count; at most 8 bytes).
    head: [u8; 9],
    /// How many bytes of `head` have arrived.
    have: u8,
}

impl Default for Skipper {
    fn default() -> Self {
        Self::new()
    }
}

impl Skipper {
    /// A skipper at the start of a value.
    pub const fn new() -> Self {
        Skipper {
            left: [0; MAX_DEPTH],
            map: 0,
            key_done: 0,
            depth: 0,
            body: 0,
            head: [0; 9],
            have: 0,
        }
    }

    /// Forgets any value in progress: the next byte fed starts a new value.
    pub fn reset(&mut self) {
        // The counts and map bits of a level are written when it opens, before any read.
        self.depth = 0;
        self.body = 0;
        self.have = 0;
    }

    /// Passes over the next bytes of the value.
    ///
    /// Returns `Ok(Some(n))` when the value ends after the first `n` bytes of `chunk`
    /// (`1 <= n <= chunk.len()`; the rest is not looked at), `Ok(None)` when all of `chunk`
    /// belongs to the value and more is needed. After an end the skipper starts over with a
    /// new value.
    ///
    /// Errors: the byte 0xC1 where a value starts ([`Error::InvalidMarker`]), arrays/maps nested
    /// deeper than [`MAX_DEPTH`] ([`Error::DepthLimit`]). After an error the skipper is reset.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<usize>> {
        let r = self.run(chunk);
        if r.is_err() {
            self.reset();
        }
        r
    }

    fn run(&mut self, chunk: &[u8]) -> Result<Option<usize>> {
        let mut i = 0;
        while i < chunk.len() {
            if self.body > 0 {
                let rest = (chunk.len() - i) as u64;
                let n = self.body.min(rest);
                // `n <= rest`, which came from a `usize`.
                i += n as usize;
                self.body -= n;
                if self.body > 0 {
                    return Ok(None);
                }
                if self.value_done() {
                    return Ok(Some(i));
                }
                continue;
            }
            let have = usize::from(self.have);
            if let Some(slot) = self.head.get_mut(have) {
                *slot = chunk[i];
            }
            i += 1;
            let need = crate::decode::head_len(self.head[0]);
            if have + 1 < need {
                self.have += 1;
                continue;
            }
            self.have = 0;
            // The whole header is here: the decoder tells what it is.
            let mut d = Decoder::new(self.head.get(..need).unwrap_or(&[]));
            let mut class = 0;
            let n = d.head(&mut class)?;
            let n32 = u32::try_from(n).unwrap_or(u32::MAX);
            let ended = match class {
                ARRAY => self.open(n32, false)?,
                MAP => self.open(n32, true)?,
                // str/bin: the body; ext: the type byte, then the data.
                STR | BIN | EXT => {
                    self.body = n + u64::from(class == EXT);
                    self.body == 0
                }
                _ => true,
            };
            if ended && self.value_done() {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Opens a container of `n` elements or entries; true if it is empty (so complete).
    fn open(&mut self, n: u32, map: bool) -> Result<bool> {
        // Every container counts against the limit, even an empty one (as `Decoder::skip`).
        let d = usize::from(self.depth);
        if d >= MAX_DEPTH {
            return Err(Error::DepthLimit);
        }
        if n == 0 {
            return Ok(true);
        }
        *self.left.get_mut(d).ok_or(Error::DepthLimit)? = n;
        let bit = 1u32 << d;
        if map {
            self.map |= bit;
        } else {
            self.map &= !bit;
        }
        self.key_done &= !bit;
        self.depth += 1;
        Ok(false)
    }

    /// Counts one finished value against the open containers; true when the outermost value
    /// is finished (the skipper is then reset for the next value).
    fn value_done(&mut self) -> bool {
        while let Some(top) = usize::from(self.depth).checked_sub(1) {
            let bit = 1u32 << top;
            if self.map & bit != 0 && self.key_done & bit == 0 {
                // A key: its value follows.
                self.key_done |= bit;
                return false;
            }
            self.key_done &= !bit;
            let Some(left) = self.left.get_mut(top) else {
                break;
            };
            *left = left.saturating_sub(1);
            if *left > 0 {
                return false;
            }
            self.depth -= 1;
        }
        self.reset();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decoder;

    /// Feeds `b` in pieces of `step` bytes; the end position overall, or None.
    fn ends(b: &[u8], step: usize) -> Result<Option<usize>> {
        let mut s = Skipper::new();
        let mut at = 0;
        for c in b.chunks(step) {
            if let Some(n) = s.feed(c)? {
                return Ok(Some(at + n));
            }
            at += c.len();
        }
        Ok(None)
    }

    fn check(b: &[u8], end: usize) {
        for step in 1..=b.len().max(1) {
            assert_eq!(ends(b, step), Ok(Some(end)), "{b:02x?} in steps of {step}");
        }
        let mut d = Decoder::new(b);
        d.skip().unwrap();
        assert_eq!(d.position(), end);
    }

    #[test]
    fn scalars_and_bodies() {
        check(&[0x05, 0xff], 1);
        check(&[0xc0], 1);
        check(&[0xcb, 1, 2, 3, 4, 5, 6, 7, 8, 0x00], 9);
        check(&[0xd1, 0xff, 0xfe], 3);
        check(&[0xa3, b'a', b'b', b'c', 0x01], 4);
        check(&[0xa0, 0x01], 1);
        check(&[0xda, 0x00, 0x02, b'x', b'y', 0xc0], 5);
        check(&[0xc6, 0, 0, 0, 1, 0xaa, 0xc0], 6);
        check(&[0xc4, 0x00, 0xc0], 2);
        // ext8 of 2 bytes (type + data), fixext4, ext32 of 0 bytes.
        check(&[0xc7, 0x02, 0x05, 1, 2, 0xc0], 5);
        check(&[0xd6, 0x01, 1, 2, 3, 4, 0xc0], 6);
        check(&[0xc9, 0, 0, 0, 0, 0x7f, 0xc0], 6);
    }

    #[test]
    fn containers_count_map_entries_twice() {
        // {1: [2, 3], "k": {}} then nil.
        check(&[0x82, 0x01, 0x92, 0x02, 0x03, 0xa1, b'k', 0x80, 0xc0], 8);
        // array16 of 2 empty arrays, map32 of one entry.
        check(&[0xdc, 0x00, 0x02, 0x90, 0x90, 0xc0], 5);
        check(&[0xdf, 0, 0, 0, 1, 0xc0, 0xc3, 0x05], 7);
        // A map nested in a map's value, ending the outer one at once.
        check(&[0x81, 0x01, 0x81, 0x02, 0x03, 0x04], 5);
    }

    #[test]
    fn incomplete_input_wants_more() {
        for b in [
            &[0x92, 0x01][..],
            &[0xdb, 0x00, 0x00],
            &[0xdb, 0x7f, 0xff, 0xff, 0xff, b'a'],
            &[0x81, 0x01],
            &[0xcf, 1, 2, 3],
            &[],
        ] {
            assert_eq!(ends(b, 1), Ok(None), "{b:02x?}");
            assert_eq!(ends(b, 64), Ok(None), "{b:02x?}");
        }
        // A 2 GiB str passes without being kept, chunk by chunk.
        let mut s = Skipper::new();
        assert_eq!(s.feed(&[0xdb, 0x7f, 0xff, 0xff, 0xff]), Ok(None));
        let junk = [0u8; 4096];
        for _ in 0..100 {
            assert_eq!(s.feed(&junk), Ok(None));
        }
    }

    #[test]
    fn starts_over_after_an_end() {
        let mut s = Skipper::new();
        assert_eq!(s.feed(&[0x91, 0x91]), Ok(None));
        assert_eq!(s.feed(&[0x05, 0x92]), Ok(Some(1)));
        assert_eq!(s.feed(&[0x92, 0x01, 0x02, 0x03, 0x04]), Ok(Some(3)));
        assert_eq!(s.feed(&[0x04]), Ok(Some(1)));
    }

    #[test]
    fn errors_match_decoder_skip() {
        assert_eq!(ends(&[0x92, 0x01, 0xc1], 1), Err(Error::InvalidMarker));
        assert_eq!(ends(&[0xc1], 1), Err(Error::InvalidMarker));
        let mut deep = [0x91u8; MAX_DEPTH + 1];
        deep[MAX_DEPTH] = 0x90;
        assert_eq!(ends(&deep, 3), Err(Error::DepthLimit));
        assert_eq!(Decoder::new(&deep).skip(), Err(Error::DepthLimit));
        // MAX_DEPTH levels are fine.
        check(&deep[1..], MAX_DEPTH);
        // An error resets: the next feed starts a new value.
        let mut s = Skipper::new();
        assert_eq!(s.feed(&[0x92, 0xc1]), Err(Error::InvalidMarker));
        assert_eq!(s.feed(&[0x07]), Ok(Some(1)));
    }
}
