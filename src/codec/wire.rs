//! The wire format of contract section 1: the encounter event exactly as the
//! hospital integration pipeline sends it.
//!
//! These structs only describe shape (serde) and publish it (schemars, see
//! `schemas/`). Every rule that needs more than a type, such as the NPI check
//! digit or "at least one of minutes or start/end", lives in
//! `decode`, which turns a wire event into a domain `Encounter` or says
//! why it cannot.
//!
//! Strings borrow from the message bytes where they can (`Cow`), so decoding
//! allocates only what the domain keeps.

use chrono::{DateTime, FixedOffset, NaiveDate};
use schemars::JsonSchema;
use serde::Deserialize;
use std::borrow::Cow;

use crate::dates::{date, rfc3339};
pub use crate::domain::{Credential, Discipline, EventType, Plan};

/// One encounter event (contract section 1). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(title = "EncounterEvent")]
pub struct EncounterEvent<'a> {
    /// Unique per event; the idempotency key.
    #[serde(borrow)]
    #[schemars(length(min = 1, max = 128))]
    pub event_id: Cow<'a, str>,
    pub event_type: EventType,
    /// RFC 3339 timestamp.
    #[serde(deserialize_with = "rfc3339::required")]
    pub occurred_at: DateTime<FixedOffset>,
    #[serde(borrow)]
    pub encounter: Encounter<'a>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Encounter<'a> {
    #[serde(borrow)]
    #[schemars(length(min = 1, max = 64))]
    pub encounter_id: Cow<'a, str>,
    /// Grows with each amendment.
    #[schemars(range(min = 1))]
    pub version: u32,
    #[serde(deserialize_with = "date::required")]
    pub date_of_service: NaiveDate,
    #[serde(borrow)]
    pub patient: Patient<'a>,
    #[serde(borrow)]
    pub provider: Provider<'a>,
    #[serde(borrow)]
    pub payer: Payer<'a>,
    /// ICD-10-CM codes; medical necessity.
    #[serde(borrow)]
    #[schemars(inner(pattern(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")))]
    pub diagnoses: Vec<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub plan_of_care: Option<PlanOfCare<'a>>,
    /// May be empty only for `voided` events.
    #[serde(borrow)]
    pub services: Vec<Service<'a>>,
}

/// PHI: never logged, never a metric label.
#[derive(Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Patient<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(
        default,
        deserialize_with = "date::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub birth_date: Option<NaiveDate>,
}

impl std::fmt::Debug for Patient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patient(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Provider<'a> {
    /// 10 digits whose Luhn check digit (with prefix 80840) holds.
    #[serde(borrow)]
    #[schemars(pattern(r"^[0-9]{10}$"))]
    pub npi: Cow<'a, str>,
    pub discipline: Discipline,
    pub credential: Credential,
    /// Optional: the Medicare payment locality the service was furnished
    /// in, as the MAC's contractor number and the locality number of CMS's
    /// GPCI file (`01112-54`). Where given (or set for the NPI by the
    /// service's `CLAIMLINE_PROVIDER_LOCALITIES`) and that year's GPCIs are
    /// loaded, Medicare's expected payment is the locality's; otherwise
    /// the national amount.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]{5}-[0-9]{2}$"))]
    pub medicare_locality: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Payer<'a> {
    #[serde(borrow)]
    #[schemars(length(min = 1))]
    pub id: Cow<'a, str>,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct PlanOfCare<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "date::required")]
    pub certified_from: NaiveDate,
    #[serde(deserialize_with = "date::required")]
    pub certified_through: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Service<'a> {
    /// Unique within the encounter.
    #[serde(borrow)]
    #[schemars(length(min = 1))]
    pub line_id: Cow<'a, str>,
    /// 5-character CPT/HCPCS code.
    #[serde(borrow)]
    #[schemars(pattern(r"^[0-9A-Z]{5}$"))]
    pub code: Cow<'a, str>,
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
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(r"^[0-9A-Z]{2}$")))]
    pub modifiers: Vec<Cow<'a, str>>,
    /// Minutes furnished by a PTA/OTA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub assistant_minutes: Option<u32>,
    // The rules only ask whether there are any: counted, not kept.
    /// The functional activities documented.
    #[serde(
        default,
        deserialize_with = "count_strings",
        skip_serializing_if = "is_zero"
    )]
    #[schemars(with = "Vec<String>")]
    pub activities: usize,
}

fn default_true() -> bool {
    true
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Counts the strings of a JSON array without keeping them.
fn count_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of strings")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while seq.next_element::<Cow<'de, str>>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    d.deserialize_seq(Count)
}
