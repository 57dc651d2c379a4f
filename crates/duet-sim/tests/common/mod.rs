//! The simulator as a `suite::Harness`: real duet-rpmsg `Host` (M7) and `Remote` (M4) over one
//! in-process `SimPlatform` pair, connected before the bodies run.
#![allow(dead_code)]

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use duet::Doorbell;
use duet_rpmsg::{connect, Config, Endpoint, Host, Platform, Remote, Transport};
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

/// Host and remote on a fresh simulated chip, not connected yet.
pub fn unconnected(max_message_len: usize) -> (M7, M4) {
    let (m7, m4) = duet_sim::pair();
    let cfg = config(max_message_len);
    (Host::new(m7, cfg).unwrap(), Remote::new(m4, cfg))
}

/// Host and remote with both endpoints bound (handshake run on two threads).
pub fn connected(max_message_len: usize) -> (M7, M4) {
    let (mut host, remote) = unconnected(max_message_len);
    let m4 = thread::spawn(move || {
        let mut remote = remote;
        let deadline = remote
            .platform()
            .now()
            .saturating_add(Duration::from_secs(10));
        connect(&mut remote, deadline).unwrap();
        remote
    });
    let deadline = host
        .platform()
        .now()
        .saturating_add(Duration::from_secs(10));
    connect(&mut host, deadline).unwrap();
    (host, m4.join().unwrap())
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

impl Link for M7 {
    fn buffers_sent(&self) -> usize {
        self.stats().buffers_sent as usize
    }
    fn buffers_sent_on(&self, _: Endpoint) -> Option<usize> {
        None
    }
    fn attach_doorbell(&self, _bell: Arc<Doorbell>) -> bool {
        false
    }
}

impl Link for M4 {
    fn buffers_sent(&self) -> usize {
        self.stats().buffers_sent as usize
    }
    fn buffers_sent_on(&self, _: Endpoint) -> Option<usize> {
        None
    }
    fn attach_doorbell(&self, _bell: Arc<Doorbell>) -> bool {
        false
    }
}
