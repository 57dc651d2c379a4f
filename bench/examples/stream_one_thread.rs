//! `N` KiB (default 1024) through duet's byte stream, M4 -> M7, both simulated cores driven
//! from one thread, for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/stream_one_thread 1024`.

fn main() {
    let kib = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024usize);
    let ns = duet_bench::sim::stream_one_thread(kib);
    println!("{kib} KiB, {ns:.0} ns per KiB");
}
