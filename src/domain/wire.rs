//! The wire format of contract section 1: the encounter event exactly as the
//! hospital integration pipeline sends it.
//!
//! These structs only describe shape (serde) and publish it (schemars, see
//! `schemas/`). Every rule that needs more than a type, such as the NPI check
//! digit or "at least one of minutes or start/end", lives in
//! [`crate::domain::encounter`], which turns a wire event into a domain
//! [`Encounter`](crate::domain::encounter::Encounter) or says why it cannot.

use chrono::{DateTime, FixedOffset, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One encounter event (contract section 1). Unknown fields are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "EncounterEvent")]
pub struct EncounterEvent {
    /// Unique per event; the idempotency key.
    #[schemars(length(min = 1, max = 128))]
    pub event_id: String,
    pub event_type: EventType,
    /// RFC 3339 timestamp.
    #[serde(deserialize_with = "rfc3339::required")]
    pub occurred_at: DateTime<FixedOffset>,
    pub encounter: Encounter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Finalized,
    Amended,
    Voided,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Finalized => "finalized",
            EventType::Amended => "amended",
            EventType::Voided => "voided",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Encounter {
    #[schemars(length(min = 1, max = 64))]
    pub encounter_id: String,
    /// Grows with each amendment.
    #[schemars(range(min = 1))]
    pub version: u32,
    pub date_of_service: NaiveDate,
    pub patient: Patient,
    pub provider: Provider,
    pub payer: Payer,
    /// ICD-10-CM codes; medical necessity.
    #[schemars(inner(pattern(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")))]
    pub diagnoses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_of_care: Option<PlanOfCare>,
    /// May be empty only for `voided` events.
    pub services: Vec<Service>,
}

/// PHI: never logged, never a metric label.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct Patient {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patient(<redacted>)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Provider {
    /// 10 digits whose Luhn check digit (with prefix 80840) holds.
    #[schemars(pattern(r"^[0-9]{10}$"))]
    pub npi: String,
    pub discipline: Discipline,
    pub credential: Credential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Discipline {
    PT,
    OT,
    SLP,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Credential {
    Therapist,
    Assistant,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Payer {
    #[schemars(length(min = 1))]
    pub id: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Medicare,
    Medicaid,
    Commercial,
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanOfCare {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub certified_from: NaiveDate,
    pub certified_through: NaiveDate,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    /// Unique within the encounter.
    #[schemars(length(min = 1))]
    pub line_id: String,
    /// 5-character CPT/HCPCS code.
    #[schemars(pattern(r"^[0-9A-Z]{5}$"))]
    pub code: String,
    /// Documented start time (RFC 3339).
    #[serde(
        default,
        deserialize_with = "rfc3339::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<DateTime<FixedOffset>>,
    /// Documented stop time (RFC 3339).
    #[serde(
        default,
        deserialize_with = "rfc3339::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub minutes: Option<u32>,
    /// Direct one-on-one contact.
    #[serde(default = "default_true")]
    pub one_on_one: bool,
    /// More than 1 means group therapy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<u32>,
    /// Modifiers as documented by the clinician (e.g. `59`, `XU`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(r"^[0-9A-Z]{2}$")))]
    pub modifiers: Vec<String>,
    /// Minutes furnished by a PTA/OTA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub assistant_minutes: Option<u32>,
    /// The functional activities documented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activities: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// RFC 3339 timestamps through chrono's dedicated parser, which is several
/// times faster than the general one its serde support uses.
mod rfc3339 {
    use chrono::{DateTime, FixedOffset};
    use serde::{de::Error, Deserialize, Deserializer};
    use std::borrow::Cow;

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map_err(|e| D::Error::custom(format!("not an RFC 3339 timestamp: {e}")))
    }

    pub fn optional<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        match Option::<Cow<str>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("not an RFC 3339 timestamp: {e}"))),
        }
    }
}
