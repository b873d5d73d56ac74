//! Unit tests of the plan step: no Postgres, no broker.
use super::*;
use serde_json::{json, Value};

fn event(event_id: &str, encounter: &str, version: u32, event_type: &str) -> Value {
    json!({
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": "2026-03-02T15:10:00Z",
        "encounter": {
            "encounter_id": encounter,
            "version": version,
            "date_of_service": "2026-03-02",
            "patient": { "id": "PAT-1" },
            "provider": { "npi": "1234567893", "discipline": "PT", "credential": "therapist" },
            "payer": { "id": "PAYER-1", "plan": "medicare" },
            "diagnoses": ["S72.001D"],
            "plan_of_care": { "certified_from": "2026-02-20", "certified_through": "2026-05-20" },
            "services": [
                { "line_id": "1", "code": "97530", "start": "2026-03-02T14:00:00Z",
                  "end": "2026-03-02T14:30:00Z", "activities": ["transfers"] },
                { "line_id": "2", "code": "97110", "minutes": 30, "one_on_one": false }
            ]
        }
    })
}

fn messages(values: &[Vec<u8>]) -> Vec<Incoming> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Incoming {
            topic: "encounters".into(),
            partition: 3,
            offset: 100 + i as i64,
            key: None,
            payload: v.clone().into(),
            timestamp_ms: None,
        })
        .collect()
}

fn topics() -> Topics {
    Topics {
        output: "out".into(),
        review: "review".into(),
    }
}

fn run(batch: &[Incoming], mut ledger: Ledger) -> Plan {
    let messages = decode_all(batch.to_vec(), crate::codec::MAX_EVENT_BYTES);
    plan(
        &messages,
        &mut ledger,
        crate::cms::shipped::book(),
        &topics(),
    )
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[test]
fn good_events_become_rows_and_outbox_bad_ones_dead_letters() {
    let batch = messages(&[
        bytes(&event("e1", "ENC-1", 1, "finalized")),
        b"{not json".to_vec(),
    ]);
    let p = run(&batch, Ledger::default());
    let w = &p.write;
    assert_eq!(w.events.len(), 1);
    assert_eq!(w.events[0].outcome, Outcome::Processed);
    assert_eq!(
        (w.events[0].source.partition, w.events[0].source.offset),
        (3, 100)
    );
    assert_eq!(w.events[0].lines_produced, w.new_lines.len());
    assert_eq!(w.new_lines.len(), 2);
    assert_eq!(w.outbox.len(), 2);
    for (entry, line) in w.outbox.iter().zip(&w.new_lines) {
        assert_eq!(entry.claim_line_id, line.claim_line_id);
        let expected = if line.status == Status::NeedsReview {
            "review"
        } else {
            "out"
        };
        assert_eq!(&*entry.topic, expected);
        let sent: Value = serde_json::from_str(&entry.payload).unwrap();
        assert_eq!(sent["claim_line_id"], line.claim_line_id.as_str());
    }
    assert_eq!(w.dead_letters.len(), 1);
    assert_eq!(w.dead_letters[0].reason, "invalid_json");
    assert_eq!(w.dead_letters[0].source.offset, 101);
    assert_eq!(p.outcomes, vec![(Outcome::Processed, 1)]);
}

#[test]
fn an_event_already_processed_writes_nothing() {
    let batch = messages(&[bytes(&event("e1", "ENC-1", 1, "finalized"))]);
    let mut ledger = Ledger::default();
    ledger.seen.insert("e1".into(), ("ENC-1".into(), 1));
    ledger.versions.insert("ENC-1".into(), 1);
    let p = run(&batch, ledger);
    assert!(p.write.events.is_empty() && p.write.outbox.is_empty());
    assert_eq!(p.outcomes, vec![(Outcome::Duplicate, 1)]);
}

#[test]
fn an_amendment_voids_the_lines_in_force_before_its_own() {
    let first = messages(&[bytes(&event("e1", "ENC-1", 1, "finalized"))]);
    let old = run(&first, Ledger::default()).write.new_lines;
    let mut ledger = Ledger::default();
    ledger.seen.insert("e1".into(), ("ENC-1".into(), 1));
    ledger.versions.insert("ENC-1".into(), 1);
    ledger.active.insert("ENC-1".into(), old.clone());
    let batch = messages(&[
        bytes(&event("e2", "ENC-1", 2, "amended")),
        bytes(&event("e0", "ENC-1", 1, "amended")),
    ]);
    let p = run(&batch, ledger);
    let w = &p.write;
    let statuses: Vec<Status> = w.outbox.iter().map(|o| o.status).collect();
    assert_eq!(&statuses[..old.len()], &vec![Status::Void; old.len()][..]);
    assert!(statuses[old.len()..].iter().all(|s| *s != Status::Void));
    let voided: Vec<&str> = w.voids.iter().map(|(id, _)| id.as_str()).collect();
    let old_ids: Vec<&str> = old.iter().map(|l| l.claim_line_id.as_str()).collect();
    assert_eq!(voided, old_ids);
    assert!(w.voids.iter().all(|(_, by)| &**by == "e2"));
    assert!(w.new_lines.iter().all(|l| l.encounter_version == 2));
    // The older version after it is stale: recorded, nothing published.
    assert_eq!(w.events[1].outcome, Outcome::Stale);
    assert_eq!(w.outbox.len(), old.len() + w.new_lines.len());
}

#[test]
fn a_void_voids_and_adds_no_lines() {
    let first = messages(&[bytes(&event("e1", "ENC-1", 1, "finalized"))]);
    let old = run(&first, Ledger::default()).write.new_lines;
    let mut ledger = Ledger::default();
    ledger.versions.insert("ENC-1".into(), 1);
    ledger.active.insert("ENC-1".into(), old.clone());
    let p = run(
        &messages(&[bytes(&event("e9", "ENC-1", 2, "voided"))]),
        ledger,
    );
    assert_eq!(p.outcomes, vec![(Outcome::Voided, 1)]);
    assert!(p.write.new_lines.is_empty());
    assert_eq!(p.write.voids.len(), old.len());
    assert!(p.write.outbox.iter().all(|o| o.status == Status::Void));
}

#[test]
fn a_void_goes_to_the_topic_of_the_line_it_cancels() {
    let first = messages(&[bytes(&event("e1", "ENC-1", 1, "finalized"))]);
    let mut old = run(&first, Ledger::default()).write.new_lines;
    assert!(old.len() >= 2);
    // One line held for review (an error flag), one validated.
    old[0].flags.push(crate::domain::Flag {
        code: crate::domain::FlagCode::MissingDiagnosis,
        severity: crate::domain::Severity::Error,
        message: "held".into(),
        related_codes: Vec::new(),
    });
    old[0].status = Status::NeedsReview;
    old[1]
        .flags
        .retain(|f| f.severity != crate::domain::Severity::Error);
    old[1].status = Status::Validated;
    let mut ledger = Ledger::default();
    ledger.versions.insert("ENC-1".into(), 1);
    ledger.active.insert("ENC-1".into(), old.clone());
    let p = run(
        &messages(&[bytes(&event("e9", "ENC-1", 2, "voided"))]),
        ledger,
    );
    let topics: Vec<(&str, &str)> = p
        .write
        .outbox
        .iter()
        .map(|o| (o.claim_line_id.as_str(), &*o.topic))
        .collect();
    assert_eq!(topics[0], (old[0].claim_line_id.as_str(), "review"));
    assert_eq!(topics[1], (old[1].claim_line_id.as_str(), "out"));
}

#[test]
fn conflicts_become_dead_letters_with_their_reason() {
    let mut ledger = Ledger::default();
    ledger.seen.insert("e1".into(), ("ENC-1".into(), 1));
    ledger.versions.insert("ENC-1".into(), 1);
    let batch = messages(&[
        bytes(&event("e2", "ENC-1", 1, "amended")),
        bytes(&event("e1", "ENC-2", 1, "finalized")),
        bytes(&event("e3", "ENC-1", 2, "amended")),
    ]);
    let p = run(&batch, ledger);
    let reasons: Vec<_> = p
        .write
        .dead_letters
        .iter()
        .map(|d| (d.source.offset, d.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![(100, "version_conflict"), (101, "event_id_conflict")]
    );
    // One verdict per message, in order.
    let verdicts: Vec<_> = p
        .verdicts
        .iter()
        .map(|v| match v {
            Verdict::Conflict(r) => Some(r.reason_code()),
            Verdict::Event(Outcome::Processed) => None,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![Some("version_conflict"), Some("event_id_conflict"), None]
    );
    assert!(p
        .write
        .dead_letters
        .iter()
        .all(|d| !d.message.contains("ENC-")));
    assert_eq!(p.write.events.len(), 1, "only e3 is recorded");
    assert_eq!(p.outcomes, vec![(Outcome::Processed, 1)]);
}

proptest::proptest! {
    /// The fuzz target of the plan step: any bytes, damaged events and
    /// repeats in a batch. It never panics, and every message is
    /// accounted for exactly once: an event row, a duplicate, or a dead
    /// letter whose message is short and quotes no value.
    #[test]
    fn every_message_is_accounted_for_whatever_the_bytes(
        picks in proptest::collection::vec(
            (0usize..4, 0u32..4, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0usize..400),
            1..24,
        ),
    ) {
        let kinds = ["finalized", "amended", "voided", "finalized"];
        let values: Vec<Vec<u8>> = picks
            .iter()
            .map(|(kind, n, noise, cut)| {
                let ev = event(&format!("e{n}"), &format!("ENC-{}", n % 2), n + 1, kinds[*kind]);
                let mut b = bytes(&ev);
                match kind {
                    3 => noise.clone(),
                    2 if *cut < b.len() => {
                        b.truncate(*cut);
                        b
                    }
                    _ => b,
                }
            })
            .collect();
        let batch = messages(&values);
        let p = run(&batch, Ledger::default());
        let duplicates: u64 = p
            .outcomes
            .iter()
            .filter(|(o, _)| *o == Outcome::Duplicate)
            .map(|(_, n)| n)
            .sum();
        let accounted = p.write.events.len() + p.write.dead_letters.len() + duplicates as usize;
        proptest::prop_assert_eq!(accounted, batch.len());
        for d in &p.write.dead_letters {
            proptest::prop_assert!(d.message.len() <= 512, "{}", d.message);
            proptest::prop_assert!(!d.message.contains("PAT-1"), "{}", d.message);
        }
        let ids: std::collections::HashSet<&str> =
            p.write.outbox.iter().map(|o| o.claim_line_id.as_str()).collect();
        let new: std::collections::HashSet<&str> =
            p.write.new_lines.iter().map(|l| l.claim_line_id.as_str()).collect();
        proptest::prop_assert!(new.is_subset(&ids));
    }
}

#[test]
fn keys_are_the_sorted_unique_encounters_and_every_event() {
    let batch = messages(&[
        bytes(&event("e2", "B", 1, "finalized")),
        bytes(&event("e1", "A", 1, "finalized")),
        bytes(&event("e3", "B", 2, "amended")),
        b"[]".to_vec(),
    ]);
    let messages = decode_all(batch, crate::codec::MAX_EVENT_BYTES);
    let k = keys(&messages);
    assert_eq!(k.encounters, vec!["A", "B"]);
    assert_eq!(k.events, vec!["e2", "e1", "e3"]);
    assert_eq!(k.patient_years.len(), 1, "one patient, one year");
}
