//! The byte stream on the simulator (bodies shared with duet's in-memory tests,
//! `crates/duet/tests/suite/serial.rs`); the buffer counts come from the RPMsg transport's stats.

#[path = "../../duet/tests/suite/mod.rs"]
#[macro_use]
mod suite;
mod common;

serial_tests!(common::Sim);
