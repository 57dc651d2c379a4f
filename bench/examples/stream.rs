//! `N` KiB (default 1024) through duet's byte stream on the simulator, M4 -> M7 (two threads),
//! for profiles: `valgrind --tool=callgrind target/release/examples/stream 256`.

fn main() {
    let kib = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024usize);
    let mbps = duet_bench::sim::stream(kib << 10, duet_bench::two_cpus());
    println!("{kib} KiB, {mbps:.1} MB/s");
}
