//! The claim line's JSON, written by hand. Claim lines are the service's
//! whole output, and serde's generic serializer spends most of its time
//! escaping the field names it already knows. This writes the same bytes as
//! `serde_json::to_vec(&line)` (tested against it), at a fraction of the
//! cost. The derived `Serialize` stays for everything else.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::ascii::{decimal, first_special};
use crate::dates::date;
use crate::domain::{ClaimLine, Diagnosis, Flag, Npi};

impl ClaimLine {
    /// Appends this line as one JSON object, as `serde_json` would write it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.reserve_json(out);
        self.write_id(out);
        self.write_shared(out);
        self.write_own(out);
        self.write_diagnoses(out);
        self.write_tail(out);
    }

    /// This line as a JSON string.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        into_string(out)
    }

    /// Room for the field names, the numbers and the usual strings, so the
    /// writes do not grow the buffer one by one.
    fn reserve_json(&self, out: &mut Vec<u8>) {
        out.reserve(
            400 + self.claim_line_id.len()
                + self.encounter_id.len()
                + self.event_id.len()
                + self.patient_id.len()
                + self.payer_id.len()
                + self.rules_version.len()
                + 16 * self.diagnoses.len()
                + self
                    .flags
                    .iter()
                    .map(|f| 80 + f.message.len() + 8 * f.related_codes.len())
                    .sum::<usize>(),
        );
    }

    fn write_id(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"claim_line_id\":");
        string(out, &self.claim_line_id);
    }

    /// The fields every line of an event has in common, in field order.
    fn write_shared(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"encounter_id\":");
        string(out, &self.encounter_id);
        out.extend_from_slice(b",\"encounter_version\":");
        unsigned(out, u64::from(self.encounter_version));
        out.extend_from_slice(b",\"event_id\":");
        string(out, &self.event_id);
        out.extend_from_slice(b",\"date_of_service\":\"");
        out.extend_from_slice(&date::to_bytes(self.date_of_service));
        out.extend_from_slice(b"\",\"patient_id\":");
        string(out, &self.patient_id);
        out.extend_from_slice(b",\"provider_npi\":");
        string(out, self.provider_npi.as_str());
        out.extend_from_slice(b",\"payer_id\":");
        string(out, &self.payer_id);
    }

    fn write_own(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"line_no\":");
        unsigned(out, u64::from(self.line_no));
        out.extend_from_slice(b",\"code\":");
        string(out, self.code.as_str());
        out.extend_from_slice(b",\"units\":");
        unsigned(out, u64::from(self.units));
        out.extend_from_slice(b",\"minutes\":");
        unsigned(out, u64::from(self.minutes));
        out.extend_from_slice(b",\"modifiers\":");
        array(out, self.modifiers.iter().map(|m| m.as_str()));
        out.extend_from_slice(b",\"unit_method\":\"");
        out.extend_from_slice(self.unit_method.as_str().as_bytes());
        out.extend_from_slice(b"\",\"status\":\"");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.extend_from_slice(b"\",\"flags\":");
        Flag::write_json_array(&self.flags, out);
    }

    fn write_diagnoses(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"diagnoses\":");
        array(out, self.diagnoses.iter().map(|d| d.as_str()));
    }

    fn write_tail(&self, out: &mut Vec<u8>) {
        if let Some(cents) = self.expected_payment_cents {
            out.extend_from_slice(b",\"expected_payment_cents\":");
            if cents < 0 {
                out.push(b'-');
            }
            unsigned(out, cents.unsigned_abs());
        }
        out.extend_from_slice(b",\"rules_version\":");
        string(out, &self.rules_version);
        out.push(b'}');
    }
}

/// Writes claim lines as [`ClaimLine::write_json`] does, but copies the
/// bytes of what consecutive lines of one event share (encounter, event,
/// patient, provider, payer, diagnoses) from the line before instead of
/// encoding them again. It keeps the shared values it encoded alive, so
/// "the same allocation" always means "the same value".
#[derive(Default)]
pub struct JsonWriter {
    shared: Option<(Shared, Vec<u8>)>,
    diagnoses: Option<(Arc<[Diagnosis]>, Vec<u8>)>,
}

struct Shared {
    encounter_id: Arc<str>,
    event_id: Arc<str>,
    patient_id: Arc<str>,
    payer_id: Arc<str>,
    version: u32,
    date: NaiveDate,
    npi: Npi,
}

impl Shared {
    fn of(l: &ClaimLine) -> Shared {
        Shared {
            encounter_id: l.encounter_id.clone(),
            event_id: l.event_id.clone(),
            patient_id: l.patient_id.clone(),
            payer_id: l.payer_id.clone(),
            version: l.encounter_version,
            date: l.date_of_service,
            npi: l.provider_npi,
        }
    }

    fn matches(&self, l: &ClaimLine) -> bool {
        Arc::ptr_eq(&self.encounter_id, &l.encounter_id)
            && Arc::ptr_eq(&self.event_id, &l.event_id)
            && Arc::ptr_eq(&self.patient_id, &l.patient_id)
            && Arc::ptr_eq(&self.payer_id, &l.payer_id)
            && self.version == l.encounter_version
            && self.date == l.date_of_service
            && self.npi == l.provider_npi
    }
}

impl JsonWriter {
    pub fn write(&mut self, line: &ClaimLine, out: &mut Vec<u8>) {
        line.reserve_json(out);
        line.write_id(out);
        match &self.shared {
            Some((key, bytes)) if key.matches(line) => out.extend_from_slice(bytes),
            _ => {
                let mut bytes = Vec::with_capacity(256);
                line.write_shared(&mut bytes);
                out.extend_from_slice(&bytes);
                self.shared = Some((Shared::of(line), bytes));
            }
        }
        line.write_own(out);
        match &self.diagnoses {
            Some((key, bytes)) if Arc::ptr_eq(key, &line.diagnoses) => out.extend_from_slice(bytes),
            _ => {
                let mut bytes = Vec::with_capacity(64);
                line.write_diagnoses(&mut bytes);
                out.extend_from_slice(&bytes);
                self.diagnoses = Some((line.diagnoses.clone(), bytes));
            }
        }
        line.write_tail(out);
    }

    pub fn to_json(&mut self, line: &ClaimLine) -> String {
        let mut out = Vec::with_capacity(512);
        self.write(line, &mut out);
        into_string(out)
    }
}

/// Only valid UTF-8 is ever written: strings are copied whole or escaped
/// to ASCII.
fn into_string(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap_or_default()
}

impl Flag {
    /// `[flag, ...]`: a line's `flags` field, also its `flags` column.
    pub fn write_json_array(flags: &[Flag], out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, f) in flags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            f.write_json(out);
        }
        out.push(b']');
    }

    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"code\":\"");
        out.extend_from_slice(self.code.as_str().as_bytes());
        out.extend_from_slice(b"\",\"severity\":\"");
        out.extend_from_slice(self.severity.as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        string(out, &self.message);
        out.extend_from_slice(b",\"related_codes\":");
        array(out, self.related_codes.iter().map(|c| c.as_str()));
        out.push(b'}');
    }
}

fn array<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

/// A JSON string, escaped exactly as serde_json escapes it: `"`, `\` and
/// control characters; everything else, non-ASCII included, as is.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Almost every string needs no escape: check, then copy it whole.
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte is `"`, `\` or a control character.
fn needs_escape(bytes: &[u8]) -> bool {
    first_special(bytes).is_some()
}

fn unsigned(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, FlagCode, Modifier, Severity, Status, UnitMethod};
    use proptest::prelude::*;

    fn line(text: &str, cents: Option<i64>, n: u32, flags: usize) -> ClaimLine {
        ClaimLine {
            claim_line_id: format!("{text}:{n}:1"),
            encounter_id: text.into(),
            encounter_version: n,
            event_id: format!("e{text}").into(),
            date_of_service: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            patient_id: text.into(),
            provider_npi: Npi::parse("1234567893").unwrap(),
            payer_id: text.into(),
            line_no: n.max(1),
            code: Code::lit(b"97530"),
            units: n,
            minutes: n.wrapping_mul(7),
            modifiers: vec![Modifier::GP, Modifier::parse("59").unwrap()],
            unit_method: UnitMethod::CmsTotalTime,
            status: Status::NeedsReview,
            flags: (0..flags)
                .map(|i| Flag {
                    code: FlagCode::ALL[i % FlagCode::ALL.len()],
                    severity: Severity::Warning,
                    message: format!("{text} {i}"),
                    related_codes: vec![Code::lit(b"97110"); i],
                })
                .collect(),
            diagnoses: Arc::from(vec![Diagnosis::parse("S72.001D").unwrap()]),
            expected_payment_cents: cents,
            rules_version: text.to_owned().into(),
            kx_group: None,
        }
    }

    #[test]
    fn escapes_like_serde_json() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in ["", "plain", "quote\" back\\slash", "ünïcødé ✓ 😀", &all] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn the_writer_writes_the_same_bytes_as_serde_json_line_after_line(
            texts in proptest::collection::vec(any::<String>(), 1..4),
            picks in proptest::collection::vec((0usize..4, any::<u32>(), 0usize..3), 1..12),
        ) {
            // Lines of a few "events" in any order, some sharing their
            // fields' allocations and some only equal in value.
            let events: Vec<ClaimLine> = texts.iter().map(|t| line(t, Some(100), 1, 0)).collect();
            let mut writer = JsonWriter::default();
            for (e, n, flags) in picks {
                let base = &events[e % events.len()];
                let mut l = line(&base.encounter_id, Some(i64::from(n)), n, flags);
                if n % 2 == 0 {
                    l.encounter_id = base.encounter_id.clone();
                    l.event_id = base.event_id.clone();
                    l.patient_id = base.patient_id.clone();
                    l.payer_id = base.payer_id.clone();
                    l.diagnoses = base.diagnoses.clone();
                }
                prop_assert_eq!(writer.to_json(&l), serde_json::to_string(&l).unwrap());
            }
        }

        #[test]
        fn writes_the_same_bytes_as_serde_json(
            text in any::<String>(),
            cents in proptest::option::of(any::<i64>()),
            n in any::<u32>(),
            flags in 0usize..4,
        ) {
            let l = line(&text, cents, n, flags);
            prop_assert_eq!(l.to_json(), serde_json::to_string(&l).unwrap());
        }
    }
}
