//! The encounter as the rules see it: every field parsed and checked
//! (the codec, beside this module, turns bytes into one).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use std::sync::Arc;

use super::values::{
    Code, Credential, Diagnosis, Discipline, EventType, Modifier, Npi, PatientId, Plan,
};

/// The largest minute count the contract allows for one service.
pub const MAX_MINUTES: u32 = 1440;

/// Documented start and stop times of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    pub fn minutes(&self) -> u32 {
        u32::try_from((self.end - self.start).num_seconds() / 60).unwrap_or(u32::MAX)
    }

    /// Whole minutes both intervals cover.
    pub fn overlap_minutes(&self, other: &Interval) -> u32 {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        if end <= start {
            0
        } else {
            Interval { start, end }.minutes().max(1)
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanOfCare {
    pub certified_from: NaiveDate,
    pub certified_through: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub line_id: Box<str>,
    pub code: Code,
    /// The minutes that count: from the documented times when present.
    pub minutes: u32,
    /// The minutes as the clinician typed them, if any.
    pub documented_minutes: Option<u32>,
    pub interval: Option<Interval>,
    pub one_on_one: bool,
    pub group_size: Option<u32>,
    pub modifiers: Vec<Modifier>,
    /// Minutes furnished by an assistant, never more than `minutes`.
    pub assistant_minutes: u32,
    /// How many functional activities were documented.
    pub activities: usize,
    /// The day the documented times fall on, in the timestamps' own UTC
    /// offset; a service spanning midnight is on the day holding most of
    /// its minutes (on a tie, the start's). `None` without both times.
    pub furnished_on: Option<chrono::NaiveDate>,
}

impl Service {
    /// Minutes and times disagree by more than one minute.
    pub fn minutes_mismatch(&self) -> bool {
        matches!((self.documented_minutes, self.interval), (Some(m), Some(_)) if m.abs_diff(self.minutes) > 1)
    }
}

#[derive(Debug, Clone)]
pub struct Encounter {
    pub event_id: Arc<str>,
    pub event_type: EventType,
    pub occurred_at: DateTime<FixedOffset>,
    pub encounter_id: Arc<str>,
    pub version: u32,
    pub date_of_service: NaiveDate,
    pub patient_id: PatientId,
    pub npi: Npi,
    /// The Medicare payment locality the event names, if any.
    pub locality: Option<super::locality::Locality>,
    pub discipline: Discipline,
    pub credential: Credential,
    pub payer_id: Arc<str>,
    pub plan: Plan,
    pub diagnoses: Arc<[Diagnosis]>,
    pub plan_of_care: Option<PlanOfCare>,
    pub services: Vec<Service>,
}
