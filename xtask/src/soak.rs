//! `cargo xtask soak [ARGS]`: the full soak on the simulator in a release build: one million
//! RPC calls (half each way, at once) with random argument sizes and 100 MiB through the byte
//! stream (half each way), every result and byte checked, every buffer back at the end.
//! Extra arguments go to `duet-sim soak` (e.g. `--calls 2000000 --seed 7`; `--help` lists
//! them). The short version runs with the normal tests (`crates/duet-sim/tests/soak.rs`).

use crate::{cargo, root};

/// Builds `duet-sim` in release mode and runs `duet-sim soak` with `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut cmd: Vec<&str> = vec!["run", "--release", "-p", "duet-sim", "--", "soak"];
    cmd.extend(args.iter().map(String::as_str));
    cargo(&root(), &cmd)
}
