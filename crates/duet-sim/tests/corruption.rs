//! Shared-memory corruption on the simulator: while the two cores call each other (both ways,
//! arguments up to three buffers, every result checked end to end with a CRC-32) and stream
//! bytes, random bytes of one area are flipped (seeded, `duet_sim::faults::Target`). Then the
//! M7 resets the link and a clean phase of calls follows.
//!
//! What must hold: no panic, no access outside the region (the accessor refuses it and the
//! transport reports `Memory`), every call ends by its deadline (with its result or an error),
//! the link recovers and every call after the recovery succeeds, every buffer comes back. What
//! cannot be promised is printed: a flip inside a payload (or one that swaps a valid value for
//! another valid one) can change a result that still decodes; duet does not checksum payloads
//! (see the README's threat model), so the test's own CRC-32 catches those as "wrong".

use std::time::Duration;

use duet_sim::faults::Target;
use duet_sim::scenario::{self, Event, Scenario};

fn corrupt(target: Target, seed: u64) -> scenario::ScenarioReport {
    let report = scenario::run(&Scenario {
        seed,
        event: Event::Corrupt {
            target,
            flips: 2000,
            every: Duration::from_micros(300),
        },
        ..Scenario::default()
    });
    println!("{report}\n");
    report.check().unwrap_or_else(|e| panic!("{target:?}: {e}"));
    assert_eq!(report.injected.flips, 2000);
    report
}

#[test]
fn corrupt_descriptors_then_recover() {
    corrupt(Target::Descriptors, 11);
}

#[test]
fn corrupt_indices_then_recover() {
    let r = corrupt(Target::Indices, 12);
    // Flipped indices and entries are caught by the transport's checks.
    assert!(r.m7.corrupt_entries + r.m4.corrupt_entries > 0, "{r}");
}

#[test]
fn corrupt_headers_then_recover() {
    corrupt(Target::Headers, 13);
}

#[test]
fn corrupt_payloads_then_recover() {
    corrupt(Target::Payloads, 14);
}

#[test]
fn corrupt_anything_then_recover() {
    for seed in 20..22 {
        corrupt(Target::Any, seed);
    }
}
