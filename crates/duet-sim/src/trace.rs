//! Tracing in the simulator: [`Traced`] records every payload a core's transport sends or
//! receives into a [`duet_trace::Recorder`]; [`SimPlatform::set_recorder`] adds the doorbells
//! and sleeps, [`Peripherals::set_recorder`](crate::board::Peripherals::set_recorder) the
//! board's `delay`s and idle sleeps. [`Machine::set_recorder`](crate::Machine::set_recorder)
//! sets all of them for a simulated chip.
//!
//! Off (no recorder), [`Traced`] is one `Option` test per transport call in front of the real
//! transport; the no_std crates know nothing about tracing.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use duet::CpuId;
use duet_rpmsg::{Endpoint, Instant, PayloadRead, Received, Transport};
use duet_trace::{Event, Recorder};

#[cfg(doc)]
use crate::SimPlatform;

/// A transport that records what passes through it (when given a recorder), and otherwise
/// behaves exactly as the transport it wraps. Derefs to it, so its own methods (`stats()`,
/// `begin_reset()`, ...) stay reachable.
pub struct Traced<T> {
    inner: T,
    tap: Option<(Arc<Recorder>, CpuId)>,
}

impl<T> Traced<T> {
    /// Wraps `inner`, the transport of `core`, recording into `recorder` if there is one.
    pub fn new(inner: T, core: CpuId, recorder: Option<Arc<Recorder>>) -> Self {
        Traced {
            inner,
            tap: recorder.map(|r| (r, core)),
        }
    }

    /// Wraps `inner` without recording.
    pub fn off(inner: T) -> Self {
        Traced { inner, tap: None }
    }

    /// The wrapped transport.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Whether this transport records.
    pub fn is_tracing(&self) -> bool {
        self.tap.is_some()
    }
}

impl<T> Deref for Traced<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for Traced<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: Transport> Traced<T> {
    /// Runs `f` on the inner transport; if tracing and it sent `data`, records it.
    fn sending(
        &mut self,
        endpoint: Endpoint,
        data: &[u8],
        f: impl FnOnce(&mut T) -> Result<(), duet_rpmsg::Error>,
    ) -> Result<(), duet_rpmsg::Error> {
        let Some((rec, core)) = &self.tap else {
            return f(&mut self.inner);
        };
        let t0 = rec.now_ns();
        let r = f(&mut self.inner);
        if r.is_ok() {
            let dur = rec.now_ns().saturating_sub(t0);
            rec.record(Event::sent(t0, *core, endpoint, data.to_vec(), dur));
        }
        r
    }
}

impl<T: Transport> Transport for Traced<T> {
    type Platform = T::Platform;

    fn platform(&self) -> &T::Platform {
        self.inner.platform()
    }

    fn poll(&mut self) -> Result<(), duet_rpmsg::Error> {
        self.inner.poll()
    }

    fn is_ready(&self, endpoint: Endpoint) -> bool {
        self.inner.is_ready(endpoint)
    }

    fn max_message_len(&self) -> usize {
        self.inner.max_message_len()
    }

    fn payload_per_buffer(&self) -> usize {
        self.inner.payload_per_buffer()
    }

    fn try_send(&mut self, endpoint: Endpoint, data: &[u8]) -> Result<(), duet_rpmsg::Error> {
        self.sending(endpoint, data, |t| t.try_send(endpoint, data))
    }

    fn send(
        &mut self,
        endpoint: Endpoint,
        data: &[u8],
        deadline: Instant,
    ) -> Result<(), duet_rpmsg::Error> {
        self.sending(endpoint, data, |t| t.send(endpoint, data, deadline))
    }

    fn try_send_parts(
        &mut self,
        endpoint: Endpoint,
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), duet_rpmsg::Error> {
        if self.tap.is_none() {
            return self.inner.try_send_parts(endpoint, head, tail);
        }
        let data = [head, tail].concat();
        self.sending(endpoint, &data, |t| t.try_send_parts(endpoint, head, tail))
    }

    fn try_recv_with<R>(
        &mut self,
        f: impl FnOnce(Endpoint, &dyn PayloadRead) -> (bool, R),
    ) -> Result<Option<R>, duet_rpmsg::Error> {
        let Some((rec, core)) = &self.tap else {
            return self.inner.try_recv_with(f);
        };
        let t0 = rec.now_ns();
        let mut seen = None;
        let r = self.inner.try_recv_with(|ep, p| {
            let (consume, out) = f(ep, p);
            if consume {
                // Recorded as received once consumed (a payload left queued is shown again).
                let mut bytes = vec![0; p.len()];
                if p.read(0, &mut bytes).is_ok() {
                    seen = Some((ep, bytes));
                }
            }
            (consume, out)
        });
        if let Some((ep, bytes)) = seen {
            let dur = rec.now_ns().saturating_sub(t0);
            rec.record(Event::received(t0, *core, ep, bytes, dur));
        }
        r
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, duet_rpmsg::Error> {
        let Some((rec, core)) = &self.tap else {
            return self.inner.try_recv(buf);
        };
        let t0 = rec.now_ns();
        let r = self.inner.try_recv(buf);
        if let Ok(Some(got)) = &r {
            let dur = rec.now_ns().saturating_sub(t0);
            let bytes = buf.get(..got.len).unwrap_or(buf).to_vec();
            rec.record(Event::received(t0, *core, got.endpoint, bytes, dur));
        }
        r
    }
}
