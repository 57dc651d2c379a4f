//! Recording the traffic between the cores as `duet_trace` events, for
//! `duet-emu --trace-out FILE` (and `cargo xtask emu EXAMPLE --trace-out FILE`).
//!
//! The emulator sees memory and registers, not the transport's calls, so the messages come
//! from a [`duet_trace::RingSniffer`] over SRAM4, polled after every scheduling quantum (both
//! cores advanced to the same time); doorbells are the HSEM releases of the register trace
//! (HSEM 0 by the M7, HSEM 1 by the M4); sleeps are the quanta a core ended in WFI/WFE.
//! Times are virtual nanoseconds, exact to one quantum (`Config::quantum_ns`).

use duet_trace::{CpuId, Event, EventKind, RingSniffer};

use crate::{CoreId, TraceEvent};

/// The recorder the emulator runs while `Emulator::record_traffic` is on.
#[derive(Default)]
pub(crate) struct Traffic {
    sniffer: RingSniffer,
    events: Vec<Event>,
    /// Since when each core (M7, M4) has been asleep, if it is.
    asleep_since: [Option<u64>; 2],
}

/// SRAM4 as the firmware sees it.
pub(crate) const SRAM4: u32 = 0x3800_0000;

fn cpu(core: CoreId) -> CpuId {
    match core {
        CoreId::M7 => CpuId::Cm7,
        CoreId::M4 => CpuId::Cm4,
    }
}

impl Traffic {
    /// After a quantum ending at `now_ns`: new ring entries, and each core's sleep state.
    /// `read(offset, buf)` reads SRAM4.
    pub(crate) fn after_quantum(
        &mut self,
        now_ns: u64,
        asleep: [bool; 2],
        read: impl Fn(usize, &mut [u8]) -> bool,
    ) {
        self.events.extend(self.sniffer.poll(now_ns, read));
        for (i, core) in [CoreId::M7, CoreId::M4].into_iter().enumerate() {
            match (asleep[i], self.asleep_since[i]) {
                (true, None) => self.asleep_since[i] = Some(now_ns),
                (false, Some(since)) => {
                    self.asleep_since[i] = None;
                    self.events.push(Event {
                        t_ns: since,
                        core: cpu(core),
                        kind: EventKind::Slept {
                            dur_ns: now_ns - since,
                            woken: true,
                        },
                    });
                }
                _ => {}
            }
        }
    }

    /// Everything recorded, with the doorbells taken from the register trace `trace`.
    pub(crate) fn events(&self, trace: &[TraceEvent]) -> Vec<Event> {
        let mut out = self.events.clone();
        for t in trace {
            let rang = matches!(
                (t.core, t.what.as_str()),
                (CoreId::M7, "HSEM 0 released") | (CoreId::M4, "HSEM 1 released")
            );
            if rang {
                out.push(Event {
                    t_ns: t.time_ns,
                    core: cpu(t.core),
                    kind: EventKind::Doorbell,
                });
            }
        }
        out.sort_by_key(|e| e.t_ns);
        out
    }
}
