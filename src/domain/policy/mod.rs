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
//! the `rules_version` (`claimline-rules-2026.12.2+policy.0123456789ab`),
//! so every line names the policy that produced it.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::rules::{Catalogue, PayerPolicies, Rules, PAYERS_JSON};

mod check;
use check::{check_policy, check_thresholds, PLANS};

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
