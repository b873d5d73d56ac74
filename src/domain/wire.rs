//! The wire format of contract section 1: the encounter event exactly as the
//! hospital integration pipeline sends it.
//!
//! These structs only describe shape (serde) and publish it (schemars, see
//! `schemas/`). Every rule that needs more than a type, such as the NPI check
//! digit or "at least one of minutes or start/end", lives in
//! [`crate::domain::encounter`], which turns a wire event into a domain
//! [`Encounter`](crate::domain::encounter::Encounter) or says why it cannot.
//!
//! Strings borrow from the message bytes where they can (`Cow`), so decoding
//! allocates only what the domain keeps.

use chrono::{DateTime, FixedOffset, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Payer<'a> {
    #[serde(borrow)]
    #[schemars(length(min = 1))]
    pub id: Cow<'a, str>,
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

/// `YYYY-MM-DD` dates, parsed directly: chrono's general parser costs more
/// than the rest of a service line.
pub mod date {
    use chrono::NaiveDate;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::borrow::Cow;

    pub fn parse(s: &str) -> Option<NaiveDate> {
        parse_bytes(s.as_bytes())
    }

    pub fn parse_bytes(b: &[u8]) -> Option<NaiveDate> {
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
    }

    fn invalid<E: Error>() -> E {
        E::custom("not a valid YYYY-MM-DD date")
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        parse(&s).ok_or_else(invalid)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match Option::<Cow<str>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(invalid),
        }
    }

    /// `YYYY-MM-DD` without the formatting machinery; years outside
    /// 0-9999 never reach here (the parser reads four digits).
    pub fn to_bytes(date: NaiveDate) -> [u8; 10] {
        use chrono::Datelike;
        let (y, m, d) = (date.year().clamp(0, 9999) as u32, date.month(), date.day());
        let digit = |n: u32| b'0' + (n % 10) as u8;
        [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(d / 10),
            digit(d),
        ]
    }

    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&to_bytes(*date)).unwrap_or_default())
    }
}

/// RFC 3339 timestamps: the usual shapes (`2026-03-02T14:00:00Z`, with
/// optional fraction and a `±HH:MM` offset) read directly, anything else
/// through chrono's RFC 3339 parser, which also words the error.
pub mod rfc3339 {
    use chrono::{DateTime, FixedOffset, NaiveDateTime, NaiveTime};
    use serde::{de::Error, Deserialize, Deserializer};
    use std::borrow::Cow;

    pub fn parse(s: &str) -> Result<DateTime<FixedOffset>, chrono::ParseError> {
        match fast(s.as_bytes()) {
            Some(t) => Ok(t),
            None => DateTime::parse_from_rfc3339(s),
        }
    }

    fn two(b: &[u8], i: usize) -> Option<u32> {
        let (h, l) = (*b.get(i)?, *b.get(i + 1)?);
        (h.is_ascii_digit() && l.is_ascii_digit())
            .then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
    }

    fn fast(b: &[u8]) -> Option<DateTime<FixedOffset>> {
        if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date = super::date::parse_bytes(&b[..10])?;
        let (h, m, sec) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
        let mut i = 19;
        let mut nanos = 0;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - start;
            if digits == 0 {
                return None;
            }
            nanos *= 10u32.pow(9u32.saturating_sub(digits as u32));
        }
        let offset = match &b[i..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let (oh, om) = (two(b, i + 1)?, two(b, i + 4)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let secs = (oh * 60 + om) as i32 * 60;
                if *sign == b'-' {
                    -secs
                } else {
                    secs
                }
            }
            _ => return None,
        };
        // Leap seconds (60) and the rest of the unusual go to chrono.
        let local = NaiveDateTime::new(date, NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?);
        let offset = FixedOffset::east_opt(offset)?;
        let utc = local.checked_sub_offset(offset)?;
        Some(DateTime::from_naive_utc_and_offset(utc, offset))
    }

    fn invalid<E: Error>(e: chrono::ParseError) -> E {
        E::custom(format!("not an RFC 3339 timestamp: {e}"))
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        parse(&s).map_err(invalid)
    }

    pub fn optional<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        match Option::<Cow<str>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).map_err(invalid),
        }
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;

        #[test]
        fn agrees_with_chrono_on_hand_picked_cases() {
            for s in [
                "2026-03-02T14:00:00Z",
                "2026-03-02t14:00:00z",
                "2026-03-02T14:00:00.5Z",
                "2026-03-02T14:00:00.123456789+05:30",
                "2026-03-02T14:00:00.1234567891-08:00",
                "2026-03-02T23:59:60Z",
                "2026-03-02 14:00:00Z",
                "2026-02-30T14:00:00Z",
                "2026-03-02T24:00:00Z",
                "2026-03-02T14:00:00+24:00",
                "2026-03-02T14:00:00.Z",
                "2026-03-02T14:00:00",
                "2026-03-02T14:00:00+0530",
                "0000-01-01T00:00:00Z",
            ] {
                assert_eq!(
                    super::parse(s).ok(),
                    chrono::DateTime::parse_from_rfc3339(s).ok(),
                    "{s}"
                );
            }
        }

        proptest! {
            #[test]
            fn agrees_with_chrono(
                y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61,
                s in 0u32..62, frac in proptest::option::of("[0-9]{0,12}"),
                off in prop_oneof![Just("Z".to_owned()), "[+-][0-2][0-9]:[0-6][0-9]"],
            ) {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}");
                prop_assert_eq!(super::parse(&text).ok(), chrono::DateTime::parse_from_rfc3339(&text).ok(), "{}", text);
            }
        }
    }
}
