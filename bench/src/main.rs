//! `duet-bench [--json] [--smoke]`: runs every measurement of [`duet_bench::measure`] and prints
//! a table, or with `--json` one JSON object on stdout. `--smoke` runs a tiny plan that only
//! checks that everything works. Progress goes to stderr. Normally run by `cargo xtask bench`.

use duet_bench::{measure, to_json, Plan, KEYS};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let plan = if args.iter().any(|a| a == "--smoke") {
        Plan::SMOKE
    } else {
        Plan::FULL
    };
    match duet_bench::two_cpus() {
        Some((a, b)) => eprintln!("duet-bench: two sides pinned to CPUs {a} and {b}"),
        None => eprintln!("duet-bench: fewer than two CPUs available: unpinned"),
    }
    let figures = measure(plan, |line| eprintln!("duet-bench: {line}"));
    if json {
        println!("{}", to_json(&figures));
    } else {
        for ((k, v), (_, unit)) in figures.iter().zip(KEYS) {
            println!("{k:<30} {v:>12.2} {unit}");
        }
    }
}
