//! The simulator as a `suite::Harness`: real duet-rpmsg `Host` (M7) and `Remote` (M4) over one
//! in-process `SimPlatform` pair
//! (`duet_sim::pair()`), connected before the bodies run.
#![allow(dead_code)]

use std::sync::Arc;

use duet::Doorbell;
use duet_rpmsg::{Config, Endpoint, Host, Remote, Transport};
use duet_sim::SimPlatform;

use crate::suite::{Harness, Link, Opts};

/// The M7 side's transport.
pub type M7 = Host<SimPlatform>;
/// The M4 side's transport.
pub type M4 = Remote<SimPlatform>;

/// The Arduino profile with `max_message_len` changed.
pub fn config(max_message_len: usize) -> Config {
    Config {
        max_message_len,
        ..Config::arduino()
    }
}

/// Host and remote of a fresh chip with both endpoints bound (the glue's handshake).
pub fn connected(max_message_len: usize) -> (M7, M4) {
    let (h, r) = duet_sim::machine::transports_with(config(max_message_len)).unwrap();
    (h.into_inner(), r.into_inner())
}

/// The simulator pair for the shared bodies.
pub struct Sim;

impl Harness for Sim {
    type A = M7;
    type B = M4;
    fn pair(opts: Opts) -> (M7, M4) {
        connected(opts.max_message_len)
    }
}

/// The RPMsg transports' own counters and the platform's duet doorbell.
macro_rules! sim_link {
    ($t:ty) => {
        impl Link for $t {
            fn buffers_sent(&self) -> usize {
                self.stats().buffers_sent as usize
            }
            fn buffers_sent_on(&self, _: Endpoint) -> Option<usize> {
                None
            }
            fn doorbell(&self) -> Option<Arc<Doorbell>> {
                Some(self.platform().duet_doorbell())
            }
        }
    };
}

sim_link!(M7);
sim_link!(M4);
