//! Decode + evaluate + encode throughput on one core, for an event with 4
//! services. `cargo bench --bench evaluate` prints events per second.
//! Target: at least 200,000 events/s.
//!
//! The event is measured as it travels, one compact JSON line (as
//! `claimline send` and every producer of JSON lines sends it); the same
//! event pretty-printed is measured too, for comparison.
//!
//! Timings on a shared VM wander by a factor of two between runs. For a
//! repeatable figure, count instructions instead:
//! `EVALUATE_BENCH_ITERATIONS=10000 valgrind --tool=callgrind <bench binary>`
//! runs only that many events and exits; divide the total by it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use claimline::codec::{decode, JsonWriter};
use claimline::domain::{evaluate, Rules};

/// The service's allocator (see src/main.rs), so the figure is the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PRETTY: &str = include_str!("event-4-services.json");

fn one(event: &[u8], rules: &Rules, out: &mut Vec<u8>) -> usize {
    let enc = decode(event).expect("bench event is valid");
    let lines = evaluate(&enc, rules);
    out.clear();
    let mut writer = JsonWriter::default();
    for l in &lines {
        writer.write(l, out);
        out.push(b'\n');
    }
    lines.len()
}

/// Events per second in the best of 10 rounds, after a warm-up. The best
/// round is the one the VM's neighbours disturbed least.
fn throughput(event: &[u8], rules: &Rules, out: &mut Vec<u8>) -> f64 {
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        black_box(one(black_box(event), rules, out));
    }
    let mut best = 0.0f64;
    for _ in 0..10 {
        let n = 100_000;
        let t = Instant::now();
        for _ in 0..n {
            black_box(one(black_box(event), rules, out));
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

/// Microseconds per call, best of 3 rounds.
fn per(f: &mut dyn FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let n = 50_000;
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    // The rule set the service uses for the event's date by default: the
    // built-in data with CMS's shipped tables (prices, MUEs, PTP rows).
    let date = claimline::codec::decode(PRETTY.as_bytes())
        .expect("bench event decodes")
        .date_of_service;
    let rules: &Rules = claimline::cms::shipped::rules_for(date);
    let compact = serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(PRETTY).unwrap())
        .expect("bench event is JSON");
    let mut out = Vec::with_capacity(8192);
    assert_eq!(one(&compact, rules, &mut out), 4);
    assert_eq!(one(PRETTY.as_bytes(), rules, &mut out), 4);
    if let Some(n) = std::env::var("EVALUATE_BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        for _ in 0..n {
            black_box(one(black_box(&compact), rules, &mut out));
        }
        return;
    }

    let enc = decode(&compact).unwrap();
    let lines = evaluate(&enc, rules);
    let d = per(&mut || {
        black_box(decode(black_box(&compact)).unwrap());
    });
    let e = per(&mut || {
        black_box(evaluate(black_box(&enc), rules));
    });
    let w = per(&mut || {
        out.clear();
        let mut writer = JsonWriter::default();
        for l in &lines {
            writer.write(l, &mut out);
        }
        black_box(&out);
    });
    let serde_encode = per(&mut || {
        out.clear();
        for l in &lines {
            serde_json::to_writer(&mut out, l).unwrap();
        }
        black_box(&out);
    });
    let raw = per(&mut || {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(&compact)).unwrap());
    });
    println!(
        "  event: {} bytes compact ({} pretty-printed), {} claim lines of {} bytes",
        compact.len(),
        PRETTY.len(),
        lines.len(),
        {
            out.clear();
            lines.iter().for_each(|l| l.write_json(&mut out));
            out.len()
        }
    );
    println!("  decode {d:.2} us, evaluate {e:.2} us, encode {w:.2} us");
    println!("  (for scale: serde_json to an untyped Value {raw:.2} us; serde_json encode {serde_encode:.2} us)");
    let pretty = throughput(PRETTY.as_bytes(), rules, &mut out);
    println!(
        "  the same event pretty-printed: {:.0} events/s ({:.2} us/event)",
        pretty,
        1e6 / pretty
    );
    let best = throughput(&compact, rules, &mut out);
    println!(
        "decode+evaluate+encode, 4 services, 1 core: {:.0} events/s ({:.2} us/event); target 200000",
        best,
        1e6 / best
    );
}
