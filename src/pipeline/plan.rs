//! The pure heart of a batch: the decoded messages, what Postgres already
//! holds about their encounters (a [`Ledger`]) and the rules, to the rows,
//! outbox entries and dead letters to write. No I/O: the batch loop loads
//! the ledger, calls [`plan`], and writes what it returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{decode_limited, EventError, JsonWriter};
use crate::domain::ledger::{Ledger, Outcome};
use crate::domain::{ClaimLine, Encounter, RuleBook, Status};
use crate::kafka::Incoming;
use crate::store::{BatchWrite, DeadLetterRow, EventRow, Keys, OutboxEntry, PayloadRow, Source};

/// One message of a batch and what it is: the record the batch carries
/// from decoding to the write (then `Settling`, in dead_letter.rs).
pub struct Message {
    pub incoming: Incoming,
    pub item: Item,
}

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
pub fn decode_all(batch: Vec<Incoming>, max_bytes: usize) -> Vec<Message> {
    batch
        .into_iter()
        .map(|incoming| {
            let item = match decode_limited(&incoming.payload, max_bytes) {
                Ok(e) => Item::Good(Box::new(e)),
                Err(e) => Item::Bad(e.into()),
            };
            Message { incoming, item }
        })
        .collect()
}

/// What the ledger must be loaded for.
pub fn keys(messages: &[Message]) -> Keys<'_> {
    use chrono::Datelike;
    let good = || {
        messages.iter().filter_map(|m| match &m.item {
            Item::Good(e) => Some(e),
            Item::Bad(_) => None,
        })
    };
    let mut encounters: Vec<&str> = good().map(|e| &*e.encounter_id).collect();
    encounters.sort_unstable();
    encounters.dedup();
    let mut patient_years: Vec<(&str, i32)> = good()
        .map(|e| (e.patient_id.as_str(), e.date_of_service.year()))
        .collect();
    patient_years.sort_unstable();
    patient_years.dedup();
    let mut days: Vec<(&str, &str, &str, chrono::NaiveDate, &str)> = good()
        .map(|e| {
            (
                e.patient_id.as_str(),
                e.npi.as_str(),
                &*e.payer_id,
                e.date_of_service,
                &*e.encounter_id,
            )
        })
        .collect();
    days.sort_unstable();
    days.dedup();
    Keys {
        encounters,
        events: good().map(|e| &*e.event_id).collect(),
        patient_years,
        days,
    }
}

/// Where claim lines go, by status.
pub struct Topics {
    pub output: Arc<str>,
    pub review: Arc<str>,
}

impl Topics {
    /// A line's topic; a `void` goes where the line it cancels went
    /// (contract section 2): the review topic when that line was held, which
    /// its flags (repeated on the void) say.
    fn of(&self, line: &ClaimLine) -> &Arc<str> {
        let held = match line.status {
            Status::NeedsReview => true,
            Status::Validated => false,
            Status::Void => line
                .flags
                .iter()
                .any(|f| f.severity == crate::domain::Severity::Error),
        };
        if held {
            &self.review
        } else {
            &self.output
        }
    }
}

/// What one batch writes, how many events had each outcome, and one
/// verdict per message planned, in order. A message that turned out to
/// conflict is a dead letter once the write holds (the batch loop marks its
/// [`Message`] so; a write that failed leaves it as it was).
pub struct Plan {
    pub write: BatchWrite,
    pub outcomes: Vec<(Outcome, u64)>,
    pub verdicts: Vec<Verdict>,
}

/// What the plan made of one message.
#[derive(Debug)]
pub enum Verdict {
    /// An event, with what it did.
    Event(Outcome),
    /// Bad before planning: its dead letter is in the write.
    Bad,
    /// It conflicts with what was processed: a dead letter, for this reason.
    Conflict(Rejection),
}

/// Applies the batch's events in order to `ledger` (which then holds their
/// effect: `claimline evaluate` keeps one over its whole input): every good event gets
/// an `encounter_events` row (a duplicate gets none), its lines and the
/// voids of the lines it replaces go to the outbox (voids first), and every
/// bad message becomes a dead letter.
/// Where a message came from, as the store records it.
pub(crate) fn source(m: &Incoming) -> Source {
    Source {
        topic: m.topic.clone(),
        partition: m.partition,
        offset: m.offset,
    }
}

pub fn plan(messages: &[Message], ledger: &mut Ledger, rules: &RuleBook, topics: &Topics) -> Plan {
    let mut w = BatchWrite::default();
    let mut verdicts = Vec::with_capacity(messages.len());
    for Message { incoming: m, item } in messages {
        let source = source(m);
        let enc = match item {
            Item::Good(e) => e,
            Item::Bad(e) => {
                w.dead_letters.push(DeadLetterRow {
                    source,
                    reason: e.reason_code(),
                    message: e.to_string(),
                });
                verdicts.push(Verdict::Bad);
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
            verdicts.push(Verdict::Conflict(why));
            continue;
        }
        verdicts.push(Verdict::Event(d.outcome));
        if d.outcome == Outcome::Duplicate {
            continue;
        }
        if matches!(d.outcome, Outcome::Processed | Outcome::Voided) {
            w.payloads.push(PayloadRow {
                event_id: enc.event_id.clone(),
                encounter_id: enc.encounter_id.clone(),
                version: enc.version,
                date_of_service: enc.date_of_service,
                payload: m.payload.clone(),
            });
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
    // How many events had each outcome, from the verdicts.
    let mut outcomes: BTreeMap<&'static str, (Outcome, u64)> = BTreeMap::new();
    for v in &verdicts {
        if let Verdict::Event(o) = v {
            outcomes.entry(o.as_str()).or_insert((*o, 0)).1 += 1;
        }
    }
    Plan {
        write: w,
        outcomes: outcomes.into_values().collect(),
        verdicts,
    }
}

pub(crate) fn outbox_entry(
    line: &ClaimLine,
    json: &mut JsonWriter,
    topics: &Topics,
) -> OutboxEntry {
    OutboxEntry {
        id: 0,
        claim_line_id: line.claim_line_id.clone(),
        status: line.status,
        topic: topics.of(line).clone(),
        key: line.encounter_id.clone(),
        payload: json.to_json(line),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
