//! A small comparative benchmark harness: runs two (or more) contenders in alternating rounds
//! in the same process and reports the median time per operation and the ratio between them.
//! Ratios measured in one run are robust on a shared, noisy machine; absolute times are not.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Rounds per contender; the median is reported.
pub const ROUNDS: usize = 21;

/// One contender: a name and an operation to time.
pub struct Contender<'a> {
    /// Shown in the report.
    pub name: &'a str,
    /// The operation; returns a value that is kept alive with `black_box`.
    pub op: &'a mut dyn FnMut() -> u64,
}

/// Median nanoseconds per operation for each contender, measured in alternating rounds.
pub fn compare(title: &str, contenders: &mut [Contender<'_>]) -> Vec<f64> {
    // Calibrate the iterations per round so a round takes about 5 ms for the first contender.
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box((contenders[0].op)());
        }
        if t.elapsed() > Duration::from_millis(5) || iters > 1 << 30 {
            break;
        }
        iters *= 2;
    }
    let mut samples = vec![Vec::with_capacity(ROUNDS); contenders.len()];
    for _ in 0..ROUNDS {
        for (c, s) in contenders.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            for _ in 0..iters {
                black_box((c.op)());
            }
            s.push(t.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    println!("{title}");
    for (c, m) in contenders.iter().zip(&medians) {
        println!(
            "  {:<28} {:>10.1} ns/op   {:>6.2}x of {}",
            c.name,
            m,
            m / medians[0],
            contenders[0].name
        );
    }
    medians
}
