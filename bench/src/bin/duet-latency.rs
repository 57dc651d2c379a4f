//! `duet-latency [CALLS]`: prints `{"sim_rtt_samples_ns": [...]}`, the round trip of each of
//! CALLS (default 20000) `add(1, 2)` calls on the simulator (see
//! [`duet_bench::latency::rtt_samples`]). Run by `cargo xtask bench --plot DIR`.

fn main() {
    let calls = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let cpus = duet_bench::two_cpus();
    let samples = duet_bench::latency::rtt_samples(calls, cpus);
    let body: Vec<String> = samples.iter().map(u64::to_string).collect();
    println!("{{\"sim_rtt_samples_ns\": [{}]}}", body.join(", "));
}
