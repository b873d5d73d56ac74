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

fn run(ev: &Value) -> Vec<ClaimLine> {
    run_with(ev, Rules::builtin())
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
mod day;
mod decoding;
mod flags;
mod kx;
mod ledger;
mod payment;
mod properties;
mod units;
