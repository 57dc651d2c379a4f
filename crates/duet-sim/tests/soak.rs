//! The short soak (CI size): calls both ways with random sizes (a third spanning several
//! buffers) and the stream both ways at once; nothing lost, duplicated or corrupted, every
//! buffer back at the end. The full size runs with `cargo xtask soak`.

use duet_sim::soak::{self, SoakConfig};

#[test]
fn short_soak_loses_nothing() {
    let cfg = SoakConfig::short();
    let report = soak::run(&cfg).expect("the soak starts");
    println!("{report}");
    report.check().unwrap();
    assert_eq!(report.calls(), 2 * cfg.calls);
    assert_eq!(report.stream_bytes(), 2 * cfg.stream_bytes);
    assert!(report.m7.multi_buffer_calls > 0 && report.m4.multi_buffer_calls > 0);
}
