//! Bytes to a domain [`Encounter`], or an [`EventError`] that names the
//! field and the reason (never the value: it may be PHI). Parse, don't
//! validate: nothing past this module checks the contract's table again.

use chrono::{NaiveDate, Utc};
use std::sync::Arc;

use super::wire;
use crate::domain::encounter::{Encounter, Interval, PlanOfCare, Service, MAX_MINUTES};
use crate::domain::locality::Locality;
use crate::domain::values::{Code, Credential, Diagnosis, EventType, Modifier, Npi, PatientId};

/// The UTF-8 byte-order mark some Windows tools and integration engines
/// write at the start of a file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The contract's size limit for one event value (section 1).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Why an event is bad. `reason_code` is the stable code of the contract's
/// `error.reason` dead-letter header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is {size} bytes, over the {max} byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{field}: {reason}")]
    Schema { field: String, reason: String },
}

impl EventError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            EventError::TooLarge { .. } => "too_large",
            EventError::InvalidJson(_) => "invalid_json",
            EventError::Schema { .. } => "schema_violation",
        }
    }

    fn schema(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EventError::Schema {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Bytes from the wire to a domain encounter. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Encounter, EventError> {
    decode_limited(bytes, MAX_EVENT_BYTES)
}

/// [`decode`] with another size limit (CLAIMLINE_MAX_MESSAGE_BYTES): a value
/// over `max` bytes is `too_large`, unread.
pub fn decode_limited(bytes: &[u8], max: usize) -> Result<Encounter, EventError> {
    if bytes.len() > max {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    if bytes.starts_with(BOM) {
        // Contract section 6: a file may start with one, a message may not.
        return Err(EventError::InvalidJson(
            "the value starts with a UTF-8 byte-order mark (EF BB BF); send the JSON without it"
                .to_owned(),
        ));
    }
    // The reader for the usual shape (it checks UTF-8 as it goes); if it
    // declines, UTF-8 checked for the whole message, then serde_json
    // without path tracking; if that fails, serde_json again with it, so
    // the error names the field.
    let event = match super::reader::read(bytes) {
        Some(event) => event,
        None => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| EventError::InvalidJson(format!("not UTF-8: {e}")))?;
            match serde_json::from_str::<wire::EncounterEvent>(text) {
                Ok(event) => event,
                Err(_) => return Err(explain_decode_error(bytes)),
            }
        }
    };
    Encounter::try_from(event)
}

fn explain_decode_error(bytes: &[u8]) -> EventError {
    // serde takes a JSON array for a struct (field by field): an array or a
    // scalar that is valid JSON is not an event at all.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return EventError::schema(".", "an event must be a JSON object");
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<wire::EncounterEvent, _> = serde_path_to_error::deserialize(&mut de);
    let err = match result {
        Ok(_) => match de.end() {
            Ok(()) => return EventError::InvalidJson("undecodable event".to_owned()),
            Err(e) => return EventError::InvalidJson(e.to_string()),
        },
        Err(err) => err,
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let message = super::explain::explain(&path, inner.to_string());
            EventError::schema(path, message)
        }
        _ => EventError::InvalidJson(inner.to_string()),
    }
}

/// The contract's limits (section 1): what Postgres or the broker would
/// refuse, or what would let one event cost unbounded work, is refused here.
pub const MAX_SERVICES: usize = 100;
pub const MAX_DIAGNOSES: usize = 100;
pub const MAX_TEXT_CHARS: usize = 128;
/// Not in the contract's table, but bounded like everything else.
pub const MAX_MODIFIERS: usize = 100;
/// The earliest and latest date or timestamp the contract accepts.
pub fn date_range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default(),
    )
}

/// A string of `min`-`max` characters with no control character (NUL
/// included): Postgres refuses NUL in text, and control characters in ids
/// break every tool downstream.
/// A field's name for an error: a literal, or a closure that formats it
/// only when there is an error (service fields are checked for every
/// service of every event).
trait FieldName {
    fn name(self) -> String;
}

impl FieldName for &str {
    fn name(self) -> String {
        self.to_owned()
    }
}

impl<F: FnOnce() -> String> FieldName for F {
    fn name(self) -> String {
        self()
    }
}

fn check_text(field: impl FieldName, s: &str, min: usize, max: usize) -> Result<(), EventError> {
    // Ids are almost always printable ASCII: one pass over the bytes then.
    let printable_ascii = s.bytes().all(|b| (0x20..0x7f).contains(&b));
    let n = if printable_ascii {
        s.len()
    } else {
        s.chars().count()
    };
    if n < min || n > max {
        return Err(EventError::schema(
            field.name(),
            format!("must be {min}-{max} characters, got {n}"),
        ));
    }
    if !printable_ascii && s.chars().any(char::is_control) {
        return Err(EventError::schema(
            field.name(),
            "must not contain control characters (NUL included)",
        ));
    }
    Ok(())
}

fn check_date(field: impl FieldName, date: NaiveDate) -> Result<(), EventError> {
    let (first, last) = date_range();
    if date < first || date > last {
        return Err(EventError::schema(
            field.name(),
            "must lie between 1900-01-01 and 2100-12-31",
        ));
    }
    Ok(())
}

fn check_count(field: impl FieldName, n: usize, max: usize) -> Result<(), EventError> {
    if n > max {
        return Err(EventError::schema(
            field.name(),
            format!("has {n} items, over the limit of {max}"),
        ));
    }
    Ok(())
}

impl TryFrom<wire::EncounterEvent<'_>> for Encounter {
    type Error = EventError;

    fn try_from(ev: wire::EncounterEvent<'_>) -> Result<Self, Self::Error> {
        check_text("event_id", &ev.event_id, 1, MAX_TEXT_CHARS)?;
        check_date("occurred_at", ev.occurred_at.date_naive())?;
        let enc = ev.encounter;
        check_text("encounter.encounter_id", &enc.encounter_id, 1, 64)?;
        // Stored as a Postgres integer.
        if enc.version < 1 || enc.version > i32::MAX as u32 {
            return Err(EventError::schema(
                "encounter.version",
                "must be an integer from 1 to 2147483647",
            ));
        }
        check_date("encounter.date_of_service", enc.date_of_service)?;
        check_text("encounter.patient.id", &enc.patient.id, 1, MAX_TEXT_CHARS)?;
        if let Some(birth) = enc.patient.birth_date {
            check_date("encounter.patient.birth_date", birth)?;
        }
        let npi = Npi::parse(&enc.provider.npi)
            .map_err(|r| EventError::schema("encounter.provider.npi", r))?;
        let locality = match &enc.provider.medicare_locality {
            Some(l) => Some(
                Locality::parse(l)
                    .map_err(|r| EventError::schema("encounter.provider.medicare_locality", r))?,
            ),
            None => None,
        };
        check_text("encounter.payer.id", &enc.payer.id, 1, MAX_TEXT_CHARS)?;
        check_count("encounter.diagnoses", enc.diagnoses.len(), MAX_DIAGNOSES)?;
        check_count("encounter.services", enc.services.len(), MAX_SERVICES)?;
        let diagnoses = enc
            .diagnoses
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Diagnosis::parse(d)
                    .map_err(|r| EventError::schema(format!("encounter.diagnoses[{i}]"), r))
            })
            .collect::<Result<Arc<[_]>, _>>()?;
        let plan_of_care = match enc.plan_of_care {
            Some(p) if p.certified_through < p.certified_from => {
                return Err(EventError::schema(
                    "encounter.plan_of_care.certified_through",
                    "is before certified_from",
                ))
            }
            Some(p) => {
                check_date("encounter.plan_of_care.certified_from", p.certified_from)?;
                check_date(
                    "encounter.plan_of_care.certified_through",
                    p.certified_through,
                )?;
                if let Some(id) = &p.id {
                    check_text("encounter.plan_of_care.id", id, 0, MAX_TEXT_CHARS)?;
                }
                Some(PlanOfCare {
                    certified_from: p.certified_from,
                    certified_through: p.certified_through,
                })
            }
            None => None,
        };
        if enc.services.is_empty() && ev.event_type != EventType::Voided {
            return Err(EventError::schema(
                "encounter.services",
                "must not be empty unless the event is voided",
            ));
        }
        let services = enc
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Encounters have a handful of services: a scan beats a set.
                if enc.services[..i].iter().any(|o| o.line_id == s.line_id) {
                    return Err(EventError::schema(
                        format!("encounter.services[{i}].line_id"),
                        "is not unique within the encounter",
                    ));
                }
                parse_service(i, s, enc.provider.credential)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Encounter {
            event_id: ev.event_id.into(),
            event_type: ev.event_type,
            occurred_at: ev.occurred_at,
            encounter_id: enc.encounter_id.into(),
            version: enc.version,
            date_of_service: enc.date_of_service,
            patient_id: PatientId::new(&enc.patient.id),
            npi,
            locality,
            discipline: enc.provider.discipline,
            credential: enc.provider.credential,
            payer_id: enc.payer.id.into(),
            plan: enc.payer.plan,
            diagnoses,
            plan_of_care,
            services,
        })
    }
}

fn parse_service(
    i: usize,
    s: &wire::Service<'_>,
    credential: Credential,
) -> Result<Service, EventError> {
    let field = |name: &str| format!("encounter.services[{i}].{name}");
    check_text(|| field("line_id"), &s.line_id, 1, MAX_TEXT_CHARS)?;
    let code = Code::parse(&s.code).map_err(|r| EventError::schema(field("code"), r))?;
    check_count(|| field("modifiers"), s.modifiers.len(), MAX_MODIFIERS)?;
    let modifiers = s
        .modifiers
        .iter()
        .enumerate()
        .map(|(j, m)| {
            Modifier::parse(m).map_err(|r| EventError::schema(field(&format!("modifiers[{j}]")), r))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (name, value) in [
        ("minutes", s.minutes),
        ("assistant_minutes", s.assistant_minutes),
    ] {
        if let Some(m) = value.filter(|m| *m > MAX_MINUTES) {
            return Err(EventError::schema(
                field(name),
                format!("{m} is out of range 0-{MAX_MINUTES}"),
            ));
        }
    }
    for (name, t) in [("start", s.start), ("end", s.end)] {
        if let Some(t) = t {
            check_date(|| field(name), t.date_naive())?;
        }
    }
    let interval = match (s.start, s.end) {
        (Some(start), Some(end)) => {
            let iv = Interval {
                start: start.with_timezone(&Utc),
                end: end.with_timezone(&Utc),
            };
            if iv.end < iv.start {
                return Err(EventError::schema(field("end"), "is before start"));
            }
            if iv.minutes() > MAX_MINUTES {
                return Err(EventError::schema(
                    field("end"),
                    format!("start to end spans more than {MAX_MINUTES} minutes"),
                ));
            }
            Some(iv)
        }
        _ => None,
    };
    let minutes = match (interval, s.minutes) {
        (Some(iv), _) => iv.minutes(),
        (None, Some(m)) => m,
        (None, None) => {
            return Err(EventError::schema(
                field("minutes"),
                "a service needs minutes or both start and end",
            ))
        }
    };
    Ok(Service {
        line_id: s.line_id.as_ref().into(),
        code,
        minutes,
        documented_minutes: s.minutes,
        interval,
        one_on_one: s.one_on_one,
        group_size: s.group_size,
        modifiers,
        // An assistant who documents the visit furnished all of it unless
        // the event says otherwise.
        assistant_minutes: match (s.assistant_minutes, credential) {
            (Some(m), _) => m.min(minutes),
            (None, Credential::Assistant) => minutes,
            (None, Credential::Therapist) => 0,
        },
        activities: s.activities,
        furnished_on: match (s.start, s.end) {
            (Some(start), Some(end)) => Some(furnished_on(start, end)),
            _ => None,
        },
    })
}

/// The day a service with these times was furnished, in the start's own
/// UTC offset: the day holding most of its minutes, the start's on a tie
/// (contract: SERVICE_DATE_MISMATCH).
fn furnished_on(
    start: chrono::DateTime<chrono::FixedOffset>,
    end: chrono::DateTime<chrono::FixedOffset>,
) -> NaiveDate {
    let from = start.naive_local();
    let to = end.with_timezone(start.offset()).naive_local();
    let day = from.date();
    let Some(next) = day.succ_opt() else {
        return day;
    };
    let midnight = next.and_time(chrono::NaiveTime::MIN);
    if to <= midnight {
        return day;
    }
    if to - midnight > midnight - from {
        next
    } else {
        day
    }
}
