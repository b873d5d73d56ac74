//! One encounter in, its claim lines out: units, modifiers, flags, status
//! and an expected payment. Pure: no I/O, no clock, no randomness.

use std::borrow::Cow;

use super::claim::{ClaimLine, Flag, FlagCode, Severity, Status, UnitMethod};
use super::encounter::{Encounter, Service};
use super::rules::{CodeInfo, PayerPolicy, Rules, RULES_VERSION};
use super::units;
use super::values::{Code, Discipline, EventType, Modifier};

const THERAPEUTIC_ACTIVITIES: Code = Code::lit(b"97530");
const GROUP_THERAPY: Code = Code::lit(b"97150");

/// The services of one code on the date of service: one claim line.
struct Draft<'a> {
    code: Code,
    info: Option<&'a CodeInfo>,
    /// All the encounter's services; [`Draft::services`] picks this code's.
    all: &'a [Service],
    minutes: u32,
    assistant_minutes: u32,
    units: u32,
    modifiers: Vec<Modifier>,
    flags: Vec<Flag>,
}

impl<'a> Draft<'a> {
    /// This line's services, in the order documented.
    fn services(&self) -> impl Iterator<Item = &'a Service> + '_ {
        self.all.iter().filter(|s| s.code == self.code)
    }

    fn timed(&self) -> bool {
        self.info.is_some_and(|i| i.timed)
    }

    fn has_distinct_modifier(&self) -> bool {
        self.services()
            .flat_map(|s| &s.modifiers)
            .any(Modifier::is_distinct_service)
    }

    fn flag(&mut self, code: FlagCode, severity: Severity, message: String, related: &[Code]) {
        self.flags.push(Flag {
            code,
            severity,
            message,
            related_codes: related.to_vec(),
        });
    }
}

/// Minutes that the documented times of two lines share.
fn shared_minutes(a: &Draft, b: &Draft) -> u32 {
    let mut total = 0;
    for sa in a.services() {
        for sb in b.services() {
            if let (Some(ia), Some(ib)) = (sa.interval, sb.interval) {
                total += ia.overlap_minutes(&ib);
            }
        }
    }
    total
}

/// Evaluates one encounter. A `voided` event yields no lines: voiding what
/// was published before is the pipeline's job, since only it knows what was.
pub fn evaluate(enc: &Encounter, rules: &Rules) -> Vec<ClaimLine> {
    if enc.event_type == EventType::Voided {
        return Vec::new();
    }
    let policy = rules.policies.for_payer(&enc.payer_id, enc.plan);
    let mut drafts = group_by_code(enc, rules);
    assign_units(&mut drafts, policy.unit_method);
    for d in &mut drafts {
        assign_modifiers(d, enc.discipline);
        line_flags(d, enc, policy);
    }
    pair_flags(&mut drafts, enc, rules);
    let payments = expected_payments(&drafts, rules, policy);

    drafts
        .into_iter()
        .zip(payments)
        .enumerate()
        .map(|(i, (d, payment))| {
            let line_no = i as u32 + 1;
            let status = if d.flags.iter().any(|f| f.severity == Severity::Error) {
                Status::NeedsReview
            } else {
                Status::Validated
            };
            ClaimLine {
                claim_line_id: ClaimLine::id(&enc.encounter_id, enc.version, line_no),
                encounter_id: enc.encounter_id.clone(),
                encounter_version: enc.version,
                event_id: enc.event_id.clone(),
                date_of_service: enc.date_of_service,
                patient_id: enc.patient_id.shared(),
                provider_npi: enc.npi,
                payer_id: enc.payer_id.clone(),
                line_no,
                code: d.code,
                units: d.units,
                minutes: d.minutes,
                modifiers: d.modifiers,
                unit_method: policy.unit_method,
                status,
                flags: d.flags,
                diagnoses: enc.diagnoses.clone(),
                expected_payment_cents: payment,
                rules_version: Cow::Borrowed(RULES_VERSION),
            }
        })
        .collect()
}

/// Services with the same code on the same date are one line, in the order
/// each code first appears.
fn group_by_code<'a>(enc: &'a Encounter, rules: &'a Rules) -> Vec<Draft<'a>> {
    let mut drafts: Vec<Draft<'a>> = Vec::with_capacity(enc.services.len());
    for s in &enc.services {
        match drafts.iter_mut().find(|d| d.code == s.code) {
            Some(d) => {
                d.minutes += s.minutes;
                d.assistant_minutes += s.assistant_minutes;
            }
            None => drafts.push(Draft {
                code: s.code,
                info: rules.catalogue.get_code(&s.code),
                all: &enc.services,
                minutes: s.minutes,
                assistant_minutes: s.assistant_minutes,
                units: 0,
                modifiers: Vec::new(),
                flags: Vec::new(),
            }),
        }
    }
    drafts
}

fn assign_units(drafts: &mut [Draft], method: UnitMethod) {
    let timed: Vec<usize> = (0..drafts.len()).filter(|&i| drafts[i].timed()).collect();
    let minutes: Vec<u32> = timed.iter().map(|&i| drafts[i].minutes).collect();
    for (&i, u) in timed.iter().zip(units::allocate(method, &minutes)) {
        drafts[i].units = u;
    }
    for d in drafts.iter_mut().filter(|d| !d.timed()) {
        if d.info.is_some() {
            // Untimed: one unit a day, whatever the minutes.
            d.units = 1;
        } else {
            let code = d.code;
            d.flag(
                FlagCode::UnknownCode,
                Severity::Error,
                format!("{code} is not in claimline's code catalogue, so whether it is timed and how many units it earns is unknown; check the code or bill it by hand."),
                &[],
            );
        }
    }
}

/// GP/GO/GN first, then CQ/CO, then the clinician's own modifiers.
fn assign_modifiers(d: &mut Draft, discipline: Discipline) {
    let (therapy, assistant) = match discipline {
        Discipline::PT => (Modifier::GP, Some(Modifier::CQ)),
        Discipline::OT => (Modifier::GO, Some(Modifier::CO)),
        Discipline::SLP => (Modifier::GN, None),
    };
    let mut mods = Vec::with_capacity(4);
    mods.push(therapy);
    // De minimis: CQ/CO when an assistant furnished more than 10% of the minutes.
    if let Some(a) = assistant {
        if d.minutes > 0 && d.assistant_minutes * 10 > d.minutes {
            mods.push(a);
            let (share, code) = (d.assistant_minutes * 100 / d.minutes, d.code);
            d.flag(
                FlagCode::AssistantModifier,
                Severity::Info,
                format!("{a} added to {code}: an assistant furnished {share}% of its minutes (over the 10% de minimis), so Medicare pays 85% of the fee schedule for it."),
                &[],
            );
        }
    }
    for m in d.services().flat_map(|s| &s.modifiers) {
        if !mods.contains(m) {
            mods.push(*m);
        }
    }
    d.modifiers = mods;
}

fn line_flags(d: &mut Draft, enc: &Encounter, policy: &PayerPolicy) {
    let code = d.code;
    if enc.diagnoses.is_empty() {
        d.flag(
            FlagCode::MissingDiagnosis,
            Severity::Error,
            "The encounter has no diagnosis, so medical necessity is not shown; add the ICD-10-CM codes that justify the treatment.".into(),
            &[],
        );
    }
    match &enc.plan_of_care {
        Some(poc)
            if enc.date_of_service < poc.certified_from
                || enc.date_of_service > poc.certified_through =>
        {
            d.flag(
                FlagCode::PlanOfCareExpired,
                Severity::Error,
                format!(
                    "The date of service {} is outside the plan of care's certification ({} to {}); get the plan of care recertified before billing.",
                    enc.date_of_service, poc.certified_from, poc.certified_through
                ),
                &[],
            );
        }
        None if policy.require_plan_of_care => d.flag(
            FlagCode::MissingPlanOfCare,
            Severity::Warning,
            "The payer requires a certified plan of care and the encounter names none; attach it before billing.".into(),
            &[],
        ),
        _ => {}
    }
    if code == THERAPEUTIC_ACTIVITIES {
        if d.services()
            .any(|s| !s.one_on_one || s.group_size.is_some_and(|g| g > 1))
        {
            d.flag(
                FlagCode::NotOneOnOne,
                Severity::Error,
                "97530 requires direct one-on-one contact, but the service was documented as group or not one-on-one; bill group therapy as 97150.".into(),
                &[GROUP_THERAPY],
            );
        }
        if d.services().all(|s| s.activities == 0) {
            d.flag(
                FlagCode::NoFunctionalActivity,
                Severity::Warning,
                "97530 documents no functional activity (transfers, balance, stairs, simulated work); add the dynamic activities performed or the payer may deny it.".into(),
                &[],
            );
        }
    }
    if d.timed() {
        if d.minutes < 8 {
            let message = match policy.unit_method {
                UnitMethod::PerCode => format!("{code} has {} minutes, under the 8 needed for a unit, so this payer pays no unit for it.", d.minutes),
                UnitMethod::CmsTotalTime => format!("{code} has {} minutes, under 8, so it earns no unit of its own; under the total-time method it got {} unit(s) from the pooled minutes.", d.minutes, d.units),
            };
            d.flag(FlagCode::Below8Minutes, Severity::Warning, message, &[]);
        }
        if d.services().any(|s| s.interval.is_none()) {
            d.flag(
                FlagCode::MissingTimeDocumentation,
                Severity::Warning,
                format!("{code} is a timed code but the record has no start and stop times for it; document them so the minutes can be audited."),
                &[],
            );
        }
    }
    let mismatch = d.services().find(|s| s.minutes_mismatch());
    if let Some(s) = mismatch {
        let msg = format!(
            "Line {} of {code} documents {} minutes but its start and stop times span {}; the times were used. Correct whichever is wrong.",
            s.line_id,
            s.documented_minutes.unwrap_or(0),
            s.minutes
        );
        d.flag(FlagCode::MinutesMismatch, Severity::Warning, msg, &[]);
    }
    if let Some(limit) = policy.daily_unit_limit(code) {
        if d.units > limit {
            d.flag(
                FlagCode::UnitsOverLimit,
                Severity::Error,
                format!("{} units of {code} exceed this payer's limit of {limit} a day; bill at most {limit} or document the medical necessity of the extra time.", d.units),
                &[],
            );
        }
    }
}

/// Flags that need two lines: shared minutes, procedure-to-procedure edits
/// and distinct-service modifiers on services that were not distinct.
fn pair_flags(drafts: &mut [Draft], enc: &Encounter, rules: &Rules) {
    let index = |code: Code, drafts: &[Draft]| drafts.iter().position(|d| d.code == code);
    // (line, other line, shared minutes) for every pair the rules relate.
    let mut pairs: Vec<(usize, usize, u32)> = Vec::new();

    for rule in &rules.edits.no_shared_minutes {
        let (Some(a), Some(b)) = (index(rule.code, drafts), index(rule.other, drafts)) else {
            continue;
        };
        let shared = shared_minutes(&drafts[a], &drafts[b]);
        pairs.push((a, b, shared));
        if shared > 0 {
            for (x, y) in [(a, b), (b, a)] {
                let (cx, cy) = (drafts[x].code, drafts[y].code);
                drafts[x].flag(
                    rule.flag,
                    Severity::Error,
                    format!("{cx} and {cy} share {shared} documented minute(s); the same minutes cannot be billed under both codes. Correct the start and stop times or bill the shared time under one code."),
                    &[cy],
                );
            }
        }
    }

    for edit in rules.edits.ptp.iter() {
        if !edit.in_effect(enc.date_of_service) {
            continue;
        }
        let (Some(c1), Some(c2)) = (index(edit.column1, drafts), index(edit.column2, drafts))
        else {
            continue;
        };
        let shared = shared_minutes(&drafts[c1], &drafts[c2]);
        pairs.push((c1, c2, shared));
        let (col1, col2) = (edit.column1, edit.column2);
        let modifier = drafts[c2].has_distinct_modifier() || drafts[c1].has_distinct_modifier();
        let (severity, message) = match (edit.modifier_indicator, modifier) {
            (0, _) => (Severity::Error, format!("{col2} is bundled into {col1} on this date (edit modifier indicator 0); no modifier allows both, so {col2} will be denied. Remove it or correct the codes.")),
            (_, false) => (Severity::Error, format!("{col2} is bundled into {col1} (edit modifier indicator 1); bill both only if they were truly distinct services, with 59 or XE/XS/XP/XU on {col2}, otherwise remove {col2}.")),
            (_, true) => (Severity::Info, format!("{col2} and {col1} form an edit pair billed with a distinct-service modifier; keep the documentation that shows separate time and purpose.")),
        };
        drafts[c2].flag(FlagCode::NcciPtp, severity, message, &[col1]);
    }

    for (a, b, shared) in pairs {
        if shared == 0 {
            continue;
        }
        for (x, y) in [(a, b), (b, a)] {
            let already = drafts[x].flags.iter().any(|f| {
                f.code == FlagCode::Modifier59Misuse && f.related_codes.contains(&drafts[y].code)
            });
            if drafts[x].has_distinct_modifier() && !already {
                let (cx, cy) = (drafts[x].code, drafts[y].code);
                drafts[x].flag(
                    FlagCode::Modifier59Misuse,
                    Severity::Error,
                    format!("{cx} carries 59/XE/XS/XP/XU but its minutes overlap {cy} by {shared} minute(s); the modifier is only correct for truly distinct services. Remove the modifier or correct the times."),
                    &[cy],
                );
            }
        }
    }
}

/// The expected payment of each line, in cents: the catalogue's national
/// rate, with the multiple procedure payment reduction where the payer
/// applies it (the unit with the highest practice expense of the day is paid
/// in full, every other unit loses half its practice-expense share), and
/// CQ/CO lines paid the payer's assistant percentage.
fn expected_payments(drafts: &[Draft], rules: &Rules, policy: &PayerPolicy) -> Vec<Option<i64>> {
    let cf = rules.catalogue.conversion_factor;
    let full_unit_line = if policy.mppr {
        drafts
            .iter()
            .enumerate()
            .filter(|(_, d)| d.units > 0)
            .filter_map(|(i, d)| Some((i, d.info?.rvu.as_ref()?.pe_nonfacility)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)
    } else {
        None
    };
    drafts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let rvu = d.info?.rvu.as_ref()?;
            // Fee schedules are quoted per unit in cents: round there.
            let cents = |rvus: f64| (rvus * cf * 100.0).round() as i64;
            let full = cents(rvu.total());
            let base = if policy.mppr {
                let reduced = cents(rvu.work + rvu.pe_nonfacility * 0.5 + rvu.mp);
                let full_units = i64::from(full_unit_line == Some(i)).min(i64::from(d.units));
                full_units * full + (i64::from(d.units) - full_units) * reduced
            } else {
                i64::from(d.units) * full
            };
            let percent = if d.modifiers.iter().any(Modifier::is_assistant) {
                f64::from(policy.assistant_payment_percent)
            } else {
                100.0
            };
            Some((base as f64 * percent / 100.0).round() as i64)
        })
        .collect()
}
