//! duet-rpmsg: OpenAMP-compatible RPMsg over virtio split rings in shared memory (work in progress).
#![no_std]

pub mod platform;
pub mod transport;

pub use platform::{Instant, OutOfBounds, Platform, SharedMemory};
pub use transport::{Corruption, Endpoint, Error, Received, Transport};
