//! The pure heart of a batch: the decoded messages, what Postgres already
//! holds about their encounters (a [`Ledger`]) and the rules, to the rows,
//! outbox entries and dead letters to write. No I/O: the batch loop loads
//! the ledger, calls [`plan`], and writes what it returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{decode_limited, EventError, JsonWriter};
use crate::domain::ledger::{Ledger, Outcome};
use crate::domain::{ClaimLine, Encounter, Rules, Status};
use crate::kafka::Incoming;
use crate::store::{BatchWrite, DeadLetterRow, EventRow, OutboxEntry, Source};

/// A decoded message of a batch.
pub enum Item {
    Good(Box<Encounter>),
    Bad(Rejection),
}

/// Why a message is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// It breaks the contract (decoding said so).
    #[error(transparent)]
    Event(#[from] EventError),
    /// It conflicts with what was processed (contract section 1).
    #[error("{message}")]
    Conflict {
        /// `version_conflict` or `event_id_conflict`.
        reason: &'static str,
        message: &'static str,
    },
    /// It decoded, but Postgres refused what it produced (a permanent
    /// error, isolated to this message). Only the SQLSTATE is kept: the
    /// server's message may quote the value.
    #[error("Postgres refused the event's rows (SQLSTATE {sqlstate})")]
    Storage { sqlstate: String },
}

impl Rejection {
    fn conflict(outcome: Outcome) -> Rejection {
        let message = match outcome {
            Outcome::VersionConflict => {
                "encounter.version: this version was already processed under another event_id"
            }
            _ => "event_id: already processed for another encounter or version",
        };
        Rejection::Conflict {
            reason: outcome.as_str(),
            message,
        }
    }

    /// The dead letter's `error.reason` header.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Rejection::Event(e) => e.reason_code(),
            Rejection::Conflict { reason, .. } => reason,
            Rejection::Storage { .. } => "rejected_by_storage",
        }
    }
}

/// Decodes every message of a batch, in order; a value over `max_bytes` is
/// `too_large`.
pub fn decode_all(batch: &[Incoming], max_bytes: usize) -> Vec<Item> {
    batch
        .iter()
        .map(|m| match decode_limited(&m.payload, max_bytes) {
            Ok(e) => Item::Good(Box::new(e)),
            Err(e) => Item::Bad(e.into()),
        })
        .collect()
}

/// The encounter ids (sorted, unique: the lock order) and event ids the
/// ledger must be loaded for.
pub fn keys(items: &[Item]) -> (Vec<&str>, Vec<&str>) {
    let good = || {
        items.iter().filter_map(|i| match i {
            Item::Good(e) => Some(e),
            Item::Bad(_) => None,
        })
    };
    let mut encounters: Vec<&str> = good().map(|e| &*e.encounter_id).collect();
    encounters.sort_unstable();
    encounters.dedup();
    (encounters, good().map(|e| &*e.event_id).collect())
}

/// Where claim lines go, by status.
pub struct Topics {
    pub output: Arc<str>,
    pub review: Arc<str>,
}

impl Topics {
    fn of(&self, status: Status) -> &Arc<str> {
        match status {
            Status::NeedsReview => &self.review,
            Status::Validated | Status::Void => &self.output,
        }
    }
}

/// What one batch writes, how many events had each outcome, and the
/// messages that turned out to conflict (index in the batch, why): they
/// are dead letters now.
pub struct Plan {
    pub write: BatchWrite,
    pub outcomes: Vec<(Outcome, u64)>,
    pub conflicts: Vec<(usize, Rejection)>,
}

/// Applies the batch's events in order to `ledger`: every good event gets
/// an `encounter_events` row (a duplicate gets none), its lines and the
/// voids of the lines it replaces go to the outbox (voids first), and every
/// bad message becomes a dead letter.
pub fn plan(
    batch: &[Incoming],
    items: &[Item],
    mut ledger: Ledger,
    rules: &Rules,
    topics: &Topics,
) -> Plan {
    let mut w = BatchWrite::default();
    let mut outcomes: BTreeMap<&'static str, (Outcome, u64)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (i, (m, item)) in batch.iter().zip(items).enumerate() {
        let source = Source {
            topic: m.topic.clone(),
            partition: m.partition,
            offset: m.offset,
        };
        let enc = match item {
            Item::Good(e) => e,
            Item::Bad(e) => {
                w.dead_letters.push(DeadLetterRow {
                    source,
                    reason: e.reason_code(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let d = ledger.apply(enc, rules);
        if d.outcome.is_conflict() {
            let why = Rejection::conflict(d.outcome);
            w.dead_letters.push(DeadLetterRow {
                source,
                reason: why.reason_code(),
                message: why.to_string(),
            });
            conflicts.push((i, why));
            continue;
        }
        outcomes
            .entry(d.outcome.as_str())
            .or_insert((d.outcome, 0))
            .1 += 1;
        if d.outcome == Outcome::Duplicate {
            continue;
        }
        w.events.push(EventRow {
            event_id: enc.event_id.clone(),
            encounter_id: enc.encounter_id.clone(),
            version: enc.version,
            event_type: enc.event_type.as_str(),
            outcome: d.outcome,
            lines_produced: d.lines.len(),
            lines_voided: d.voided.len(),
            occurred_at: enc.occurred_at.with_timezone(&chrono::Utc),
            source,
        });
        let mut json = JsonWriter::default();
        for line in d.voided.iter().chain(&d.lines) {
            w.outbox.push(outbox_entry(line, &mut json, topics));
        }
        for v in d.voided {
            w.voids.push((v.claim_line_id, v.event_id));
        }
        w.new_lines.extend(d.lines);
    }
    Plan {
        write: w,
        outcomes: outcomes.into_values().collect(),
        conflicts,
    }
}

fn outbox_entry(line: &ClaimLine, json: &mut JsonWriter, topics: &Topics) -> OutboxEntry {
    OutboxEntry {
        id: 0,
        claim_line_id: line.claim_line_id.clone(),
        status: line.status,
        topic: topics.of(line.status).clone(),
        key: line.encounter_id.clone(),
        payload: json.to_json(line),
    }
}

#[cfg(test)]
mod tests {
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
                payload: v.clone(),
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

    fn run(batch: &[Incoming], ledger: Ledger) -> Plan {
        let items = decode_all(batch, crate::codec::MAX_EVENT_BYTES);
        plan(batch, &items, ledger, Rules::builtin(), &topics())
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
        let conflicts: Vec<_> = p
            .conflicts
            .iter()
            .map(|(i, r)| (*i, r.reason_code()))
            .collect();
        assert_eq!(
            conflicts,
            vec![(0, "version_conflict"), (1, "event_id_conflict")]
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
        let items = decode_all(&batch, crate::codec::MAX_EVENT_BYTES);
        let (encounters, events) = keys(&items);
        assert_eq!(encounters, vec!["A", "B"]);
        assert_eq!(events, vec!["e2", "e1", "e3"]);
    }
}
