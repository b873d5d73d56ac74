//! Table tests for the rules, driven through the public entry points
//! (`decode` then `evaluate`) with events built as JSON.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::codec::{decode, EventError, MAX_EVENT_BYTES};

fn svc(line: &str, code: &str, start: &str, end: &str) -> Value {
    json!({
        "line_id": line, "code": code,
        "start": format!("2026-03-02T{start}:00Z"), "end": format!("2026-03-02T{end}:00Z"),
        "activities": ["sit-to-stand transfers"]
    })
}

fn minutes_svc(line: &str, code: &str, minutes: u32) -> Value {
    json!({ "line_id": line, "code": code, "minutes": minutes, "activities": ["stairs"] })
}

fn event(plan: &str, services: Vec<Value>) -> Value {
    json!({
        "event_id": "evt-1",
        "event_type": "finalized",
        "occurred_at": "2026-03-02T15:10:00Z",
        "encounter": {
            "encounter_id": "ENC-1",
            "version": 1,
            "date_of_service": "2026-03-02",
            "patient": { "id": "PAT-SECRET-1", "birth_date": "1948-06-14" },
            "provider": { "npi": "1234567893", "discipline": "PT", "credential": "therapist" },
            "payer": { "id": "PAYER-1", "plan": plan },
            "diagnoses": ["S72.001D"],
            "plan_of_care": { "id": "POC-1", "certified_from": "2026-02-20", "certified_through": "2026-05-20" },
            "services": services
        }
    })
}

/// The rule set claimline uses by default on a date of service: the
/// built-in data with the CMS tables shipped in `data/cms/`.
fn rules_on(date: chrono::NaiveDate) -> &'static Rules {
    crate::cms::shipped::rules_for(date)
}

/// The default rule set on the tests' usual date of service, 2026-03-02.
fn rules() -> &'static Rules {
    rules_on(chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
}

fn run(ev: &Value) -> Vec<ClaimLine> {
    let enc = decode(ev.to_string().as_bytes()).expect("valid event");
    evaluate(&enc, rules_on(enc.date_of_service))
}

/// The built-in data with `ptp` as the whole PTP table in force (as an
/// imported CMS quarter gives: every pair covered), for the mechanics of a
/// pair (indicator 0 or 1, column 2, modifiers, dates). CMS's own rows are
/// tested through [`run`].
fn rules_with_ptp(ptp: Value) -> Rules {
    let mut edits: Value = serde_json::from_str(include_str!("../../../data/edits.json")).unwrap();
    edits["ptp"] = ptp;
    Rules::from_json(
        include_str!("../../../data/catalogue.json"),
        include_str!("../../../data/payers.json"),
        &edits.to_string(),
    )
    .unwrap()
}

fn run_with(ev: &Value, rules: &Rules) -> Vec<ClaimLine> {
    let enc = decode(ev.to_string().as_bytes()).expect("valid event");
    evaluate(&enc, rules)
}

fn reject(ev: &Value) -> EventError {
    decode(ev.to_string().as_bytes()).expect_err("event must be rejected")
}

fn line<'a>(lines: &'a [ClaimLine], code: &str) -> &'a ClaimLine {
    lines
        .iter()
        .find(|l| l.code == code)
        .unwrap_or_else(|| panic!("no {code} line in {lines:?}"))
}

fn flag(l: &ClaimLine, code: FlagCode) -> Option<&Flag> {
    l.flags.iter().find(|f| f.code == code)
}

fn units(lines: &[ClaimLine]) -> Vec<(String, u32)> {
    lines
        .iter()
        .map(|l| (l.code.to_string(), l.units))
        .collect()
}

mod audit;
mod cms_tables;
mod cotreatment;
mod day;
mod decoding;
mod flags;
mod kx;
mod ledger;
mod overlaps;
mod payment;
mod policy;
mod properties;
mod rulebook;
mod units;
