//! [`RingSniffer`]: events from the shared memory alone, for feeders that see memory but not
//! the transport's calls (an emulator running both firmware images, a memory dump).

use duet_rpmsg::layout as l;

use crate::{CpuId, Endpoint, Event, EventKind};

/// Region offset of a buffer whose descriptor holds device address `addr` (descriptor
/// addresses count from `DA_BASE`, 0x400 into the region).
fn buffer_offset(addr: u32) -> usize {
    addr as usize + (l::DA_BASE - l::SHM_BASE) as usize
}

/// A buffer's endpoint and payload.
type Payload = (Endpoint, Vec<u8>);

/// The RPMsg name-service address (announcements, not data).
const NS_ADDR: u32 = 0x35;
/// The first local endpoint address of the Arduino profile (`"raw"`; `"rpc"` is the next).
const FIRST_ADDR: u32 = 0x400;

/// Watches the two vrings of the Arduino/MicroPython layout (`duet_rpmsg::Config::arduino()`,
/// 64 descriptors per ring, vring1 M7 -> M4 at 0x400, vring0 M4 -> M7 at 0x1400) and turns
/// what changed since the last look into [`Event`]s:
/// - a buffer the M7 put on vring1's avail ring, or the M4 on vring0's used ring: `Sent` by
///   that core (one event per buffer, its payload; a message over 496 bytes is several);
/// - a buffer the M4 returned on vring1's used ring, or the M7 re-posted on vring0's avail ring:
///   `Received` by that core, with the bytes it had when it was sent.
///
/// Name-service announcements and the host's first byte `0x00` on each endpoint (the
/// handshake) are not reported. Receipts on vring0 count the avail index beyond the 64
/// buffers the host posts at the start (duet's host and MicroPython's do so, and re-post each
/// buffer once consumed). An index that moves by more than a ring's size (the region was laid
/// out again: a reset) makes it start over from the current indices.
///
/// Poll it whenever something may have changed (after every doorbell write and every few
/// thousand instructions of an emulator); every event of one poll gets that poll's time.
/// Limit: a buffer sent and reused between two polls is reported with its later contents.
#[derive(Debug, Default)]
pub struct RingSniffer {
    /// vring1 avail index seen (M7 sends).
    v1_avail: u16,
    /// vring1 used index seen (M4 receipts).
    v1_used: u16,
    /// vring0 used index seen (M4 sends).
    v0_used: u16,
    /// Buffers consumed by the M7 seen (vring0 avail index - 64).
    v0_taken: u16,
    /// Sent and not yet received: `[M7 -> M4, M4 -> M7]` as (endpoint, bytes), in order.
    pending: [std::collections::VecDeque<Option<Payload>>; 2],
    /// The host's handshake byte is still due on `[raw, rpc]`.
    hello_seen: [bool; 2],
}

impl RingSniffer {
    /// A sniffer for a region that is not laid out yet, or was just laid out.
    pub fn new() -> Self {
        RingSniffer::default()
    }

    /// The events since the last poll, at `t_ns`. `read(offset, buf)` fills `buf` from the
    /// region (64 KiB, offset 0 = 0x3800_0000) and returns `false` for an access outside it.
    /// Never panics, whatever the memory holds (bad values are skipped).
    pub fn poll(&mut self, t_ns: u64, read: impl Fn(usize, &mut [u8]) -> bool) -> Vec<Event> {
        let r16 = |off: usize| {
            let mut b = [0u8; 2];
            read(off, &mut b).then(|| u16::from_le_bytes(b))
        };
        let mut out = Vec::new();
        let v1 = (l::VRING1_ADDR - l::SHM_BASE) as usize;
        let v0 = (l::VRING0_ADDR - l::SHM_BASE) as usize;
        let num = l::NUM_DESCRIPTORS;
        let (Some(v1_avail), Some(v1_used), Some(v0_used), Some(v0_avail)) = (
            r16(v1 + l::AVAIL_OFFSET + l::AVAIL_IDX),
            r16(v1 + l::USED_OFFSET + l::USED_IDX),
            r16(v0 + l::USED_OFFSET + l::USED_IDX),
            r16(v0 + l::AVAIL_OFFSET + l::AVAIL_IDX),
        ) else {
            return out;
        };
        let v0_taken = v0_avail.wrapping_sub(num);
        let moved = [
            v1_avail.wrapping_sub(self.v1_avail),
            v1_used.wrapping_sub(self.v1_used),
            v0_used.wrapping_sub(self.v0_used),
            v0_taken.wrapping_sub(self.v0_taken),
        ];
        if v0_avail < num && self.v0_taken == 0 {
            // The host has not posted its receive buffers yet: nothing consumed.
        } else if moved.iter().any(|&m| m > num) {
            *self = RingSniffer {
                v1_avail,
                v1_used,
                v0_used,
                v0_taken,
                ..RingSniffer::default()
            };
            return out;
        }
        // Sends: M7 on vring1's avail ring (entries are descriptor indices).
        while self.v1_avail != v1_avail {
            let slot = v1 + l::AVAIL_OFFSET + l::AVAIL_RING + 2 * usize::from(self.v1_avail % num);
            let sent = r16(slot).and_then(|d| self.payload(&read, v1, d, CpuId::Cm7));
            self.report_sent(&mut out, t_ns, CpuId::Cm7, sent);
            self.v1_avail = self.v1_avail.wrapping_add(1);
        }
        // Sends: M4 on vring0's used ring (entries are {u32 id, u32 len}).
        while self.v0_used != v0_used {
            let slot = v0
                + l::USED_OFFSET
                + l::USED_RING
                + l::USED_ELEM_SIZE * usize::from(self.v0_used % num);
            let sent = r16(slot).and_then(|d| self.payload(&read, v0, d, CpuId::Cm4));
            self.report_sent(&mut out, t_ns, CpuId::Cm4, sent);
            self.v0_used = self.v0_used.wrapping_add(1);
        }
        // Receipts, in order per direction.
        if !(v0_avail < num && self.v0_taken == 0) {
            self.report_received(
                &mut out,
                t_ns,
                CpuId::Cm7,
                v0_taken.wrapping_sub(self.v0_taken),
            );
            self.v0_taken = v0_taken;
        }
        self.report_received(
            &mut out,
            t_ns,
            CpuId::Cm4,
            v1_used.wrapping_sub(self.v1_used),
        );
        self.v1_used = v1_used;
        out
    }

    /// The endpoint and payload of descriptor `d` of the ring at `ring`, sent by `from`;
    /// `None` for announcements, handshake bytes and invalid values.
    fn payload(
        &mut self,
        read: &impl Fn(usize, &mut [u8]) -> bool,
        ring: usize,
        d: u16,
        from: CpuId,
    ) -> Option<Payload> {
        if d >= l::NUM_DESCRIPTORS {
            return None;
        }
        let mut desc = [0u8; l::DESC_SIZE];
        if !read(ring + l::DESC_SIZE * usize::from(d), &mut desc) {
            return None;
        }
        let addr = u32::from_le_bytes(desc[l::DESC_ADDR..l::DESC_ADDR + 4].try_into().ok()?);
        let buf = buffer_offset(addr);
        let mut hdr = [0u8; l::HDR_SIZE];
        if !read(buf, &mut hdr) {
            return None;
        }
        let src = u32::from_le_bytes(hdr[0..4].try_into().ok()?);
        let dst = u32::from_le_bytes(hdr[4..8].try_into().ok()?);
        let len = usize::from(u16::from_le_bytes(hdr[12..14].try_into().ok()?));
        if src == NS_ADDR || dst == NS_ADDR || len > l::PAYLOAD_PER_BUFFER {
            return None;
        }
        let endpoint = match dst.checked_sub(FIRST_ADDR) {
            Some(0) => Endpoint::Raw,
            Some(1) => Endpoint::Rpc,
            _ => return None,
        };
        let mut bytes = vec![0u8; len];
        if !read(buf + l::HDR_SIZE, &mut bytes) {
            return None;
        }
        if from == CpuId::Cm7 && !self.hello_seen[endpoint as usize] {
            self.hello_seen[endpoint as usize] = true;
            if bytes == [0] {
                return None;
            }
        }
        Some((endpoint, bytes))
    }

    fn report_sent(&mut self, out: &mut Vec<Event>, t_ns: u64, from: CpuId, sent: Option<Payload>) {
        if let Some((endpoint, bytes)) = &sent {
            out.push(Event::sent(t_ns, from, *endpoint, bytes.clone(), 0));
        }
        // Skipped buffers are queued too, so receipts stay matched in order.
        self.pending[lane(from)].push_back(sent);
    }

    fn report_received(&mut self, out: &mut Vec<Event>, t_ns: u64, by: CpuId, n: u16) {
        for _ in 0..n {
            let Some(sent) = self.pending[lane(by.peer())].pop_front() else {
                return;
            };
            if let Some((endpoint, bytes)) = sent {
                out.push(Event {
                    t_ns,
                    core: by,
                    kind: EventKind::Received {
                        endpoint,
                        bytes,
                        dur_ns: 0,
                    },
                });
            }
        }
    }
}

fn lane(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => 0,
        CpuId::Cm4 => 1,
    }
}
