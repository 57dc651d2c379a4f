//! The engine's call API on the simulator: real duet over the real RPMsg transport, the M7
//! (`Host`) and the M4 (`Remote`) on two threads. The bodies are shared with duet's in-memory
//! tests (`crates/duet/tests/suite/calls.rs`).

#[path = "../../duet/tests/suite/mod.rs"]
#[macro_use]
mod suite;
mod common;

calls_tests!(common::Sim);
