//! Decode + evaluate + encode throughput on one core, for an event with 4
//! services. `cargo bench --bench evaluate` prints events per second.
//! Target: at least 200,000 events/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use claimline::domain::{decode, evaluate, Rules};

const EVENT: &str = include_str!("event-4-services.json");

fn one(rules: &Rules, out: &mut Vec<u8>) -> usize {
    let enc = decode(EVENT.as_bytes()).expect("bench event is valid");
    let lines = evaluate(&enc, rules);
    out.clear();
    for l in &lines {
        serde_json::to_writer(&mut *out, l).expect("encode");
    }
    lines.len()
}

fn main() {
    let rules = Rules::builtin();
    let mut out = Vec::with_capacity(8192);
    assert_eq!(one(rules, &mut out), 4);
    // Warm up, then measure for a few seconds; report the best of 5 rounds.
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        black_box(one(rules, &mut out));
    }
    let mut best = 0.0f64;
    for _ in 0..5 {
        let n = 100_000;
        let t = Instant::now();
        for _ in 0..n {
            black_box(one(rules, &mut out));
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    let enc = decode(EVENT.as_bytes()).unwrap();
    let lines = evaluate(&enc, rules);
    let per = |f: &mut dyn FnMut()| {
        let n = 50_000;
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let d = per(&mut || {
        black_box(decode(black_box(EVENT.as_bytes())).unwrap());
    });
    let e = per(&mut || {
        black_box(evaluate(black_box(&enc), rules));
    });
    let w = per(&mut || {
        out.clear();
        for l in &lines {
            serde_json::to_writer(&mut out, l).unwrap();
        }
        black_box(&out);
    });
    let raw = per(&mut || {
        black_box(serde_json::from_str::<serde_json::Value>(black_box(EVENT)).unwrap());
    });
    let wire_only = per(&mut || {
        black_box(
            serde_json::from_str::<claimline::domain::wire::EncounterEvent>(black_box(EVENT))
                .unwrap(),
        );
    });
    println!("  (wire struct only {wire_only:.2} us)");
    println!("  (for scale: serde_json to an untyped Value {raw:.2} us)");
    println!("  decode {d:.2} us, evaluate {e:.2} us, encode {w:.2} us");
    println!(
        "decode+evaluate+encode, 4 services, 1 core: {:.0} events/s ({:.2} us/event); target 200000",
        best,
        1e6 / best
    );
}
