//! The fast path of `decode`: a reader for the shape that
//! almost every encounter event has, written for the one struct it fills.
//!
//! serde_json's generic deserializer spends more than half of the rules
//! path's time on an event; this reads the same [`wire::EncounterEvent`] in
//! a fraction of it. It is deliberately partial: it returns `None` for
//! anything unusual (escapes in strings, numbers that are not plain
//! integers, `null` where serde would object, duplicate fields, invalid
//! values of any kind), and `decode` then runs serde_json, which decides and
//! words the error. So it never decides that an event is bad, and when it
//! returns an event, it is the one serde_json returns (a property test holds
//! it to that on valid, damaged and random input).

// `str` hands out an ASCII run without checking it again: the scanner just
// proved every byte of it ASCII.
#![allow(unsafe_code)]

use std::borrow::Cow;

use super::wire::{self, Patient, Payer, PlanOfCare, Provider};
use crate::ascii::{first_special, first_special_or_non_ascii};
use crate::dates::{date, rfc3339};
use crate::domain::{Credential, Discipline, EventType, Plan};

/// The event in `bytes`, or `None` to let serde_json decide. `Some` also
/// means the bytes are valid UTF-8: outside strings only ASCII is accepted,
/// and every string is checked.
pub fn read(bytes: &[u8]) -> Option<wire::EncounterEvent<'_>> {
    let mut r = Reader { s: bytes, i: 0 };
    let event = r.event()?;
    r.ws();
    (r.i == r.s.len()).then_some(event)
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

/// Sets a field once; a second occurrence is serde's "duplicate field".
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// Skips whitespace and takes `b` if it comes next.
    #[inline(always)]
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    #[inline(always)]
    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// A string without escapes or control characters, borrowed.
    #[inline(always)]
    fn str(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        let n = first_special_or_non_ascii(&self.s[start..])?;
        let ascii = &self.s[start..start + n];
        match self.s[start + n] {
            b'"' => {
                self.i = start + n + 1;
                debug_assert!(ascii.is_ascii());
                // SAFETY: the scan stopped at the first byte that is not
                // ASCII or is special, so every byte before it is ASCII,
                // which is valid UTF-8. This runs for every key and value.
                Some(unsafe { std::str::from_utf8_unchecked(ascii) })
            }
            b if b < 0x80 => None,
            // Not ASCII: find the closing quote, then check it all.
            _ => {
                let end = start + n + first_special(&self.s[start + n..])?;
                if self.s[end] != b'"' {
                    return None;
                }
                self.i = end + 1;
                std::str::from_utf8(&self.s[start..end]).ok()
            }
        }
    }

    #[inline(always)]
    fn cow(&mut self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }

    fn null(&mut self) -> bool {
        self.ws();
        self.literal(b"null")
    }

    /// `null` (as `None`) or what `value` reads.
    fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// A plain non-negative integer that fits in a u32.
    fn u32(&mut self) -> Option<u32> {
        self.ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&b) = self.s.get(self.i).filter(|b| b.is_ascii_digit()) {
            n = n * 10 + u64::from(b - b'0');
            if n > u64::from(u32::MAX) {
                return None;
            }
            self.i += 1;
        }
        let digits = self.i - start;
        // No leading zeros, no fraction or exponent: serde's business.
        if digits == 0 || (digits > 1 && self.s[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.s.get(self.i) {
            return None;
        }
        u32::try_from(n).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        self.ws();
        if self.literal(b"true") {
            Some(true)
        } else if self.literal(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// `{ "key": value, ... }`, calling `field` with the reader at each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.expect(b':')?;
            field(self, key)?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b'}');
        }
    }

    /// `[ item, ... ]`.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b']');
        }
    }

    fn strings(&mut self) -> Option<Vec<Cow<'a, str>>> {
        let mut v = Vec::with_capacity(4);
        self.array(|r| {
            v.push(r.cow()?);
            Some(())
        })?;
        Some(v)
    }

    /// Any JSON value, for the fields the contract does not name.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > 100 {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => self.str().map(drop),
            b'{' => self.object(|r, _| r.skip(depth + 1)),
            b'[' => self.array(|r| r.skip(depth + 1)),
            b't' | b'f' => self.bool().map(drop),
            b'n' => self.null().then_some(()),
            _ => self.number(),
        }
    }

    /// A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    fn number(&mut self) -> Option<()> {
        let digits = |r: &mut Self| {
            let start = r.i;
            while r.s.get(r.i).is_some_and(u8::is_ascii_digit) {
                r.i += 1;
            }
            r.i - start
        };
        self.literal(b"-");
        let start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[start] == b'0') {
            return None;
        }
        if self.literal(b".") && digits(self) == 0 {
            return None;
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }

    fn event(&mut self) -> Option<wire::EncounterEvent<'a>> {
        let (mut event_id, mut event_type, mut occurred_at, mut encounter) =
            (None, None, None, None);
        self.object(|r, key| match key {
            "event_id" => once(&mut event_id, r.cow()?),
            "event_type" => {
                let t = match r.str()? {
                    "finalized" => EventType::Finalized,
                    "amended" => EventType::Amended,
                    "voided" => EventType::Voided,
                    _ => return None,
                };
                once(&mut event_type, t)
            }
            "occurred_at" => once(&mut occurred_at, rfc3339::parse(r.str()?).ok()?),
            "encounter" => once(&mut encounter, r.encounter()?),
            _ => r.skip(0),
        })?;
        Some(wire::EncounterEvent {
            event_id: event_id?,
            event_type: event_type?,
            occurred_at: occurred_at?,
            encounter: encounter?,
        })
    }

    fn encounter(&mut self) -> Option<wire::Encounter<'a>> {
        let mut encounter_id = None;
        let mut version = None;
        let mut date_of_service = None;
        let mut patient = None;
        let mut provider = None;
        let mut payer = None;
        let mut diagnoses = None;
        let mut plan_of_care = None;
        let mut services = None;
        self.object(|r, key| match key {
            "encounter_id" => once(&mut encounter_id, r.cow()?),
            "version" => once(&mut version, r.u32()?),
            "date_of_service" => once(&mut date_of_service, date::parse(r.str()?)?),
            "patient" => once(&mut patient, r.patient()?),
            "provider" => once(&mut provider, r.provider()?),
            "payer" => once(&mut payer, r.payer()?),
            "diagnoses" => once(&mut diagnoses, r.strings()?),
            "plan_of_care" => once(&mut plan_of_care, r.nullable(Self::plan_of_care)?),
            "services" => {
                let mut v = Vec::with_capacity(8);
                r.array(|r| {
                    v.push(r.service()?);
                    Some(())
                })?;
                once(&mut services, v)
            }
            _ => r.skip(0),
        })?;
        Some(wire::Encounter {
            encounter_id: encounter_id?,
            version: version?,
            date_of_service: date_of_service?,
            patient: patient?,
            provider: provider?,
            payer: payer?,
            diagnoses: diagnoses?,
            plan_of_care: plan_of_care.flatten(),
            services: services?,
        })
    }

    fn patient(&mut self) -> Option<Patient<'a>> {
        let (mut id, mut birth_date) = (None, None);
        self.object(|r, key| match key {
            "id" => once(&mut id, r.cow()?),
            "birth_date" => once(&mut birth_date, r.nullable(|r| date::parse(r.str()?))?),
            _ => r.skip(0),
        })?;
        Some(Patient {
            id: id?,
            birth_date: birth_date.flatten(),
        })
    }

    fn provider(&mut self) -> Option<Provider<'a>> {
        let (mut npi, mut discipline, mut credential) = (None, None, None);
        let mut medicare_locality = None;
        self.object(|r, key| match key {
            "npi" => once(&mut npi, r.cow()?),
            "medicare_locality" => once(&mut medicare_locality, r.cow()?),
            "discipline" => {
                let d = match r.str()? {
                    "PT" => Discipline::PT,
                    "OT" => Discipline::OT,
                    "SLP" => Discipline::SLP,
                    _ => return None,
                };
                once(&mut discipline, d)
            }
            "credential" => {
                let c = match r.str()? {
                    "therapist" => Credential::Therapist,
                    "assistant" => Credential::Assistant,
                    _ => return None,
                };
                once(&mut credential, c)
            }
            _ => r.skip(0),
        })?;
        Some(Provider {
            npi: npi?,
            discipline: discipline?,
            credential: credential?,
            medicare_locality,
        })
    }

    fn payer(&mut self) -> Option<Payer<'a>> {
        let (mut id, mut plan) = (None, None);
        self.object(|r, key| match key {
            "id" => once(&mut id, r.cow()?),
            "plan" => {
                let p = match r.str()? {
                    "medicare" => Plan::Medicare,
                    "medicaid" => Plan::Medicaid,
                    "commercial" => Plan::Commercial,
                    "other" => Plan::Other,
                    _ => return None,
                };
                once(&mut plan, p)
            }
            _ => r.skip(0),
        })?;
        Some(Payer {
            id: id?,
            plan: plan?,
        })
    }

    fn plan_of_care(&mut self) -> Option<PlanOfCare<'a>> {
        let (mut id, mut from, mut through) = (None, None, None);
        self.object(|r, key| match key {
            "id" => once(&mut id, r.nullable(Self::cow)?),
            "certified_from" => once(&mut from, date::parse(r.str()?)?),
            "certified_through" => once(&mut through, date::parse(r.str()?)?),
            _ => r.skip(0),
        })?;
        Some(PlanOfCare {
            id: id.flatten(),
            certified_from: from?,
            certified_through: through?,
        })
    }

    fn service(&mut self) -> Option<wire::Service<'a>> {
        let mut line_id = None;
        let mut code = None;
        let mut start = None;
        let mut end = None;
        let mut minutes = None;
        let mut one_on_one = None;
        let mut group_size = None;
        let mut modifiers = None;
        let mut assistant_minutes = None;
        let mut activities = None;
        self.object(|r, key| match key {
            "line_id" => once(&mut line_id, r.cow()?),
            "code" => once(&mut code, r.cow()?),
            "start" | "end" => {
                let t = r.nullable(|r| rfc3339::parse(r.str()?).ok())?;
                once(if key == "start" { &mut start } else { &mut end }, t)
            }
            "minutes" => once(&mut minutes, r.nullable(Self::u32)?),
            "one_on_one" => once(&mut one_on_one, r.bool()?),
            "group_size" => once(&mut group_size, r.nullable(Self::u32)?),
            "modifiers" => once(&mut modifiers, r.strings()?),
            "assistant_minutes" => once(&mut assistant_minutes, r.nullable(Self::u32)?),
            "activities" => {
                let mut n = 0;
                r.array(|r| {
                    r.str()?;
                    n += 1;
                    Some(())
                })?;
                once(&mut activities, n)
            }
            _ => r.skip(0),
        })?;
        Some(wire::Service {
            line_id: line_id?,
            code: code?,
            start: start.flatten(),
            end: end.flatten(),
            minutes: minutes.flatten(),
            one_on_one: one_on_one.unwrap_or(true),
            group_size: group_size.flatten(),
            modifiers: modifiers.unwrap_or_default(),
            assistant_minutes: assistant_minutes.flatten(),
            activities: activities.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PRETTY: &str = include_str!("../../benches/event-4-services.json");
    const EXAMPLES: &str = include_str!("../../examples/encounters.jsonl");

    fn serde(text: &str) -> Option<wire::EncounterEvent<'_>> {
        serde_json::from_str(text).ok()
    }

    /// The contract: whatever the reader returns, serde returns too, and
    /// the bytes are UTF-8.
    fn agrees_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = read(bytes) {
            let text = std::str::from_utf8(bytes);
            prop_assert!(text.is_ok(), "read invalid UTF-8: {:?}", bytes);
            prop_assert_eq!(Some(fast), serde(text.unwrap_or_default()), "{:?}", text);
        }
        Ok(())
    }

    fn agrees(text: &str) -> Result<(), TestCaseError> {
        agrees_bytes(text.as_bytes())
    }

    fn read(text: impl AsRef<[u8]>) -> Option<wire::EncounterEvent<'static>> {
        // Leaked: test inputs only, so results can outlive their buffer.
        let bytes: &'static [u8] = Box::leak(text.as_ref().to_vec().into_boxed_slice());
        super::read(bytes)
    }

    #[test]
    fn reads_the_usual_events_exactly_as_serde_does() {
        let compact =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(PRETTY).unwrap())
                .unwrap();
        for text in EXAMPLES.lines().chain([PRETTY, compact.as_str()]) {
            let fast = read(text).unwrap_or_else(|| panic!("the fast path declined {text}"));
            assert_eq!(Some(fast), serde(text));
        }
    }

    #[test]
    fn declines_what_serde_should_judge() {
        let base =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(PRETTY).unwrap())
                .unwrap();
        for (from, to) in [
            ("\"version\":1", "\"version\":1.0"),
            ("\"version\":1", "\"version\":01"),
            ("\"version\":1", "\"version\":-1"),
            ("\"version\":1", "\"version\":99999999999"),
            ("\"version\":1", "\"version\":null"),
            ("\"event_id\":\"", "\"event_id\":\"\\u0041"),
            (
                "\"code\":\"97530\"",
                "\"code\":\"97530\",\"code\":\"97530\"",
            ),
            ("\"one_on_one\":true", "\"one_on_one\":null"),
            ("\"plan\":\"medicare\"", "\"plan\":\"Medicare\""),
            (
                "\"date_of_service\":\"2026-03-02\"",
                "\"date_of_service\":\"2026-02-30\"",
            ),
            (
                "\"start\":\"2026-03-02T14:00:00Z\"",
                "\"start\":\"yesterday\"",
            ),
            ("\"modifiers\":[\"59\"]", "\"modifiers\":null"),
            ("\"event_type\":\"finalized\",", ""),
        ] {
            assert!(base.contains(from), "{from}");
            let text = base.replacen(from, to, 1);
            assert!(read(&text).is_none(), "{text}");
        }
        assert!(read(format!("{base} x")).is_none());
        assert!(read(format!(" {base}\n")).is_some());
    }

    #[test]
    fn reads_text_that_is_not_ascii_and_declines_broken_utf8() {
        let text = PRETTY.replacen("car transfer simulation", "Übungen für Treppen ✓ 😀", 1);
        assert!(read(&text).is_some());
        agrees(&text).unwrap();
        let mut bytes = text.clone().into_bytes();
        let at = text.find('Ü').unwrap();
        bytes[at + 1] = b'x'; // a lead byte without its continuation
        assert!(read(&bytes).is_none());
        let mut bytes = text.into_bytes();
        let at = bytes.iter().position(|&b| b == b'{').unwrap();
        bytes.insert(at + 1, 0xff); // not UTF-8 outside a string
        assert!(read(&bytes).is_none());
    }

    #[test]
    fn skips_unknown_fields_of_every_kind() {
        let text = PRETTY.replacen(
            "\"event_id\"",
            r#""extra": {"a": [1, -2.5e+3, true, false, null, "x", {"b": []}], "c": {}}, "event_id""#,
            1,
        );
        assert!(read(&text).is_some());
        agrees(&text).unwrap();
    }

    proptest! {
        #[test]
        fn agrees_with_serde_on_damaged_events(
            at in 0usize..1300,
            cut in 0usize..6,
            insert in prop_oneof![
                Just(String::new()), Just("\"".into()), Just("\\".into()), Just(",".into()),
                Just("null".into()), Just("0".into()), Just("}".into()), Just("[".into()),
                Just("\"x\":1,".into()), "[ -~]{0,4}".prop_map(|s| s),
            ],
        ) {
            let compact = serde_json::to_string(
                &serde_json::from_str::<serde_json::Value>(PRETTY).unwrap()).unwrap();
            let mut bytes = compact.into_bytes();
            let at = at.min(bytes.len());
            let end = (at + cut).min(bytes.len());
            bytes.splice(at..end, insert.into_bytes());
            agrees_bytes(&bytes)?;
        }

        #[test]
        fn agrees_with_serde_on_events_with_foreign_bytes(
            at in 0usize..1300,
            inserted in proptest::collection::vec(any::<u8>(), 1..5),
        ) {
            let compact = serde_json::to_string(
                &serde_json::from_str::<serde_json::Value>(PRETTY).unwrap()).unwrap();
            let mut bytes = compact.into_bytes();
            let at = at.min(bytes.len());
            bytes.splice(at..at, inserted);
            agrees_bytes(&bytes)?;
        }

        #[test]
        fn agrees_with_serde_on_random_text(text in "\\PC{0,200}") {
            agrees(&text)?;
        }
    }
}
