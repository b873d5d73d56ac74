//! The checks of a payer policy file: each problem named with its path in
//! the file (`payers.ACME.daily_unit_limits.97530: ...`).

use serde_json::Value;

use crate::domain::rules::Catalogue;
use crate::domain::values::Code;

/// The fields of a payer policy ([`crate::domain::rules::PayerPolicy`]), each with
/// what it takes.
const FIELDS: &[(&str, Kind)] = &[
    ("unit_method", Kind::UnitMethod),
    ("daily_unit_limits", Kind::Limits),
    ("mppr", Kind::Bool),
    ("assistant_payment_percent", Kind::Percent),
    ("require_plan_of_care", Kind::Bool),
    ("mue", Kind::Bool),
    ("assistant_modifiers", Kind::Bool),
    ("slp_assistants", Kind::Bool),
    ("not_recognized", Kind::NotRecognized),
    ("recertification_days", Kind::Days),
    ("kx_threshold", Kind::Bool),
    ("ncci", Kind::Bool),
    ("ptp", Kind::Ptp),
    ("pfs_bundled", Kind::Bool),
];

pub(super) const PLANS: [&str; 4] = ["medicare", "medicaid", "commercial", "other"];

#[derive(Clone, Copy)]
enum Kind {
    UnitMethod,
    Limits,
    Bool,
    Percent,
    NotRecognized,
    Days,
    Ptp,
}

/// `new_payer`: None for a plan; for a payer id, whether the built-in data
/// lacks it.
pub(super) fn check_policy(
    path: &str,
    p: &Value,
    new_payer: Option<bool>,
    catalogue: &Catalogue,
    errs: &mut Vec<String>,
) {
    let payer = new_payer.is_some();
    let Some(obj) = p.as_object() else {
        errs.push(format!("{path}: must be an object of policy fields"));
        return;
    };
    for (key, v) in obj {
        let at = format!("{path}.{key}");
        if key.starts_with('_') {
            continue;
        }
        if key == "extends" && payer {
            if !v.as_str().is_some_and(|s| PLANS.contains(&s)) {
                errs.push(format!(
                    "{at}: must name a plan (medicare, medicaid, commercial or other), not {v}"
                ));
            }
            continue;
        }
        match FIELDS.iter().find(|(name, _)| name == key) {
            Some((_, kind)) => check_field(&at, *kind, v, catalogue, errs),
            None => errs.push(format!(
                "{at}: unknown field (a payer policy has {}{})",
                FIELDS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
                if payer { ", and extends" } else { "" }
            )),
        }
    }
    if new_payer == Some(true) && !obj.contains_key("extends") && !obj.contains_key("unit_method") {
        errs.push(format!(
            "{path}: a new payer needs extends (the plan whose policy it starts from) or unit_method"
        ));
    }
}

fn check_field(at: &str, kind: Kind, v: &Value, catalogue: &Catalogue, errs: &mut Vec<String>) {
    let code_in_catalogue = |at: &str, s: &str, errs: &mut Vec<String>| match Code::parse(s) {
        Err(e) => errs.push(format!("{at}: {s:?} is not a code: {e}")),
        Ok(c) if catalogue.get_code(&c).is_none() => {
            errs.push(format!("{at}: code {s} is not in claimline's catalogue"))
        }
        Ok(_) => {}
    };
    match kind {
        Kind::Bool if !v.is_boolean() => errs.push(format!("{at}: must be true or false, not {v}")),
        Kind::Bool => {}
        Kind::UnitMethod => {
            if !matches!(v.as_str(), Some("cms_total_time" | "per_code")) {
                errs.push(format!(
                    "{at}: unknown unit method {v} (cms_total_time or per_code)"
                ));
            }
        }
        Kind::Percent => {
            if !whole_up_to(Some(v), 100) {
                errs.push(format!(
                    "{at}: must be a whole number from 0 to 100, not {v}"
                ));
            }
        }
        Kind::Days => {
            if !(v.is_null() || v.as_u64().is_some_and(|n| (1..=3650).contains(&n))) {
                errs.push(format!(
                    "{at}: must be a whole number of days (1 to 3650) or null, not {v}"
                ));
            }
        }
        Kind::Limits => match v.as_object() {
            None => errs.push(format!("{at}: must be an object of code -> units a day")),
            Some(m) => {
                for (code, n) in m {
                    let at = format!("{at}.{code}");
                    code_in_catalogue(&at, code, errs);
                    if !whole_up_to(Some(n), 10_000) {
                        errs.push(format!(
                            "{at}: a limit must be a whole number of units (0 to 10000), not {n}"
                        ));
                    }
                }
            }
        },
        Kind::NotRecognized => match v.as_object() {
            None => errs.push(format!(
                "{at}: must be an object of code -> code to bill instead"
            )),
            Some(m) => {
                for (code, instead) in m {
                    let at = format!("{at}.{code}");
                    code_in_catalogue(&at, code, errs);
                    match instead.as_str().map(Code::parse) {
                        Some(Ok(_)) => {}
                        _ => errs.push(format!(
                            "{at}: what to bill instead must be a 5-character code, not {instead}"
                        )),
                    }
                }
            }
        },
        Kind::Ptp => match v.as_array() {
            None => errs.push(format!("{at}: must be an array of PTP pairs")),
            Some(pairs) => {
                for (i, pair) in pairs.iter().enumerate() {
                    check_ptp(&format!("{at}[{i}]"), pair, catalogue, errs);
                }
            }
        },
    }
}

const PTP_FIELDS: [&str; 6] = [
    "column1",
    "column2",
    "modifier_indicator",
    "effective",
    "deleted",
    "source",
];

fn check_ptp(at: &str, pair: &Value, catalogue: &Catalogue, errs: &mut Vec<String>) {
    let Some(obj) = pair.as_object() else {
        errs.push(format!(
            "{at}: a PTP pair is an object with two codes (column1, column2) and modifier_indicator, not {pair}"
        ));
        return;
    };
    let mut codes = Vec::new();
    for col in ["column1", "column2"] {
        match obj.get(col).and_then(Value::as_str).map(Code::parse) {
            Some(Ok(c)) if catalogue.get_code(&c).is_some() => codes.push(c),
            Some(Ok(c)) => errs.push(format!(
                "{at}.{col}: code {c} is not in claimline's catalogue"
            )),
            _ => errs.push(format!(
                "{at}: a PTP pair is two codes: {col} must be a 5-character code, not {}",
                obj.get(col).unwrap_or(&Value::Null)
            )),
        }
    }
    if codes.len() == 2 && codes[0] == codes[1] {
        errs.push(format!(
            "{at}: a PTP pair is two different codes, not {} twice",
            codes[0]
        ));
    }
    if !whole_up_to(obj.get("modifier_indicator"), 1) {
        errs.push(format!(
            "{at}.modifier_indicator: must be 0 (never together) or 1 (allowed with a distinct-service modifier), not {}",
            obj.get("modifier_indicator").unwrap_or(&Value::Null)
        ));
    }
    for date in ["effective", "deleted"] {
        match obj.get(date) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.parse::<chrono::NaiveDate>().is_ok() => {}
            Some(other) => errs.push(format!(
                "{at}.{date}: must be a date (YYYY-MM-DD) or null, not {other}"
            )),
        }
    }
    for key in obj.keys() {
        if !key.starts_with('_') && !PTP_FIELDS.contains(&key.as_str()) {
            errs.push(format!(
                "{at}.{key}: unknown field (a PTP pair has {})",
                PTP_FIELDS.join(", ")
            ));
        }
    }
}

pub(super) fn check_thresholds(v: &Value, errs: &mut Vec<String>) {
    let Some(list) = v.as_array() else {
        errs.push("therapy_thresholds: must be an array of {year, kx_cents, review_cents}".into());
        return;
    };
    for (i, t) in list.iter().enumerate() {
        let at = format!("therapy_thresholds[{i}]");
        let Some(obj) = t.as_object() else {
            errs.push(format!(
                "{at}: must be an object {{year, kx_cents, review_cents}}"
            ));
            continue;
        };
        for key in ["year", "kx_cents", "review_cents"] {
            if !whole_up_to(obj.get(key), 100_000_000) {
                errs.push(format!(
                    "{at}.{key}: must be a whole number, not {}",
                    obj.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
        for key in obj.keys() {
            if !key.starts_with('_')
                && !["year", "kx_cents", "review_cents", "source"].contains(&key.as_str())
            {
                errs.push(format!(
                    "{at}.{key}: unknown field (year, kx_cents, review_cents, source)"
                ));
            }
        }
    }
}

/// A whole number from 0 to `max`.
fn whole_up_to(v: Option<&Value>, max: u64) -> bool {
    v.and_then(Value::as_u64).is_some_and(|n| n <= max)
}
