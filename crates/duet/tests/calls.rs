//! Calls between two threads over the in-memory pair (bodies in `suite/calls.rs`, shared with
//! the simulator's tests).

mod common;
#[macro_use]
mod suite;

calls_tests!(common::Mem);
