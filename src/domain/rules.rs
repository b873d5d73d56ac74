//! The rule data: code catalogue, payer policies and edit table. They are
//! data files under `data/`, compiled in so the binary carries the exact
//! rule set its `rules_version` names, and parsed once at start-up.

use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::claim::{FlagCode, UnitMethod};
use super::values::{Code, Discipline, Plan};

/// Names the rule set (code + data) that produced a line.
pub const RULES_VERSION: &str = "claimline-rules-2026.12.2";

/// The built-in payer policies; a policy file (`domain/policy/`) is merged
/// over them.
pub(crate) const PAYERS_JSON: &str = include_str!("../../data/payers.json");

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
pub struct Rvu {
    pub work: f64,
    pub pe_nonfacility: f64,
    pub mp: f64,
}

impl Rvu {
    pub fn total(&self) -> f64 {
        self.work + self.pe_nonfacility + self.mp
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CodeInfo {
    pub code: Code,
    /// A 15-minute timed code; otherwise one unit a day.
    pub timed: bool,
    /// A procedure that requires direct one-on-one contact: documented as
    /// group or not one-on-one, its minutes are not timed minutes.
    #[serde(default)]
    pub one_on_one: bool,
    #[serde(default)]
    pub kind: Option<CodeKind>,
    /// The discipline the code belongs to, where it belongs to one.
    #[serde(default)]
    pub discipline: Option<Discipline>,
    pub description: String,
    /// The fee schedule's relative values: set from CMS's PPRRVU table in
    /// force on the date of service (`data/cms/`, or an imported release);
    /// `None`: no CMS row in reach, or not paid under the fee schedule.
    #[serde(default)]
    pub rvu: Option<Rvu>,
    /// PFS status B: bundled, never paid separately.
    #[serde(default)]
    pub bundled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    Evaluation,
    Reevaluation,
    Group,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Catalogue {
    /// Dollars per RVU: the conversion factor of the PPRRVU table in force
    /// (0 where none is).
    #[serde(default)]
    pub conversion_factor: f64,
    /// Sorted by code at load, for binary search.
    codes: Vec<CodeInfo>,
}

impl Catalogue {
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let mut c: Catalogue = serde_json::from_str(json)?;
        c.codes.sort_by_key(|info| info.code);
        if let Some(w) = c.codes.windows(2).find(|w| w[0].code == w[1].code) {
            return Err(serde::de::Error::custom(format!(
                "code {} is listed twice",
                w[0].code
            )));
        }
        Ok(c)
    }

    /// Every code, sorted.
    pub fn all(&self) -> &[CodeInfo] {
        &self.codes
    }

    /// Replaces the fee schedule: `rvus` gives the RVUs of the codes it
    /// covers; a catalogue code it does not cover gets none (no estimate).
    pub fn set_fee_schedule(
        &mut self,
        conversion_factor: f64,
        rvu: impl Fn(Code) -> Option<Rvu>,
        bundled: impl Fn(Code) -> bool,
    ) {
        self.conversion_factor = conversion_factor;
        for info in &mut self.codes {
            info.rvu = rvu(info.code);
            info.bundled = bundled(info.code);
        }
    }

    pub fn get_code(&self, code: &Code) -> Option<&CodeInfo> {
        let i = self
            .codes
            .binary_search_by_key(code, |info| info.code)
            .ok()?;
        Some(&self.codes[i])
    }
}

/// Look-ups by text, for the tests' worked examples.
#[cfg(test)]
impl Catalogue {
    pub fn get(&self, code: &str) -> Option<&CodeInfo> {
        self.get_code(&Code::parse(code).ok()?)
    }

    pub fn codes(&self) -> &[CodeInfo] {
        &self.codes
    }

    /// The national non-facility payment for one full unit, in cents.
    pub fn unit_payment_cents(&self, code: &str) -> Option<i64> {
        let rvu = self.get(code)?.rvu.as_ref()?;
        Some((rvu.total() * self.conversion_factor * 100.0).round() as i64)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PayerPolicy {
    pub unit_method: UnitMethod,
    #[serde(default)]
    pub daily_unit_limits: HashMap<Code, u32>,
    #[serde(default)]
    pub mppr: bool,
    #[serde(default = "hundred")]
    pub assistant_payment_percent: u32,
    #[serde(default)]
    pub require_plan_of_care: bool,
    /// Check the practitioner MUEs of the edit table.
    #[serde(default)]
    pub mue: bool,
    /// Add CQ/CO to units furnished by an assistant.
    #[serde(default)]
    pub assistant_modifiers: bool,
    /// The payer recognizes speech-language pathology assistants.
    #[serde(default = "yes")]
    pub slp_assistants: bool,
    /// Codes this payer does not pay, with what to bill instead.
    #[serde(default)]
    pub not_recognized: HashMap<Code, Code>,
    /// Days after the plan of care's certification began that it must be
    /// recertified.
    #[serde(default)]
    pub recertification_days: Option<u32>,
    /// Track the year-to-date therapy amount against the KX threshold.
    #[serde(default)]
    pub kx_threshold: bool,
    /// Apply CMS's NCCI PTP table in force (`data/cms/`, or an imported
    /// quarter).
    #[serde(default = "yes")]
    pub ncci: bool,
    /// The payer's own procedure-to-procedure pairs, beside (or instead of)
    /// CMS's: a commercial payer's policy, as data with its source. Never
    /// for Medicare or Medicaid, which apply CMS's table only.
    #[serde(default)]
    pub ptp: Vec<PtpEdit>,
    /// PFS status B codes are never paid separately (Medicare): the line
    /// gets BUNDLED_CODE and no expected payment.
    #[serde(default)]
    pub pfs_bundled: bool,
}

fn yes() -> bool {
    true
}

impl PayerPolicy {
    /// The most units of `code` this payer pays for one day, if it limits them.
    pub fn daily_unit_limit(&self, code: Code) -> Option<u32> {
        // A handful of limited codes: a scan beats hashing.
        self.daily_unit_limits
            .iter()
            .find(|(c, _)| **c == code)
            .map(|(_, n)| *n)
    }
}

fn hundred() -> u32 {
    100
}

#[derive(Debug, Clone, Deserialize)]
pub struct PayerPolicies {
    plans: HashMap<Plan, PayerPolicy>,
    #[serde(default)]
    payers: HashMap<String, PayerPolicy>,
    /// Medicare's therapy amounts per calendar year.
    #[serde(default)]
    therapy_thresholds: Vec<TherapyThreshold>,
}

/// One year's Medicare therapy amounts, in cents: past `kx_cents` a line
/// needs KX; past `review_cents` the claim may be picked for targeted
/// medical review.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct TherapyThreshold {
    pub year: i32,
    pub kx_cents: i64,
    pub review_cents: i64,
}

impl PayerPolicies {
    pub fn from_json(json: &str) -> Result<Self, String> {
        let p: PayerPolicies = serde_json::from_str(json).map_err(|e| e.to_string())?;
        for plan in [
            Plan::Medicare,
            Plan::Medicaid,
            Plan::Commercial,
            Plan::Other,
        ] {
            if !p.plans.contains_key(&plan) {
                return Err(format!("payer policies: no policy for plan {plan:?}"));
            }
        }
        Ok(p)
    }

    /// The year's therapy amounts, where the data has them.
    pub fn therapy_threshold(&self, year: i32) -> Option<TherapyThreshold> {
        self.therapy_thresholds
            .iter()
            .find(|t| t.year == year)
            .copied()
    }

    /// The payer's own policy where one is listed, else its plan's.
    pub fn for_payer(&self, payer_id: &str, plan: Plan) -> &PayerPolicy {
        if !self.payers.is_empty() {
            if let Some(p) = self.payers.get(payer_id) {
                return p;
            }
        }
        &self.plans[&plan]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct PtpEdit {
    pub column1: Code,
    pub column2: Code,
    /// 0: never together; 1: allowed with a distinct-service modifier on
    /// the column-2 line.
    pub modifier_indicator: u8,
    /// None: in force from the start of the table.
    pub effective: Option<NaiveDate>,
    pub deleted: Option<NaiveDate>,
}

impl PtpEdit {
    pub fn in_effect(&self, date: NaiveDate) -> bool {
        self.effective.is_none_or(|e| e <= date) && self.deleted.is_none_or(|d| date < d)
    }
}

/// A practitioner MUE: the most units of a code one provider bills one
/// patient on one date of service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Mue {
    pub code: Code,
    pub value: u32,
    /// MUE adjudication indicator: 1 line, 2 date of service (policy), 3
    /// date of service (clinical).
    pub adjudication_indicator: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NoSharedMinutes {
    pub code: Code,
    pub other: Code,
    pub flag: FlagCode,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EditTable {
    /// CMS's PTP rows in force: set from the table of the date of service.
    #[serde(default)]
    pub ptp: Vec<PtpEdit>,
    /// The codes whose pairs `ptp` covers; `None`: every code (a whole CMS
    /// quarter). A pair outside it gets NCCI_NOT_CHECKED.
    #[serde(skip)]
    pub ptp_coverage: Option<Vec<Code>>,
    #[serde(default)]
    pub mue: Vec<Mue>,
    pub no_shared_minutes: Vec<NoSharedMinutes>,
}

impl EditTable {
    pub fn mue(&self, code: Code) -> Option<&Mue> {
        self.mue.iter().find(|m| m.code == code)
    }
}

impl EditTable {
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Everything the evaluation needs besides the encounter.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Names this rule set on every line it produces: the built-in data's
    /// [`RULES_VERSION`], plus the CMS tables imported over it.
    pub version: std::borrow::Cow<'static, str>,
    pub catalogue: Catalogue,
    pub policies: PayerPolicies,
    pub edits: EditTable,
    /// The date of service's year's GPCIs by locality, where loaded.
    pub gpci: Option<std::sync::Arc<super::locality::GpciYear>>,
    /// Each billing NPI's Medicare locality (the service's setting).
    pub localities: std::sync::Arc<super::locality::ProviderLocalities>,
}

impl Rules {
    /// The rule set shipped in `data/`.
    pub fn builtin() -> &'static Rules {
        static RULES: OnceLock<Rules> = OnceLock::new();
        RULES.get_or_init(|| {
            Rules::from_json(
                include_str!("../../data/catalogue.json"),
                PAYERS_JSON,
                include_str!("../../data/edits.json"),
            )
            .expect("the data files shipped in data/ are valid (tested)")
        })
    }

    pub fn from_json(catalogue: &str, payers: &str, edits: &str) -> Result<Rules, String> {
        Ok(Rules {
            version: std::borrow::Cow::Borrowed(RULES_VERSION),
            catalogue: Catalogue::from_json(catalogue).map_err(|e| format!("catalogue: {e}"))?,
            policies: PayerPolicies::from_json(payers)?,
            edits: EditTable::from_json(edits).map_err(|e| format!("edit table: {e}"))?,
            gpci: None,
            localities: Default::default(),
        })
    }
}
