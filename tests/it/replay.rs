//! `claimline evaluate` prints what the service publishes: one file of
//! events (the shipped examples, then generated amendments, voids, stale
//! and redelivered events, second visits of a day, and co-treatment by a
//! second provider, flagged then cleared) goes to both, and
//! the lines are compared message for message, per encounter and topic.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{event, TestEnv};

/// The examples, then for each of `n` generated encounters a sequence of
/// what integration engines send: finalize, amend, void, redeliver, a
/// stale version, a second visit on the same day.
fn events(n: usize) -> Vec<Value> {
    let examples = include_str!("../../examples/encounters.jsonl");
    let mut out: Vec<Value> = examples
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for k in 0..n {
        let enc = format!("ENC-GEN-{k}");
        let v1 = event(&format!("g{k}-1"), "finalized", &enc, 1);
        out.push(v1.clone());
        if k % 4 == 0 {
            // A second visit of the same patient, provider, payer and day:
            // 7 minutes alone earn nothing; pooled with the day they may.
            let mut pm = event(&format!("g{k}-pm"), "finalized", &format!("{enc}-PM"), 1);
            pm["encounter"]["patient"]["id"] = v1["encounter"]["patient"]["id"].clone();
            pm["encounter"]["services"] = json!([{
                "line_id": "1", "code": "97530", "one_on_one": true,
                "start": "2026-03-02T17:00:00Z", "end": "2026-03-02T17:07:00Z",
                "activities": ["car transfer simulation"]
            }]);
            out.push(pm);
        }
        if k % 4 == 1 {
            // Co-treatment: an OT encounter of the same patient, payer and
            // date under another NPI, over the same minutes; every other one
            // amended later to times of its own (the flag clears).
            let ot_enc = format!("{enc}-OT");
            let mut ot = event(&format!("g{k}-ot"), "finalized", &ot_enc, 1);
            ot["encounter"]["patient"]["id"] = v1["encounter"]["patient"]["id"].clone();
            ot["encounter"]["provider"]["npi"] = json!("9876543213");
            ot["encounter"]["provider"]["discipline"] = json!("OT");
            ot["encounter"]["services"] = json!([{
                "line_id": "1", "code": "97530", "one_on_one": true,
                "start": "2026-03-02T14:10:00Z", "end": "2026-03-02T14:40:00Z",
                "activities": ["tub transfer"]
            }]);
            out.push(ot.clone());
            if k % 8 == 1 {
                let mut ot2 = ot;
                ot2["event_id"] = json!(format!("g{k}-ot-2"));
                ot2["event_type"] = json!("amended");
                ot2["encounter"]["version"] = json!(2);
                ot2["encounter"]["services"][0]["start"] = json!("2026-03-02T16:00:00Z");
                ot2["encounter"]["services"][0]["end"] = json!("2026-03-02T16:30:00Z");
                out.push(ot2);
            }
        }
        if k % 3 == 0 {
            let mut v2 = event(&format!("g{k}-2"), "amended", &enc, 2);
            v2["encounter"]["services"][0]["end"] = json!("2026-03-02T14:39:00Z");
            v2["encounter"]["services"][0]["minutes"] = json!(39);
            v2["encounter"]["services"][1]["start"] = json!("2026-03-02T14:39:00Z");
            v2["encounter"]["services"][1]["end"] = json!("2026-03-02T14:50:00Z");
            v2["encounter"]["services"][1]["minutes"] = json!(11);
            out.push(v2);
            // Stale: version 1 again under a new event id.
            out.push(event(&format!("g{k}-late"), "finalized", &enc, 1));
        }
        if k % 5 == 0 {
            // Redelivery of the first event: a duplicate.
            out.push(v1.clone());
        }
        if k % 7 == 0 {
            let version = if k % 3 == 0 { 2 } else { 1 };
            out.push(event(&format!("g{k}-void"), "voided", &enc, version));
        }
        if k % 11 == 0 {
            // A conflict: version 1 again under another event id, finalized.
            let mut c = v1.clone();
            c["event_id"] = json!(format!("g{k}-conflict"));
            out.push(c);
        }
    }
    out
}

/// `claimline evaluate -` over `input`: (stdout lines, stderr).
fn evaluate(input: &str) -> (Vec<Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args(["evaluate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, String::from_utf8(out.stderr).unwrap())
}

/// The topic the service sends a line to (contract section 2): held lines,
/// and voids of held lines, to review; the rest to the output topic.
fn review(line: &Value) -> bool {
    match line["status"].as_str().unwrap() {
        "needs_review" => true,
        "void" => line["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error"),
        _ => false,
    }
}

type ByKey = BTreeMap<(bool, String), Vec<Value>>;

#[tokio::test(flavor = "multi_thread")]
async fn evaluate_prints_exactly_what_the_service_publishes() {
    let events = events(120);
    assert!(events.len() > 250, "a few hundred events: {}", events.len());
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();

    let (offline, stderr) = evaluate(&input);
    // The conflicts are reported with the reason the service dead-letters
    // them; stale and duplicate events are named too.
    // Conflicts: every 11th encounter's version 1 sent again under another
    // event id, unless an amendment made it stale (every 3rd).
    let conflicts = (0..120).filter(|k| k % 11 == 0 && k % 3 != 0).count();
    assert_eq!(conflicts, 7);
    assert_eq!(
        stderr.matches("(version_conflict)").count(),
        conflicts,
        "{stderr}"
    );
    assert!(stderr.contains("stale event"), "{stderr}");
    assert!(stderr.contains("duplicate event"), "{stderr}");
    let mut expected = ByKey::new();
    for l in &offline {
        let key = l["encounter_id"].as_str().unwrap().to_owned();
        expected
            .entry((review(l), key))
            .or_default()
            .push(l.clone());
    }
    // The replay exercised what it is for.
    let count = |status: &str| offline.iter().filter(|l| l["status"] == status).count();
    assert!(count("void") > 20, "voids and reissues: {}", count("void"));
    let reissued = offline
        .iter()
        .filter(|l| l["encounter_id"].as_str().unwrap().ends_with("-PM"))
        .filter(|l| l["status"] != "void")
        .count();
    assert!(
        reissued >= 30,
        "second visits and their reissues: {reissued}"
    );
    // Co-treatment: flagged on both sides, and cleared by the amendments.
    let co = |l: &&Value| {
        l["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "CO_TREATMENT")
    };
    let flagged = offline
        .iter()
        .filter(|l| l["status"] == "needs_review")
        .filter(co)
        .count();
    assert!(flagged >= 60, "co-treatment lines: {flagged}");
    // Validated lines of an encounter after a CO_TREATMENT line of it.
    let mut was_flagged = std::collections::HashSet::new();
    let mut cleared = 0;
    for l in offline.iter().filter(|l| l["status"] != "void") {
        let enc = l["encounter_id"].as_str().unwrap();
        if co(&l) {
            was_flagged.insert(enc);
        } else if l["status"] == "validated" && was_flagged.contains(enc) {
            cleared += 1;
        }
    }
    assert!(cleared >= 15, "lines reissued without the flag: {cleared}");

    // One partition: the service sees the events in file order.
    let env = TestEnv::new("replay", 1).await;
    let svc = env.service();
    svc.wait_ready(Duration::from_secs(60)).await;
    env.send_events(&events).await;
    // Every event consumed, and every committed line acknowledged.
    let n = events.len() as f64;
    svc.wait_metric(
        "claimline_events_consumed_total",
        |v| v >= n,
        Duration::from_secs(120),
    )
    .await;
    env.wait_count(
        "SELECT count(*) FROM claim_line_outbox",
        0,
        Duration::from_secs(60),
    )
    .await;
    let mut got = ByKey::new();
    let wanted_review = offline.iter().filter(|l| review(l)).count();
    let wanted_output = offline.len() - wanted_review;
    for (topic, n, is_review) in [
        (&env.output, wanted_output, false),
        (&env.review, wanted_review, true),
    ] {
        // Read one more than expected: nothing extra may arrive.
        let msgs = env.read(topic, n + 1, Duration::from_secs(15)).await;
        assert_eq!(msgs.len(), n, "messages on {topic}");
        for m in msgs {
            let key = m.key.clone().unwrap();
            got.entry((is_review, key)).or_default().push(m.json());
        }
    }
    assert_eq!(got.len(), expected.len());
    for (k, want) in &expected {
        assert_eq!(
            got.get(k),
            Some(want),
            "encounter {} (review: {})",
            k.1,
            k.0
        );
    }
}
