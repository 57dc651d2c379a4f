//! duet-rpmsg: OpenAMP-compatible RPMsg over virtio split rings in shared memory.
//!
//! Byte-compatible with Arduino's `RPC` library (ArduinoCore-mbed >= 4.1.1) and MicroPython's
//! `openamp` module: see the spec `arduino-rpc-wire.md` §1 and §7. Two roles:
//! - [`Host`], the virtio driver (the M7): lays out the resource table and both rings, binds
//!   the endpoints the remote announces, sends the throw-away first byte on each.
//! - [`Remote`], the virtio device (the M4): waits for the table, announces `"raw"` and
//!   `"rpc"`, learns the host's addresses from the first message on each and drops it.
//!
//! Both implement [`Transport`]. No heap, no threads: everything is driven by `poll`/`try_*`
//! calls; a doorbell is only a hint, every receive drains the ring. Every value read from shared
//! memory is validated; a corrupt peer yields [`Error::Corrupt`], never a panic or an access
//! outside the region.
#![no_std]
#![deny(missing_docs)]

mod common;
pub mod config;
mod host;
pub mod platform;
mod remote;
mod ring;
pub mod transport;

pub use common::{connect, Payload, Stats, Writer, POLL_SLICE};
pub use config::{layout, Arduino, Config, Profile, MAX_DESCRIPTORS};
pub use host::Host;
pub use platform::{Instant, OutOfBounds, Platform, SharedMemory};
pub use remote::Remote;
pub use transport::{Corruption, Endpoint, Error, PayloadRead, Received, Transport};
