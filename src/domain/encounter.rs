//! Parse, don't validate: the wire event becomes a domain [`Encounter`] here,
//! or a [`EventError`] that names the field and the reason. Nothing past this
//! module checks the contract's table again.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use std::fmt;
use std::sync::Arc;

use super::wire::{self, Credential, Discipline, EventType, Plan};

/// The contract's size limit for one event value (section 1).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// The largest minute count the contract allows for one service.
pub const MAX_MINUTES: u32 = 1440;

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

/// A short ASCII string kept inline: no allocation, `Copy`. The value types
/// below (codes, modifiers, NPIs, diagnoses) are all a few characters long.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Short<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Short<N> {
    /// `s` if it is at most `N` characters, each a digit, a capital letter
    /// or one of `extra`.
    fn new(s: &str, extra: &[u8]) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() > N
            || !b
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || extra.contains(c))
        {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..b.len()].copy_from_slice(b);
        Some(Short {
            bytes,
            len: b.len() as u8,
        })
    }

    const fn lit(s: &[u8; N]) -> Self {
        let mut i = 0;
        while i < N {
            assert!(s[i].is_ascii(), "a Short literal must be ASCII");
            i += 1;
        }
        Short {
            bytes: *s,
            len: N as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len)];
        debug_assert!(bytes.is_ascii());
        // SAFETY: the fields are private and both constructors, `new` and
        // `lit`, admit ASCII bytes only, so `bytes` is valid UTF-8. This is
        // on the hot path of every claim line; checking again costs more
        // than the rest of the accessor.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// Serde, Display, Debug and comparison with `&str` for a [`Short`] newtype.
macro_rules! short_string_type {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A national provider identifier whose check digit holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Npi(Short<10>);
short_string_type!(Npi);

impl Npi {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be exactly 10 digits");
        }
        // Luhn over "80840" + the first nine digits; 80840 contributes 24.
        let digits = s.as_bytes();
        let mut sum = 24;
        for (i, d) in digits[..9].iter().rev().enumerate() {
            let d = u32::from(d - b'0');
            sum += if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            };
        }
        let check = (10 - sum % 10) % 10;
        if check != u32::from(digits[9] - b'0') {
            return Err("check digit does not match (Luhn with prefix 80840)");
        }
        Short::new(s, b"")
            .map(Npi)
            .ok_or("must be exactly 10 digits")
    }
}

/// A 5-character CPT/HCPCS code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(Short<5>);
short_string_type!(Code);

impl Code {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match Short::new(s, b"") {
            Some(c) if s.len() == 5 => Ok(Code(c)),
            _ => Err("must be a 5-character CPT/HCPCS code (digits and capital letters)"),
        }
    }

    pub const fn lit(s: &[u8; 5]) -> Self {
        Code(Short::lit(s))
    }
}

/// A 2-character billing modifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Modifier(Short<2>);
short_string_type!(Modifier);

impl Modifier {
    pub const GP: Modifier = Modifier(Short::lit(b"GP"));
    pub const GO: Modifier = Modifier(Short::lit(b"GO"));
    pub const GN: Modifier = Modifier(Short::lit(b"GN"));
    pub const CQ: Modifier = Modifier(Short::lit(b"CQ"));
    pub const CO: Modifier = Modifier(Short::lit(b"CO"));

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match Short::new(s, b"") {
            Some(m) if s.len() == 2 => Ok(Modifier(m)),
            _ => Err("must be a 2-character modifier (digits and capital letters)"),
        }
    }

    /// 59 or one of its X{EPSU} subsets: "this service was distinct".
    pub fn is_distinct_service(&self) -> bool {
        matches!(self.as_str(), "59" | "XE" | "XS" | "XP" | "XU")
    }

    /// CQ or CO: an assistant furnished part of the service.
    pub fn is_assistant(&self) -> bool {
        *self == Modifier::CQ || *self == Modifier::CO
    }
}

/// An ICD-10-CM code in its usual shape: letter, digit, letter or digit,
/// then up to four more characters after an optional dot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Diagnosis(Short<8>);
short_string_type!(Diagnosis);

impl Diagnosis {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let b = s.as_bytes();
        let head_ok = b.len() >= 3
            && b[0].is_ascii_uppercase()
            && b[1].is_ascii_digit()
            && (b[2].is_ascii_digit() || b[2].is_ascii_uppercase());
        let rest = &b[3.min(b.len())..];
        let rest = rest.strip_prefix(b".").unwrap_or(rest);
        let rest_ok = rest.len() <= 4
            && rest
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
        let dot_ok = !(b.len() == 4 && b[3] == b'.');
        match Short::new(s, b".") {
            Some(d) if head_ok && rest_ok && dot_ok => Ok(Diagnosis(d)),
            _ => Err("is not an ICD-10-CM code (e.g. S72.001D)"),
        }
    }
}

/// The patient reference. PHI: its `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientId(Arc<str>);

impl PatientId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Debug for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PatientId(<redacted>)")
    }
}

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
    pub discipline: Discipline,
    pub credential: Credential,
    pub payer_id: Arc<str>,
    pub plan: Plan,
    pub diagnoses: Arc<[Diagnosis]>,
    pub plan_of_care: Option<PlanOfCare>,
    pub services: Vec<Service>,
}

/// Bytes from the wire to a domain encounter. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Encounter, EventError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            max: MAX_EVENT_BYTES,
        });
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
            let message = redact_if_phi(&path, inner.to_string());
            EventError::schema(path, message)
        }
        _ => EventError::InvalidJson(inner.to_string()),
    }
}

/// serde quotes the offending value ("invalid type: string \"…\"",
/// "invalid value: integer `…`"). That value may be patient data or an NPI,
/// or a whole double-encoded event, and error messages travel into logs and
/// dead-letter headers: never repeat it.
fn redact_if_phi(path: &str, message: String) -> String {
    if path.starts_with("encounter.patient") {
        return "invalid value (not shown: patient data)".to_owned();
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(i) = message.find(prefix) {
            if let Some(j) = message[i..].find(", expected") {
                let what = message[i + prefix.len()..i + j]
                    .split([' ', '`', '"'])
                    .next()
                    .unwrap_or("");
                return format!(
                    "{}{prefix}{what} (value not shown){}",
                    &message[..i],
                    &message[i + j..]
                );
            }
        }
    }
    message
}

fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<(), EventError> {
    let n = s.chars().count();
    if n < min || n > max {
        Err(EventError::schema(
            field,
            format!("must be {min}-{max} characters, got {n}"),
        ))
    } else {
        Ok(())
    }
}

impl TryFrom<wire::EncounterEvent<'_>> for Encounter {
    type Error = EventError;

    fn try_from(ev: wire::EncounterEvent<'_>) -> Result<Self, Self::Error> {
        check_len("event_id", &ev.event_id, 1, 128)?;
        let enc = ev.encounter;
        check_len("encounter.encounter_id", &enc.encounter_id, 1, 64)?;
        if enc.version < 1 {
            return Err(EventError::schema(
                "encounter.version",
                "must be at least 1",
            ));
        }
        if enc.patient.id.is_empty() {
            return Err(EventError::schema(
                "encounter.patient.id",
                "must not be empty",
            ));
        }
        let npi = Npi::parse(&enc.provider.npi)
            .map_err(|r| EventError::schema("encounter.provider.npi", r))?;
        if enc.payer.id.is_empty() {
            return Err(EventError::schema(
                "encounter.payer.id",
                "must not be empty",
            ));
        }
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
            Some(p) => Some(PlanOfCare {
                certified_from: p.certified_from,
                certified_through: p.certified_through,
            }),
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
            patient_id: PatientId(enc.patient.id.into()),
            npi,
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
    if s.line_id.is_empty() {
        return Err(EventError::schema(field("line_id"), "must not be empty"));
    }
    let code = Code::parse(&s.code).map_err(|r| EventError::schema(field("code"), r))?;
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
    })
}
