//! Every measurement runs to the end and reports a usable figure (no timings are checked: the
//! machine is shared; each measurement asserts its own results, e.g. `add` answers 3 and the
//! streamed bytes match).

use duet_bench::{measure, to_json, Plan, KEYS};

#[test]
fn every_measurement_runs_and_reports_every_key() {
    let mut rounds = 0;
    let figures = measure(Plan::SMOKE, |_| rounds += 1);
    assert_eq!(rounds, Plan::SMOKE.rounds);
    let keys: Vec<&str> = figures.iter().map(|(k, _)| *k).collect();
    let expected: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, expected);
    for (k, v) in &figures {
        assert!(v.is_finite() && *v > 0.0, "{k} = {v}");
    }
    let json = to_json(&figures);
    assert!(
        json.starts_with("{\"sim_rtt_ns\": ") && json.ends_with('}'),
        "{json}"
    );
    assert_eq!(json.matches(": ").count(), KEYS.len());
}

#[test]
fn json_marks_missing_figures_null() {
    assert_eq!(
        to_json(&[("a", 1.5), ("b", f64::NAN), ("c", 2.0)]),
        "{\"a\": 1.5, \"b\": null, \"c\": 2}"
    );
}
