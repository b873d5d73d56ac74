//! What an event does to an encounter's claim lines, given what was already
//! processed (contract section 1): a redelivered event does nothing, a
//! stale version is recorded and skipped, a newer version voids the lines
//! in force and adds its own, a void (of the current version or a newer
//! one) voids. Two events that claim the same version, or one `event_id`
//! reused for another encounter or version, are conflicts: dead-lettered,
//! never skipped silently. Pure: the store loads [`Ledger`] and writes the outcome.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use super::claim::{ClaimLine, Flag, FlagCode, Severity, Status};
use super::encounter::Encounter;
use super::evaluate::{co_treatment, evaluate, evaluate_day};
use super::kx::{self, YearToDate};
use super::rulebook::RuleBook;
use super::rules::Rules;
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

/// The most encounters of one day re-allocated together.
pub const MAX_DAY_ENCOUNTERS: usize = 12;

/// The encounters judged together: one patient, one payer, one date of
/// service. Under each provider (NPI) they are that provider's day for the
/// units (contract section 3); across providers, co-treatment
/// (`CO_TREATMENT`). No `Debug`: it holds a patient id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DayKey {
    pub patient_id: Arc<str>,
    pub payer_id: Arc<str>,
    pub date: NaiveDate,
}

impl DayKey {
    pub fn of_encounter(enc: &Encounter) -> DayKey {
        DayKey {
            patient_id: enc.patient_id.shared(),
            payer_id: enc.payer_id.clone(),
            date: enc.date_of_service,
        }
    }

    pub fn of_line(line: &ClaimLine) -> DayKey {
        DayKey {
            patient_id: line.patient_id.clone(),
            payer_id: line.payer_id.clone(),
            date: line.date_of_service,
        }
    }
}

/// The state of the encounters a batch touches, as of before the batch.
#[derive(Default)]
pub struct Ledger {
    /// Newest version processed per encounter.
    pub versions: HashMap<Arc<str>, u32>,
    /// Event ids already processed, with the encounter and version each
    /// carried.
    pub seen: HashMap<Arc<str>, (Arc<str>, u32)>,
    /// The lines in force (not void) per encounter: the batch's encounters
    /// and the others of their days.
    pub active: HashMap<Arc<str>, Vec<ClaimLine>>,
    /// The encounter in force (its newest processed event) where its day
    /// may need it re-evaluated: from the stored payloads, then as the
    /// batch processes events. An encounter with lines but none here (its
    /// payload predates their storage) keeps its lines as they are.
    pub encounters: HashMap<Arc<str>, Arc<Encounter>>,
    /// Medicare year-to-date therapy amounts of the batch's patients.
    pub ytd: YearToDate,
    /// The highest `line_no` each encounter in `encounters` used for its
    /// version, voided lines included: a reissue numbers above it.
    pub max_line_no: HashMap<Arc<str>, u32>,
    /// The encounters with lines in force per day: built from `active` on
    /// first use, then kept up to date.
    days: Option<HashMap<DayKey, Vec<Arc<str>>>>,
}

/// The effect of one event.
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    /// `void` copies of the lines this event replaced (its encounter's, and
    /// those of its day's other encounters whose units it changed), to
    /// publish first.
    pub voided: Vec<ClaimLine>,
    /// The event's own lines, then the day's reissued lines.
    pub lines: Vec<ClaimLine>,
}

impl Ledger {
    /// Applies one event and updates the ledger, so events of the same
    /// encounter (or day) later in the batch see its effect.
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
        self.index_days();
        let replaced = self.active.remove(&enc.encounter_id).unwrap_or_default();
        let old_day = replaced.first().map(DayKey::of_line);
        if let Some(old) = &old_day {
            self.day_members_mut(old)
                .retain(|id| *id != enc.encounter_id);
        }
        for line in &replaced {
            self.ytd.remove(line);
        }
        let mut d = Decision {
            outcome: Outcome::Processed,
            voided: replaced.iter().map(|l| l.voided(&enc.event_id)).collect(),
            lines: Vec::new(),
        };
        self.encounters.remove(&enc.encounter_id);
        // A new version numbers its lines from 1.
        self.max_line_no.remove(&enc.encounter_id);
        let new_day = match enc.event_type {
            EventType::Voided => {
                d.outcome = Outcome::Voided;
                None
            }
            EventType::Finalized | EventType::Amended => {
                let day = DayKey::of_encounter(enc);
                let rules = rules.for_date(enc.date_of_service);
                let enc = Arc::new(enc.clone());
                self.encounters
                    .insert(enc.encounter_id.clone(), enc.clone());
                let (mut lines, others) = self.evaluate_day(&day, Some(&enc), rules);
                kx::apply(&mut lines, &enc, rules, &mut self.ytd);
                if !lines.is_empty() {
                    self.day_members_mut(&day).push(enc.encounter_id.clone());
                }
                self.active.insert(enc.encounter_id.clone(), lines.clone());
                d.lines = lines;
                self.reissue(others, &enc.event_id, rules, &mut d);
                Some(day)
            }
        };
        // The day the encounter left (voided, or moved to another date):
        // its other encounters may earn more units now.
        if let Some(old) = old_day.filter(|o| Some(o) != new_day.as_ref()) {
            let rules = rules.for_date(old.date);
            let (_, others) = self.evaluate_day(&old, None, rules);
            self.reissue(others, &enc.event_id, rules, &mut d);
        }
        d
    }

    /// Re-evaluates the day of `encounter_id` under `rules` and reissues the
    /// lines that change (voids carry `voided_by`): a reprocess. Returns
    /// nothing when no line changes or the encounter is not in force.
    pub fn reevaluate(
        &mut self,
        encounter_id: &str,
        voided_by: &Arc<str>,
        rules: &RuleBook,
    ) -> Decision {
        let mut d = Decision {
            outcome: Outcome::Processed,
            voided: Vec::new(),
            lines: Vec::new(),
        };
        let Some(enc) = self.encounters.get(encounter_id).cloned() else {
            return d;
        };
        self.index_days();
        let rules = rules.for_date(enc.date_of_service);
        let (lines, mut others) = self.evaluate_day(&DayKey::of_encounter(&enc), None, rules);
        debug_assert!(lines.is_empty());
        others.sort_by_key(|(e, _)| e.encounter_id != enc.encounter_id);
        self.reissue(others, voided_by, rules, &mut d);
        d
    }

    /// The lines of the day's encounters in force: `new` (not yet in
    /// `active`) gets its own; the others, with the lines the day gives
    /// them now, for [`Self::reissue`].
    #[allow(clippy::type_complexity)]
    fn evaluate_day(
        &self,
        day: &DayKey,
        new: Option<&Arc<Encounter>>,
        rules: &Rules,
    ) -> (Vec<ClaimLine>, Vec<(Arc<Encounter>, Vec<ClaimLine>)>) {
        let mut members: Vec<&Arc<Encounter>> = self
            .days
            .as_ref()
            .and_then(|days| days.get(day))
            .into_iter()
            .flatten()
            .filter(|id| new.is_none_or(|n| n.encounter_id != **id))
            .filter_map(|id| self.encounters.get(id))
            .chain(new)
            .collect();
        if members.len() == 1 && new.is_some() {
            return (evaluate(members[0], rules), Vec::new());
        }
        if members.len() > MAX_DAY_ENCOUNTERS {
            // Far more visits than a day of therapy has: a broken or
            // hostile sender. Re-allocating the day on each would cost the
            // square of its size; this encounter is counted alone, for review.
            let Some(n) = new else {
                return (Vec::new(), Vec::new());
            };
            let mut lines = evaluate(n, rules);
            for l in &mut lines {
                l.flags.push(Flag {
                    code: FlagCode::DayNotPooled,
                    severity: Severity::Error,
                    message: format!("this patient has more than {MAX_DAY_ENCOUNTERS} encounters with this payer on this date of service; this encounter's units were counted alone, not on the day's total timed minutes, and it was not compared with the other providers' encounters. Review the day's claims."),
                    related_codes: Vec::new(),
                });
                l.status = Status::NeedsReview;
            }
            return (lines, Vec::new());
        }
        // A fixed order (the earlier visit first), whatever the order the
        // events arrived in, so a reprocess finds the same allocation.
        members.sort_by(|a, b| {
            (first_start(a), &a.encounter_id).cmp(&(first_start(b), &b.encounter_id))
        });
        let encs: Vec<&Encounter> = members.iter().map(|e| &***e).collect();
        // Each provider's day for the units, then co-treatment across them.
        let mut all = vec![Vec::new(); encs.len()];
        let mut npis = Vec::with_capacity(encs.len());
        for e in &encs {
            if !npis.contains(&e.npi) {
                npis.push(e.npi);
            }
        }
        for npi in npis {
            let at: Vec<usize> = (0..encs.len()).filter(|&i| encs[i].npi == npi).collect();
            let day: Vec<&Encounter> = at.iter().map(|&i| encs[i]).collect();
            for (i, lines) in at.into_iter().zip(evaluate_day(&day, rules)) {
                all[i] = lines;
            }
        }
        co_treatment(&encs, &mut all);
        let mut own = Vec::new();
        let mut others = Vec::new();
        for (e, lines) in members.iter().zip(all) {
            if new.is_some_and(|n| Arc::ptr_eq(n, e)) {
                own = lines;
            } else {
                others.push(((*e).clone(), lines));
            }
        }
        (own, others)
    }

    /// For each encounter whose lines the day changes: voids its lines in
    /// force and issues the new ones with line numbers above every one its
    /// version used (contract section 2).
    fn reissue(
        &mut self,
        others: Vec<(Arc<Encounter>, Vec<ClaimLine>)>,
        voided_by: &Arc<str>,
        rules: &Rules,
        d: &mut Decision,
    ) {
        for (enc, lines) in others {
            let current = self.active.remove(&enc.encounter_id).unwrap_or_default();
            // Each new line that bills what a line in force bills keeps
            // that line; the others are voided and the rest issued anew.
            let mut kept = vec![false; current.len()];
            let mut fresh = Vec::new();
            for line in lines {
                match (0..current.len()).find(|&i| !kept[i] && same_line(&current[i], &line)) {
                    Some(i) => kept[i] = true,
                    None => fresh.push(line),
                }
            }
            if fresh.is_empty() && kept.iter().all(|k| *k) {
                self.active.insert(enc.encounter_id.clone(), current);
                continue;
            }
            // Above every number the version used, voided lines included.
            let used = current
                .iter()
                .filter(|l| l.encounter_version == enc.version)
                .map(|l| l.line_no)
                .chain(self.max_line_no.get(&enc.encounter_id).copied())
                .max()
                .unwrap_or(0);
            let mut in_force = Vec::with_capacity(current.len());
            for (line, keep) in current.into_iter().zip(kept) {
                if keep {
                    in_force.push(line);
                } else {
                    self.ytd.remove(&line);
                    d.voided.push(line.voided(voided_by));
                }
            }
            for (i, line) in fresh.iter_mut().enumerate() {
                line.line_no = used + 1 + i as u32;
                line.claim_line_id = ClaimLine::id(&enc.encounter_id, enc.version, line.line_no);
            }
            self.max_line_no
                .insert(enc.encounter_id.clone(), used + fresh.len() as u32);
            kx::apply(&mut fresh, &enc, rules, &mut self.ytd);
            d.lines.extend(fresh.iter().cloned());
            in_force.extend(fresh);
            self.active.insert(enc.encounter_id.clone(), in_force);
        }
    }

    /// Indexes the lines in force by day, once (`active` is loaded first).
    fn index_days(&mut self) {
        if self.days.is_some() {
            return;
        }
        let mut days: HashMap<DayKey, Vec<Arc<str>>> = HashMap::new();
        for (id, lines) in &self.active {
            if let Some(l) = lines.first() {
                days.entry(DayKey::of_line(l)).or_default().push(id.clone());
            }
        }
        self.days = Some(days);
    }

    fn day_members_mut(&mut self, day: &DayKey) -> &mut Vec<Arc<str>> {
        self.days
            .get_or_insert_with(HashMap::new)
            .entry(day.clone())
            .or_default()
    }

    fn remember(&mut self, enc: &Encounter) {
        self.seen.insert(
            enc.event_id.clone(),
            (enc.encounter_id.clone(), enc.version),
        );
    }
}

/// The earliest documented start of an encounter's services.
fn first_start(enc: &Encounter) -> Option<chrono::DateTime<chrono::Utc>> {
    enc.services
        .iter()
        .filter_map(|s| s.interval)
        .map(|i| i.start)
        .min()
}

/// Whether two lines bill the same: ids, event, the rule set's name and the
/// KX marks (which depend on the order of processing, not on the day)
/// aside.
fn same_line(a: &ClaimLine, b: &ClaimLine) -> bool {
    let flags = |l: &ClaimLine| -> Vec<Flag> {
        l.flags
            .iter()
            .filter(|f| !kx::is_kx_flag(f))
            .cloned()
            .collect()
    };
    a.code == b.code
        && a.units == b.units
        && a.minutes == b.minutes
        && a.status == b.status
        && a.expected_payment_cents == b.expected_payment_cents
        && kx::same_modifiers(&a.modifiers, &b.modifiers)
        && flags(a) == flags(b)
}
