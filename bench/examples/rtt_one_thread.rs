//! `N` (default 10 000) `add(1, 2)` round trips with both simulated cores driven from one
//! thread, for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/rtt_one_thread 10000`.

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000u32);
    let ns = duet_bench::sim::rtt_one_thread(n);
    println!("{n} round trips, {ns:.0} ns each");
}
