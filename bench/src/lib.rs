//! duet's benchmarks: the simulator against the physical floor of this host (a bare cache-line
//! ping-pong and a bare memcpy ring), and against peers (a MessagePack-RPC implementation over a
//! Unix socket, a cross-thread channel), all measured in alternating rounds of one run and
//! reported as medians and ratios, which hold on a shared, noisy machine (absolute times do
//! not). [`measure`] runs everything; the `duet-bench` binary prints it (`cargo xtask bench`
//! adds the size and emulator figures). Also a small comparative harness, [`compare`].

use std::hint::black_box;
use std::time::{Duration, Instant};

mod affinity;
pub mod codec;
pub mod floor;
pub mod latency;
pub mod peers;
pub mod sim;

pub use affinity::{pin, two_cpus};

/// The two CPUs the two sides run on (`None`: unpinned).
pub type Cpus = Option<(usize, usize)>;

/// Which side of a two-thread measurement a thread is (the M7 side takes the first CPU).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The calling / receiving side (first CPU).
    M7,
    /// The serving / sending side (second CPU).
    M4,
}

/// Pins the calling thread to its side's CPU of `cpus` (nothing if `None` or refused).
pub fn pin_side(cpus: Cpus, side: Side) {
    if let Some((a, b)) = cpus {
        pin(if side == Side::M7 { a } else { b });
    }
}

/// Byte `i` of every stream measurement (period 251, a prime, so chunk boundaries never line
/// up with it).
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// [`pattern`] bytes `0..CHUNK + 251`: byte stream offset `o`'s next `n <= CHUNK` bytes are
/// `&src[o % 251..][..n]`.
pub fn pattern_source() -> Vec<u8> {
    (0..floor::CHUNK + 251).map(pattern).collect()
}

/// How much work each round of [`measure`] does.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds (each measures everything once; medians are over rounds).
    pub rounds: usize,
    /// Cache-line ping-pong round trips per round.
    pub pingpong: u64,
    /// duet calls per round (simulator, two threads; and one thread).
    pub calls: u32,
    /// Bytes through the memcpy ring per round.
    pub ring_bytes: usize,
    /// Bytes through duet's stream per round.
    pub stream_bytes: usize,
    /// Channel round trips per round.
    pub channel: u64,
    /// Socket round trips per round.
    pub socket: u64,
}

impl Plan {
    /// The plan of `cargo xtask bench` (about half a minute on a 2-core machine).
    pub const FULL: Plan = Plan {
        rounds: 7,
        pingpong: 200_000,
        calls: 20_000,
        ring_bytes: 256 << 20,
        stream_bytes: 16 << 20,
        channel: 20_000,
        socket: 5_000,
    };

    /// A plan that only checks everything runs (tests, debug builds).
    pub const SMOKE: Plan = Plan {
        rounds: 1,
        pingpong: 100,
        calls: 50,
        ring_bytes: 64 << 10,
        stream_bytes: 16 << 10,
        channel: 50,
        socket: 20,
    };
}

/// The figures of one run: `(key, value)` in a fixed order; keys as in issue 7 plus a few
/// for context (see [`KEYS`]).
pub type Figures = Vec<(&'static str, f64)>;

/// Every key [`measure`] reports, in order, with its unit (their meanings: `cargo xtask
/// bench`'s table). Issue 7's keys plus a few for context: `sim_rtt_one_thread_ns` (the round
/// trip's CPU cost, both cores driven by one thread), `memcpy_ring_mbps` (the floor itself) and
/// `codec_pair_over_rmp_serde` (duet-codec / rmp-serde time for both sides of `add(a, b)`).
pub const KEYS: &[(&str, &str)] = &[
    ("sim_rtt_ns", "ns"),
    ("sim_pingpong_ns", "ns"),
    ("sim_rtt_over_pingpong", "x"),
    ("sim_rtt_one_thread_ns", "ns"),
    ("sim_stream_mbps", "MB/s"),
    ("memcpy_ring_mbps", "MB/s"),
    ("sim_stream_over_memcpy_ring", "x"),
    ("peer_socket_rtt_ns", "ns"),
    ("peer_channel_rtt_ns", "ns"),
    ("codec_pair_over_rmp_serde", "x"),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n => v[n / 2],
    }
}

/// Runs every measurement of `plan` in alternating rounds (each round measures everything
/// once, so slow phases of a noisy machine hit all figures alike) and returns the medians and
/// the medians of the per-round ratios. `progress` is called with a line per round.
pub fn measure(plan: Plan, mut progress: impl FnMut(&str)) -> Figures {
    let cpus = two_cpus();
    let mut s: [Vec<f64>; 10] = Default::default();
    let [rtt, pp, rtt_ratio, rtt1, stream, ring, stream_ratio, socket, channel, codec] = &mut s;
    let (mut req, mut resp) = ([0u8; 64], [0u8; 64]);
    let codec_iters = (plan.calls as usize).max(1) * 10;
    for round in 0..plan.rounds {
        let p = floor::pingpong(plan.pingpong, cpus);
        let r = sim::rtt(plan.calls, cpus);
        pp.push(p);
        rtt.push(r);
        rtt_ratio.push(r / p);
        rtt1.push(sim::rtt_one_thread(plan.calls));
        let m = floor::memcpy_ring(plan.ring_bytes, cpus);
        let st = sim::stream(plan.stream_bytes, cpus);
        ring.push(m);
        stream.push(st);
        stream_ratio.push(st / m);
        socket.push(peers::socket_rtt(plan.socket, cpus));
        channel.push(peers::channel_rtt(plan.channel, cpus));
        let t = Instant::now();
        for i in 0..codec_iters {
            black_box(codec::duet_pair(
                black_box(i as i32),
                2,
                &mut req,
                &mut resp,
            ));
        }
        let d = t.elapsed();
        let t = Instant::now();
        for i in 0..codec_iters {
            black_box(codec::rmp_pair(black_box(i as i32), 2, &mut req, &mut resp));
        }
        codec.push(d.as_secs_f64() / t.elapsed().as_secs_f64().max(1e-9));
        progress(&format!(
            "round {}/{}: rtt {r:.0} ns, ping-pong {p:.0} ns, stream {st:.0} MB/s, ring {m:.0} MB/s",
            round + 1,
            plan.rounds
        ));
    }
    KEYS.iter()
        .zip(s)
        .map(|((k, _), v)| (*k, median(v)))
        .collect()
}

/// `figures` as one JSON object (numbers with up to 3 decimals; NaN as null).
pub fn to_json(figures: &[(&str, f64)]) -> String {
    let body: Vec<String> = figures
        .iter()
        .map(|(k, v)| {
            if v.is_finite() {
                format!("\"{k}\": {}", round3(*v))
            } else {
                format!("\"{k}\": null")
            }
        })
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// `v` rounded to 3 decimals, printed without trailing zeros.
fn round3(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Rounds per contender; the median is reported.
pub const ROUNDS: usize = 21;

/// One contender: a name and an operation to time.
pub struct Contender<'a> {
    /// Shown in the report.
    pub name: &'a str,
    /// The operation; returns a value that is kept alive with `black_box`.
    pub op: &'a mut dyn FnMut() -> u64,
}

/// Median nanoseconds per operation for each contender, measured in alternating rounds;
/// prints them with `title` and their ratios to the first.
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
