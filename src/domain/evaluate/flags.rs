//! The checks that raise flags: per code (documentation, one-on-one,
//! limits, who may furnish it, what the payer pays) and per pair of codes
//! (shared minutes, procedure-to-procedure edits, distinct-service
//! modifiers on services that were not distinct).

use chrono::Days;

use super::minutes::{documented_as_group, Counted};
use super::ncci::{has_distinct_modifier, not_checked, ptp_edits, ptp_flag, two};
use super::who::who_and_what;
use super::Draft;
use crate::domain::claim::{FlagCode, Severity, UnitMethod};
use crate::domain::encounter::Encounter;
use crate::domain::rules::{CodeKind, PayerPolicy, Rules};
use crate::domain::values::Code;

const THERAPEUTIC_ACTIVITIES: Code = Code::lit(b"97530");
const GROUP_THERAPY: Code = Code::lit(b"97150");

pub(super) fn line_flags(
    d: &mut Draft,
    enc: &Encounter,
    policy: &PayerPolicy,
    rules: &Rules,
    counted: &Counted,
) {
    let code = d.code;
    documentation(d, enc, policy);
    // The minutes documented as group or not one-on-one, if any were.
    let group_minutes = {
        let mut group = d
            .services
            .iter()
            .filter(|&&i| counted.not_one_on_one[i])
            .peekable();
        group
            .peek()
            .is_some()
            .then(|| group.map(|&i| enc.services[i].minutes).sum::<u32>())
    };
    if let Some(minutes) = group_minutes {
        d.flag(
            FlagCode::NotOneOnOne,
            Severity::Error,
            format!("{code} requires direct one-on-one contact, but {minutes} of its minutes were documented as group or not one-on-one; those minutes are not timed minutes and earn no unit. Bill group therapy as 97150 (one untimed unit)."),
            &[GROUP_THERAPY],
        );
    }
    if code == THERAPEUTIC_ACTIVITIES && d.services(&enc.services).all(|s| s.activities == 0) {
        d.flag(
            FlagCode::NoFunctionalActivity,
            Severity::Warning,
            "97530 documents no functional activity (transfers, balance, stairs, simulated work); add the dynamic activities performed or the payer may deny it.".into(),
            &[],
        );
    }
    if d.timed() {
        let all_group = d.services(&enc.services).all(documented_as_group);
        if d.minutes < 8 && !all_group {
            let message = match policy.unit_method {
                UnitMethod::PerCode => format!("{code} has {} minutes, under the 8 needed for a unit, so this payer pays no unit for it.", d.minutes),
                UnitMethod::CmsTotalTime => format!("{code} has {} minutes, under 8, so it earns no unit of its own; under the total-time method it got {} unit(s) from the pooled minutes.", d.minutes, d.units),
            };
            d.flag(FlagCode::Below8Minutes, Severity::Warning, message, &[]);
        }
        if d.services(&enc.services).any(|s| s.interval.is_none()) {
            d.flag(
                FlagCode::MissingTimeDocumentation,
                Severity::Warning,
                format!("{code} is a timed code but the record has no start and stop times for it; document them so the minutes can be audited."),
                &[],
            );
        }
    }
    let mismatch = d.services(&enc.services).find(|s| s.minutes_mismatch()).map(|s| {
        format!(
            "Line {} of {code} documents {} minutes but its start and stop times span {}; the times were used. Correct whichever is wrong.",
            s.line_id,
            s.documented_minutes.unwrap_or(0),
            s.minutes
        )
    });
    if let Some(msg) = mismatch {
        d.flag(FlagCode::MinutesMismatch, Severity::Warning, msg, &[]);
    }
    if d.timed() && d.units == 0 {
        let why = if d.services(&enc.services).all(documented_as_group) {
            "its minutes were documented as group or not one-on-one".to_owned()
        } else if d.minutes < 8 {
            format!(
                "it has {} timed minute(s), under the 8 a unit needs",
                d.minutes
            )
        } else {
            "its minutes were counted under the day's other codes (the total-time method gives the day's units to the codes with the most minutes)".to_owned()
        };
        d.flag(
            FlagCode::NoUnits,
            Severity::Info,
            format!("{code} has 0 units: {why}. The line is not billable; do not submit it as a $0 line."),
            &[],
        );
    }
    limits(d, policy, rules);
    who_and_what(d, enc, policy);
}

/// Medical necessity and the plan of care.
fn documentation(d: &mut Draft, enc: &Encounter, policy: &PayerPolicy) {
    let dos = enc.date_of_service;
    let elsewhere: Vec<(String, chrono::NaiveDate)> = d
        .services(&enc.services)
        .filter_map(|s| Some((s.line_id.to_string(), s.furnished_on?)))
        .filter(|(_, day)| *day != dos)
        .collect();
    for (line_id, day) in elsewhere {
        let code = d.code;
        d.flag(
            FlagCode::ServiceDateMismatch,
            Severity::Error,
            format!("Line {line_id} of {code} documents times on {day}, not on the date of service {dos}: a claim line's date is the date the service was furnished. Correct the date of service or the times."),
            &[],
        );
    }
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
        Some(poc) => {
            // Pub 100-02, ch. 15, sec. 220.1.3; 42 CFR 424.24(c): a plan
            // of care is certified for up to 90 days.
            let due = policy.recertification_days.and_then(|n| {
                poc.certified_from
                    .checked_add_days(Days::new(u64::from(n)))
                    .map(|due| (n, due))
            });
            if let Some((n, due)) = due.filter(|(_, due)| enc.date_of_service > *due) {
                d.flag(
                    FlagCode::RecertificationDue,
                    Severity::Error,
                    format!("The date of service {} is more than {n} days after the plan of care's certification began ({}); this payer needs it recertified by {due}. Get the recertification signed before billing.", enc.date_of_service, poc.certified_from),
                    &[],
                );
            }
        }
        None if policy.require_plan_of_care => d.flag(
            FlagCode::MissingPlanOfCare,
            Severity::Warning,
            "The payer requires a certified plan of care and the encounter names none; attach it before billing.".into(),
            &[],
        ),
        None => {}
    }
}

/// Units over the practitioner MUE (Medicare, Medicaid) or over a per-day
/// limit the payer's policy sets. The code's units for the day, over all
/// its lines.
fn limits(d: &mut Draft, policy: &PayerPolicy, rules: &Rules) {
    let code = d.code;
    if policy.mue {
        if let Some(mue) = rules.edits.mue(code).filter(|m| d.day_units > m.value) {
            let (value, mai) = (mue.value, mue.adjudication_indicator);
            d.flag(
                FlagCode::UnitsOverLimit,
                Severity::Error,
                format!("{} units of {code} on this date of service exceed its practitioner MUE of {value} a day (MUE adjudication indicator {mai}); bill at most {value} or document why, per the payer's appeal process.", d.day_units),
                &[],
            );
        }
    }
    if let Some(limit) = policy.daily_unit_limit(code).filter(|l| d.day_units > *l) {
        d.flag(
            FlagCode::UnitsOverLimit,
            Severity::Error,
            format!("{} units of {code} on this date of service exceed this payer's limit of {limit} a day; bill at most {limit} or document the medical necessity of the extra time.", d.day_units),
            &[],
        );
    }
}

/// Minutes the documented times of two codes share.
fn shared_minutes(a: &Draft, b: &Draft, enc: &Encounter) -> u32 {
    let mut total = 0;
    for sa in a.services(&enc.services) {
        for sb in b.services(&enc.services) {
            if let (Some(ia), Some(ib)) = (sa.interval, sb.interval) {
                total += ia.overlap_minutes(&ib);
            }
        }
    }
    total
}

/// SHARED_MINUTES (error) on `d` about `other`, unless it already has one.
pub(super) fn shared_minutes_once(d: &mut Draft, message: &str, other: Code) {
    let already = d
        .flags
        .iter()
        .any(|f| f.code == FlagCode::SharedMinutes && f.related_codes.contains(&other));
    if !already {
        d.flag(
            FlagCode::SharedMinutes,
            Severity::Error,
            message.to_owned(),
            &[other],
        );
    }
}

/// Whether the line's services carry `modifier`.
fn has_modifier(d: &Draft, enc: &Encounter, modifier: &str) -> bool {
    d.services(&enc.services)
        .flat_map(|s| &s.modifiers)
        .any(|m| m.as_str() == modifier)
}

/// A distinct-service modifier that holds within one encounter: 59, XS,
/// XP or XU (XE says "separate encounter").
fn has_distinct_modifier_within(d: &Draft, enc: &Encounter) -> bool {
    d.services(&enc.services)
        .flat_map(|s| &s.modifiers)
        .any(|m| m.is_distinct_service() && m.as_str() != "XE")
}

/// Flags that need two codes.
pub(super) fn pair_flags(
    drafts: &mut [Draft],
    enc: &Encounter,
    rules: &Rules,
    policy: &PayerPolicy,
    counted: &Counted,
) {
    let index = |code: Code, drafts: &[Draft]| drafts.iter().position(|d| d.code == code);
    let line_of = |service: usize, drafts: &[Draft]| {
        drafts
            .iter()
            .position(|d| d.services.contains(&service))
            .unwrap_or(0)
    };
    // (line, other line, shared minutes) for every pair the rules relate.
    let mut pairs: Vec<(usize, usize, u32)> = Vec::new();

    for rule in &rules.edits.no_shared_minutes {
        let (Some(a), Some(b)) = (index(rule.code, drafts), index(rule.other, drafts)) else {
            continue;
        };
        let shared = shared_minutes(&drafts[a], &drafts[b], enc);
        pairs.push((a, b, shared));
        if shared > 0 {
            for (x, y) in [(a, b), (b, a)] {
                let (cx, cy) = (drafts[x].code, drafts[y].code);
                drafts[x].flag(
                    rule.flag,
                    Severity::Error,
                    format!("{cx} and {cy} share {shared} documented minute(s); the same minutes cannot be billed under both codes. Each minute was counted once, for the service listed first; correct the start and stop times or bill the shared time under one code."),
                    &[cy],
                );
            }
        }
    }

    // Any other two timed services documenting the same clock minutes.
    for &(i, j, m) in &counted.shared {
        let (a, b) = (line_of(i, drafts), line_of(j, drafts));
        let (ca, cb) = (drafts[a].code, drafts[b].code);
        let own_rule = rules
            .edits
            .no_shared_minutes
            .iter()
            .any(|r| (r.code == ca && r.other == cb) || (r.code == cb && r.other == ca));
        if own_rule {
            continue;
        }
        let (first, second) = (&enc.services[i].line_id, &enc.services[j].line_id);
        let message = format!("Services {first} ({ca}) and {second} ({cb}) document {m} of the same clock minutes; a minute is billed once, so they were counted for {first}, listed first. Correct the times if the services were truly separate.");
        let targets = if a == b {
            vec![(a, ca)]
        } else {
            vec![(a, cb), (b, ca)]
        };
        for (x, other) in targets {
            shared_minutes_once(&mut drafts[x], &message, other);
        }
    }

    // One-on-one timed minutes inside a group session or an untimed
    // service: they are the group's or the untimed service's.
    for &(h, t, m) in &counted.yielded {
        let (a, b) = (line_of(h, drafts), line_of(t, drafts));
        if a == b {
            continue;
        }
        let (ch, ct) = (drafts[a].code, drafts[b].code);
        let (holder, timed) = (&enc.services[h].line_id, &enc.services[t].line_id);
        let what = if drafts[a]
            .info
            .is_some_and(|i| i.kind == Some(CodeKind::Group))
        {
            "a group session"
        } else {
            "an untimed service (an evaluation, a re-evaluation or a supervised modality)"
        };
        let message = format!("Service {timed} ({ct}) documents {m} minute(s) inside service {holder} ({ch}), {what}: the patient cannot receive one-on-one timed treatment during it, so those minutes stay {ch}'s and were not counted for {ct} (Pub 100-02, ch. 15, sec. 230.1; Pub 100-04, ch. 5, sec. 20.2). Correct the times if the services were truly separate.");
        for (x, other) in [(a, ct), (b, ch)] {
            shared_minutes_once(&mut drafts[x], &message, other);
        }
    }

    for a in 0..drafts.len() {
        for b in a + 1..drafts.len() {
            let (x, y) = two(drafts, a, b);
            not_checked(rules, policy, x, y, "");
        }
    }
    for edit in ptp_edits(rules, policy) {
        if !edit.in_effect(enc.date_of_service) {
            continue;
        }
        let (Some(c1), Some(c2)) = (index(edit.column1, drafts), index(edit.column2, drafts))
        else {
            continue;
        };
        let shared = shared_minutes(&drafts[c1], &drafts[c2], enc);
        pairs.push((c1, c2, shared));
        let col1 = edit.column1;
        // Only a distinct-service modifier on the column-2 line bypasses an
        // indicator-1 edit (NCCI Policy Manual, ch. I; CMS MLN1783722).
        // XE claims a separate encounter: within one encounter it is no
        // distinct-service modifier (CR8863; MLN1783722).
        let xe = has_modifier(&drafts[c2], enc, "XE");
        let modifier = has_distinct_modifier_within(&drafts[c2], enc);
        let (severity, message) = ptp_flag(edit, modifier, "");
        drafts[c2].flag(FlagCode::NcciPtp, severity, message, &[col1]);
        if xe {
            let col2 = edit.column2;
            drafts[c2].flag(
                FlagCode::Modifier59Misuse,
                Severity::Error,
                format!("{col2} carries XE (separate encounter), but {col1} is in the same encounter: XE there is a false claim of distinctness (CR8863). Use XU (unusual non-overlapping service), XS or XP, or 59, if the services were truly distinct; otherwise remove the modifier."),
                &[col1],
            );
        }
    }

    for (a, b, shared) in pairs {
        if shared == 0 {
            continue;
        }
        for (x, y) in [(a, b), (b, a)] {
            let already = drafts[x].flags.iter().any(|f| {
                f.code == FlagCode::Modifier59Misuse && f.related_codes.contains(&drafts[y].code)
            });
            if has_distinct_modifier(&drafts[x], enc) && !already {
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
