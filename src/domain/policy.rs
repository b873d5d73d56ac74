//! Payer policy as data: a JSON file given at start-up (`--payer-policy`,
//! `CLAIMLINE_PAYER_POLICY`) merged over the built-in `data/payers.json`,
//! so a commercial payer's policy needs no rebuild. Pure: the caller reads
//! the file; this checks it, merges it and names it.
//!
//! The file has the layout of `data/payers.json`, every part optional:
//! `plans` (medicare, medicaid, commercial, other), `payers` (by payer id)
//! and `therapy_thresholds`. The merge: a plan or payer id the file names
//! keeps its built-in fields except those the file gives, each of which
//! replaces the built-in value whole (a `daily_unit_limits` object replaces
//! the built-in limits, it does not add to them); a payer id the built-in
//! data does not list is added, starting from the policy of the plan named
//! by `extends` (or from the defaults, then `unit_method` is required); a
//! threshold year replaces that year's. Keys starting with `_` are
//! comments. Anything else is refused with its path in the file.
//!
//! The file's fingerprint (the first 12 hex digits of its sha256) extends
//! the `rules_version` (`claimline-rules-2026.12.1+policy.0123456789ab`),
//! so every line names the policy that produced it.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::rules::{Catalogue, PayerPolicies, Rules, PAYERS_JSON};
use super::values::Code;

/// The fields of a payer policy ([`super::rules::PayerPolicy`]), each with
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

const PLANS: [&str; 4] = ["medicare", "medicaid", "commercial", "other"];

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

/// A policy file that failed its checks: every problem, each with its
/// path in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub problems: Vec<String>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payer policy {}: {}",
            self.file,
            self.problems.join("; ")
        )
    }
}

impl std::error::Error for PolicyError {}

/// A checked policy file.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    pub name: String,
    /// The first 12 hex digits of the file's sha256.
    pub fingerprint: String,
    value: Map<String, Value>,
}

impl PolicyFile {
    /// Checks `text` (the content of the file `name`) against the
    /// catalogue's codes.
    pub fn parse(name: &str, text: &str, catalogue: &Catalogue) -> Result<PolicyFile, PolicyError> {
        let fail = |problems: Vec<String>| PolicyError {
            file: name.to_owned(),
            problems,
        };
        let text_no_bom = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = serde_json::from_str(text_no_bom)
            .map_err(|e| fail(vec![format!("not valid JSON: {e}")]))?;
        let Value::Object(top) = value else {
            return Err(fail(vec!["the file must be one JSON object".into()]));
        };
        let mut errs = Vec::new();
        for (key, v) in &top {
            match key.as_str() {
                k if k.starts_with('_') => {}
                "plans" => match v.as_object() {
                    Some(plans) => {
                        for (plan, p) in plans {
                            let path = format!("plans.{plan}");
                            if !PLANS.contains(&plan.as_str()) {
                                errs.push(format!(
                                    "{path}: unknown plan (medicare, medicaid, commercial or other)"
                                ));
                            } else {
                                check_policy(&path, p, None, catalogue, &mut errs);
                            }
                        }
                    }
                    None => errs.push("plans: must be an object of plan -> policy".into()),
                },
                "payers" => match v.as_object() {
                    Some(payers) => {
                        let builtin: Map<String, Value> = serde_json::from_str(PAYERS_JSON)
                            .expect("data/payers.json is valid (tested)");
                        let listed = builtin.get("payers").and_then(Value::as_object);
                        for (id, p) in payers {
                            let new = !listed.is_some_and(|l| l.contains_key(id));
                            let path = format!("payers.{id}");
                            check_policy(&path, p, Some(new), catalogue, &mut errs);
                        }
                    }
                    None => errs.push("payers: must be an object of payer id -> policy".into()),
                },
                "therapy_thresholds" => check_thresholds(v, &mut errs),
                other => errs.push(format!(
                    "{other}: unknown field (plans, payers or therapy_thresholds)"
                )),
            }
        }
        if !errs.is_empty() {
            return Err(fail(errs));
        }
        Ok(PolicyFile {
            name: name.to_owned(),
            fingerprint: fingerprint(text.as_bytes()),
            value: top,
        })
    }

    /// `base` (the built-in rules) with this file's policies merged over
    /// the built-in ones, and a version that names the file.
    pub fn apply(&self, base: &Rules) -> Result<Rules, PolicyError> {
        let fail = |problem: String| PolicyError {
            file: self.name.clone(),
            problems: vec![problem],
        };
        let mut merged: Map<String, Value> =
            serde_json::from_str(PAYERS_JSON).expect("data/payers.json is valid (tested)");
        if let Some(Value::Object(plans)) = self.value.get("plans") {
            let base_plans = object_at(&mut merged, "plans");
            for (plan, p) in plans {
                let into = object_at(base_plans, plan);
                overlay(into, p);
            }
        }
        if let Some(Value::Object(payers)) = self.value.get("payers") {
            let base_payers = merged
                .get("payers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let plans = merged
                .get("plans")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let out = object_at(&mut merged, "payers");
            for (id, p) in payers {
                let start = match (
                    base_payers.get(id),
                    p.get("extends").and_then(Value::as_str),
                ) {
                    // A listed payer keeps its own fields unless it is
                    // re-based on a plan.
                    (Some(existing), None) => existing.clone(),
                    (_, Some(plan)) => plans.get(plan).cloned().unwrap_or_default(),
                    (None, None) => Value::Object(Map::new()),
                };
                let mut policy = start.as_object().cloned().unwrap_or_default();
                overlay(&mut policy, p);
                out.insert(id.clone(), Value::Object(policy));
            }
        }
        if let Some(Value::Array(years)) = self.value.get("therapy_thresholds") {
            let list = merged
                .entry("therapy_thresholds")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                for y in years {
                    list.retain(|t| t.get("year") != y.get("year"));
                    list.push(y.clone());
                }
            }
        }
        let policies = PayerPolicies::from_json(&Value::Object(merged).to_string())
            .map_err(|e| fail(format!("after the merge: {e}")))?;
        let mut rules = base.clone();
        rules.policies = policies;
        rules.version = Cow::Owned(format!("{}+policy.{}", base.version, self.fingerprint));
        Ok(rules)
    }
}

/// The first 12 hex digits of the sha256 of `bytes`.
fn fingerprint(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The object under `key`, created when missing.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("an object")
}

/// The file's fields (not its comments or `extends`) over `into`.
fn overlay(into: &mut Map<String, Value>, from: &Value) {
    for (k, v) in from.as_object().into_iter().flatten() {
        if !k.starts_with('_') && k != "extends" {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// `new_payer`: None for a plan; for a payer id, whether the built-in data
/// lacks it.
fn check_policy(
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
            if !v.as_u64().is_some_and(|n| n <= 100) {
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
                    if !n.as_u64().is_some_and(|n| n <= 10_000) {
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
    if !obj
        .get("modifier_indicator")
        .and_then(Value::as_u64)
        .is_some_and(|m| m <= 1)
    {
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

fn check_thresholds(v: &Value, errs: &mut Vec<String>) {
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
            if !obj
                .get(key)
                .and_then(Value::as_u64)
                .is_some_and(|n| n <= 100_000_000)
            {
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
