//! duet-rpmsg: OpenAMP-compatible RPMsg over virtio split rings in shared memory (work in progress).
#![no_std]

pub mod platform;
