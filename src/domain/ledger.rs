//! What an event does to an encounter's claim lines, given what was already
//! processed (contract section 1): a redelivered event does nothing, a
//! stale version is recorded and skipped, a newer version voids the lines
//! in force and adds its own, a void (of the current version or a newer
//! one) voids. Two events that claim the same version, or one `event_id`
//! reused for another encounter or version, are conflicts: dead-lettered,
//! never skipped silently. Pure: the store loads [`Ledger`] and writes the outcome.

use std::collections::HashMap;
use std::sync::Arc;

use super::claim::ClaimLine;
use super::encounter::Encounter;
use super::evaluate::evaluate;
use super::kx::{self, YearToDate};
use super::rulebook::RuleBook;
use super::values::EventType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Evaluated: its lines replace any earlier version's.
    Processed,
    /// A `voided` event: the lines in force were voided.
    Voided,
    /// Its version is not newer than one already processed: recorded, skipped.
    Stale,
    /// Its `event_id` was processed before: nothing changes.
    Duplicate,
    /// A `finalized`/`amended` event with the current version under
    /// another `event_id`: dead-lettered.
    VersionConflict,
    /// Its `event_id` was processed for another encounter or version:
    /// dead-lettered.
    EventIdConflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Voided => "voided",
            Outcome::Stale => "stale",
            Outcome::Duplicate => "duplicate",
            Outcome::VersionConflict => "version_conflict",
            Outcome::EventIdConflict => "event_id_conflict",
        }
    }

    /// A conflict: the event is dead-lettered with this outcome as reason.
    pub fn is_conflict(self) -> bool {
        matches!(self, Outcome::VersionConflict | Outcome::EventIdConflict)
    }
}

/// The state of the encounters a batch touches, as of before the batch.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Newest version processed per encounter.
    pub versions: HashMap<Arc<str>, u32>,
    /// Event ids already processed, with the encounter and version each
    /// carried.
    pub seen: HashMap<Arc<str>, (Arc<str>, u32)>,
    /// The lines in force (not void) per encounter.
    pub active: HashMap<Arc<str>, Vec<ClaimLine>>,
    /// Medicare year-to-date therapy amounts of the batch's patients.
    pub ytd: YearToDate,
}

/// The effect of one event.
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    /// `void` copies of the lines this event replaced, to publish first.
    pub voided: Vec<ClaimLine>,
    /// The event's own lines.
    pub lines: Vec<ClaimLine>,
}

impl Ledger {
    /// Applies one event and updates the ledger, so events of the same
    /// encounter later in the batch see its effect.
    pub fn apply(&mut self, enc: &Encounter, rules: &RuleBook) -> Decision {
        let nothing = |outcome| Decision {
            outcome,
            voided: Vec::new(),
            lines: Vec::new(),
        };
        if let Some((encounter_id, version)) = self.seen.get(&enc.event_id) {
            return nothing(
                if *encounter_id == enc.encounter_id && *version == enc.version {
                    Outcome::Duplicate
                } else {
                    Outcome::EventIdConflict
                },
            );
        }
        let current = self.versions.get(&enc.encounter_id).copied().unwrap_or(0);
        if enc.version < current {
            self.remember(enc);
            return nothing(Outcome::Stale);
        }
        if enc.version == current && enc.event_type != EventType::Voided {
            return nothing(Outcome::VersionConflict);
        }
        self.remember(enc);
        self.versions.insert(enc.encounter_id.clone(), enc.version);
        let replaced = self.active.remove(&enc.encounter_id).unwrap_or_default();
        for line in &replaced {
            self.ytd.remove(line);
        }
        let voided: Vec<ClaimLine> = replaced.iter().map(|l| l.voided(&enc.event_id)).collect();
        let (outcome, lines) = match enc.event_type {
            EventType::Voided => (Outcome::Voided, Vec::new()),
            EventType::Finalized | EventType::Amended => {
                let rules = rules.for_date(enc.date_of_service);
                let mut lines = evaluate(enc, rules);
                kx::apply(&mut lines, enc, rules, &mut self.ytd);
                self.active.insert(enc.encounter_id.clone(), lines.clone());
                (Outcome::Processed, lines)
            }
        };
        Decision {
            outcome,
            voided,
            lines,
        }
    }

    fn remember(&mut self, enc: &Encounter) {
        self.seen.insert(
            enc.event_id.clone(),
            (enc.encounter_id.clone(), enc.version),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;
    use crate::domain::Status;

    fn enc(event_id: &str, event_type: &str, version: u32) -> Encounter {
        let mut ev: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/hip-fracture.json")).unwrap();
        ev["event_id"] = event_id.into();
        ev["event_type"] = event_type.into();
        ev["encounter"]["version"] = version.into();
        decode(ev.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn finalize_amend_redeliver_stale_void() {
        let rules = &RuleBook::builtin();
        let mut ledger = Ledger::default();
        let d = ledger.apply(&enc("e1", "finalized", 1), rules);
        assert_eq!(
            (d.outcome, d.voided.len(), d.lines.len()),
            (Outcome::Processed, 0, 2)
        );

        let d = ledger.apply(&enc("e1", "finalized", 1), rules);
        assert_eq!(
            (d.outcome, d.voided.len(), d.lines.len()),
            (Outcome::Duplicate, 0, 0)
        );

        let d = ledger.apply(&enc("e2", "amended", 2), rules);
        assert_eq!(d.outcome, Outcome::Processed);
        let voided: Vec<_> = d
            .voided
            .iter()
            .map(|l| (l.claim_line_id.as_str(), l.status, &*l.event_id))
            .collect();
        assert_eq!(
            voided,
            vec![
                ("ENC-000101:1:1", Status::Void, "e2"),
                ("ENC-000101:1:2", Status::Void, "e2")
            ]
        );
        assert_eq!(d.lines[0].claim_line_id, "ENC-000101:2:1");

        let d = ledger.apply(&enc("e-late", "amended", 1), rules);
        assert_eq!(
            (d.outcome, d.voided.len(), d.lines.len()),
            (Outcome::Stale, 0, 0)
        );

        // The same version under another event id: a conflict, and so is
        // an event id reused for another version.
        let d = ledger.apply(&enc("e2-again", "amended", 2), rules);
        assert_eq!(
            (d.outcome, d.voided.len(), d.lines.len()),
            (Outcome::VersionConflict, 0, 0)
        );
        let d = ledger.apply(&enc("e2", "amended", 3), rules);
        assert_eq!(d.outcome, Outcome::EventIdConflict);
        assert_eq!(ledger.versions["ENC-000101"], 2, "conflicts change nothing");

        // A void of the current version voids it.
        let d = ledger.apply(&enc("e3", "voided", 2), rules);
        assert_eq!(d.outcome, Outcome::Voided);
        assert_eq!(
            d.voided
                .iter()
                .map(|l| l.claim_line_id.as_str())
                .collect::<Vec<_>>(),
            ["ENC-000101:2:1", "ENC-000101:2:2"]
        );
        assert!(d.lines.is_empty());
        assert!(!ledger.active.contains_key("ENC-000101"));
    }
}
