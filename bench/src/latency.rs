//! Round-trip samples, one per call, on the simulator: the distribution behind the latency
//! histogram of `cargo xtask bench --plot DIR` (the medians of [`crate::measure`] hide it).

use std::thread;
use std::time::Instant;

use duet::Rpc;
use duet_sim::machine::{run_pair, M7Rpc};

use crate::{pin_side, Cpus, Side};

/// Calls made before sampling starts.
const WARM_UP: u32 = 200;

/// Nanoseconds of each of `calls` `call("add", (1, 2))` round trips from the M7 thread to the
/// M4 thread and back (the same setup as [`crate::sim::rtt`]: two threads, pinned to `cpus`,
/// the M4 polling and then sleeping on its doorbell), in call order, after a warm-up.
pub fn rtt_samples(calls: u32, cpus: Cpus) -> Vec<u64> {
    let (samples, ()) = run_pair(
        |m7| {
            pin_side(cpus, Side::M7);
            let mut rpc: M7Rpc<'_> = Rpc::new(m7);
            while rpc.call::<i32, _>("add", (1, 2)).is_err() {
                thread::yield_now();
            }
            for _ in 0..WARM_UP {
                let _: i32 = rpc.call("add", (1, 2)).expect("add");
            }
            let mut samples = Vec::with_capacity(calls as usize);
            for _ in 0..calls {
                let t = Instant::now();
                let r: i32 = rpc.call("add", (1, 2)).expect("add");
                samples.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                assert_eq!(r, 3);
            }
            rpc.notify("stop", ()).expect("stop");
            samples
        },
        |m4| crate::sim::serve(m4, cpus),
    );
    samples
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_sample_per_call_all_positive() {
        let s = super::rtt_samples(50, None);
        assert_eq!(s.len(), 50);
        assert!(s.iter().all(|&ns| ns > 0));
    }
}
