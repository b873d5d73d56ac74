//! The claim line of contract section 2: what the rules produce, and exactly
//! what goes on the `claim-lines` topics and into the `claim_lines` table.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

use super::values::{Code, Diagnosis, Modifier, Npi};
use crate::ascii::decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitMethod {
    /// CMS: pool the minutes of all timed codes of the day, then hand out units.
    CmsTotalTime,
    /// Each code on its own: 8 minutes for its first unit.
    PerCode,
}

impl UnitMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitMethod::CmsTotalTime => "cms_total_time",
            UnitMethod::PerCode => "per_code",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Validated,
    NeedsReview,
    Void,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Validated => "validated",
            Status::NeedsReview => "needs_review",
            Status::Void => "void",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    /// Holds the line for review.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The contract's flag codes (section 3) plus claimline's own extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlagCode {
    NotOneOnOne,
    #[serde(rename = "BELOW_8_MINUTES")]
    Below8Minutes,
    #[serde(rename = "OVERLAP_97535")]
    Overlap97535,
    #[serde(rename = "OVERLAP_97110")]
    Overlap97110,
    NcciPtp,
    #[serde(rename = "MODIFIER_59_MISUSE")]
    Modifier59Misuse,
    UnitsOverLimit,
    MissingDiagnosis,
    MissingTimeDocumentation,
    MinutesMismatch,
    PlanOfCareExpired,
    NoFunctionalActivity,
    AssistantModifier,
    SharedMinutes,
    AssistantNotAllowed,
    NotRecognizedByPayer,
    DisciplineMismatch,
    RecertificationDue,
    TooManyModifiers,
    /// Extension: the plan requires a plan of care and the event has none.
    MissingPlanOfCare,
    /// Extension: the code is not in the catalogue, so its units are unknown.
    UnknownCode,
    /// Medicare: the year-to-date therapy amount passes the KX threshold.
    #[serde(rename = "KX_THRESHOLD")]
    KxThreshold,
    /// Extension: the day has more encounters than claimline pools; this
    /// one's units were counted alone.
    DayNotPooled,
    /// Info: two codes of the day form a pair the PTP table in force does
    /// not cover.
    NcciNotChecked,
    /// Warning: the payer never pays this code separately (PFS status B).
    BundledCode,
    /// Info: the line has 0 units; not billable.
    NoUnits,
    /// Error: a service's documented times are not on the date of service.
    ServiceDateMismatch,
    /// Error: two providers' services of one patient, payer and date
    /// document the same clock minutes.
    CoTreatment,
}

impl FlagCode {
    pub const ALL: [FlagCode; 28] = [
        FlagCode::NotOneOnOne,
        FlagCode::Below8Minutes,
        FlagCode::Overlap97535,
        FlagCode::Overlap97110,
        FlagCode::NcciPtp,
        FlagCode::Modifier59Misuse,
        FlagCode::UnitsOverLimit,
        FlagCode::MissingDiagnosis,
        FlagCode::MissingTimeDocumentation,
        FlagCode::MinutesMismatch,
        FlagCode::PlanOfCareExpired,
        FlagCode::NoFunctionalActivity,
        FlagCode::AssistantModifier,
        FlagCode::SharedMinutes,
        FlagCode::AssistantNotAllowed,
        FlagCode::NotRecognizedByPayer,
        FlagCode::DisciplineMismatch,
        FlagCode::RecertificationDue,
        FlagCode::TooManyModifiers,
        FlagCode::MissingPlanOfCare,
        FlagCode::UnknownCode,
        FlagCode::KxThreshold,
        FlagCode::DayNotPooled,
        FlagCode::NcciNotChecked,
        FlagCode::BundledCode,
        FlagCode::NoUnits,
        FlagCode::ServiceDateMismatch,
        FlagCode::CoTreatment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlagCode::NotOneOnOne => "NOT_ONE_ON_ONE",
            FlagCode::Below8Minutes => "BELOW_8_MINUTES",
            FlagCode::Overlap97535 => "OVERLAP_97535",
            FlagCode::Overlap97110 => "OVERLAP_97110",
            FlagCode::NcciPtp => "NCCI_PTP",
            FlagCode::Modifier59Misuse => "MODIFIER_59_MISUSE",
            FlagCode::UnitsOverLimit => "UNITS_OVER_LIMIT",
            FlagCode::MissingDiagnosis => "MISSING_DIAGNOSIS",
            FlagCode::MissingTimeDocumentation => "MISSING_TIME_DOCUMENTATION",
            FlagCode::MinutesMismatch => "MINUTES_MISMATCH",
            FlagCode::PlanOfCareExpired => "PLAN_OF_CARE_EXPIRED",
            FlagCode::NoFunctionalActivity => "NO_FUNCTIONAL_ACTIVITY",
            FlagCode::AssistantModifier => "ASSISTANT_MODIFIER",
            FlagCode::SharedMinutes => "SHARED_MINUTES",
            FlagCode::AssistantNotAllowed => "ASSISTANT_NOT_ALLOWED",
            FlagCode::NotRecognizedByPayer => "NOT_RECOGNIZED_BY_PAYER",
            FlagCode::DisciplineMismatch => "DISCIPLINE_MISMATCH",
            FlagCode::RecertificationDue => "RECERTIFICATION_DUE",
            FlagCode::TooManyModifiers => "TOO_MANY_MODIFIERS",
            FlagCode::MissingPlanOfCare => "MISSING_PLAN_OF_CARE",
            FlagCode::UnknownCode => "UNKNOWN_CODE",
            FlagCode::KxThreshold => "KX_THRESHOLD",
            FlagCode::DayNotPooled => "DAY_NOT_POOLED",
            FlagCode::NcciNotChecked => "NCCI_NOT_CHECKED",
            FlagCode::BundledCode => "BUNDLED_CODE",
            FlagCode::NoUnits => "NO_UNITS",
            FlagCode::ServiceDateMismatch => "SERVICE_DATE_MISMATCH",
            FlagCode::CoTreatment => "CO_TREATMENT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Flag {
    pub code: FlagCode,
    pub severity: Severity,
    /// The plain-language reason, and what a biller does about it.
    pub message: String,
    #[schemars(with = "Vec<String>")]
    pub related_codes: Vec<Code>,
}

// The fields every line of an encounter shares are reference-counted and
// the codes are inline values, so the lines of an event cost little more
// than their flags.
/// One claim line (contract section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "ClaimLine")]
pub struct ClaimLine {
    /// `{encounter_id}:{version}:{line_no}`
    pub claim_line_id: String,
    #[schemars(with = "String")]
    pub encounter_id: Arc<str>,
    pub encounter_version: u32,
    #[schemars(with = "String")]
    pub event_id: Arc<str>,
    #[serde(
        serialize_with = "crate::dates::date::serialize",
        deserialize_with = "crate::dates::date::required"
    )]
    pub date_of_service: NaiveDate,
    #[schemars(with = "String")]
    pub patient_id: Arc<str>,
    #[schemars(with = "String")]
    pub provider_npi: Npi,
    #[schemars(with = "String")]
    pub payer_id: Arc<str>,
    #[schemars(range(min = 1))]
    pub line_no: u32,
    #[schemars(with = "String")]
    pub code: Code,
    pub units: u32,
    pub minutes: u32,
    /// In billing order.
    #[schemars(with = "Vec<String>")]
    pub modifiers: Vec<Modifier>,
    pub unit_method: UnitMethod,
    pub status: Status,
    pub flags: Vec<Flag>,
    #[schemars(with = "Vec<String>")]
    pub diagnoses: Arc<[Diagnosis]>,
    /// An estimate, never a promise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_payment_cents: Option<i64>,
    pub rules_version: Cow<'static, str>,
    /// The Medicare therapy group whose year-to-date amount this line's
    /// payment counts toward (KX threshold); stored, not published.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub kx_group: Option<KxGroup>,
}

/// Medicare's therapy threshold groups: PT and SLP share one amount, OT
/// has its own (SSA 1833(g)(1)-(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KxGroup {
    PtSlp,
    Ot,
}

impl KxGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            KxGroup::PtSlp => "pt_slp",
            KxGroup::Ot => "ot",
        }
    }
}

impl ClaimLine {
    pub fn id(encounter_id: &str, version: u32, line_no: u32) -> String {
        let mut id = String::with_capacity(encounter_id.len() + 16);
        id.push_str(encounter_id);
        let mut buf = [0u8; 20];
        for n in [version, line_no] {
            id.push(':');
            id.push_str(decimal(u64::from(n), &mut buf));
        }
        id
    }

    /// The `void` line that cancels this one downstream: the same line,
    /// same id, status `void`, carrying the id of the event that voided it.
    /// Readers dedupe on (`claim_line_id`, `status`).
    pub fn voided(&self, event_id: &Arc<str>) -> ClaimLine {
        ClaimLine {
            event_id: event_id.clone(),
            status: Status::Void,
            ..self.clone()
        }
    }
}
