//! NCCI procedure-to-procedure pairs: the table the payer applies (CMS's
//! in force, and its own pairs), the NCCI_PTP flag on the column-2 line,
//! pairs between the visits of one day, and NCCI_NOT_CHECKED where the
//! table in force does not cover a pair.

use super::Draft;
use crate::domain::claim::{FlagCode, Severity};
use crate::domain::encounter::Encounter;
use crate::domain::rules::{PayerPolicy, PtpEdit, Rules};
use crate::domain::values::Modifier;

/// The NCCI_PTP flag of an edit pair; `visit` says where column 1 was
/// billed when it is another encounter of the day.
pub(super) fn ptp_flag(edit: &PtpEdit, modifier: bool, visit: &str) -> (Severity, String) {
    let (col1, col2) = (edit.column1, edit.column2);
    match (edit.modifier_indicator, modifier) {
        (0, _) => (Severity::Error, format!("{col2} is bundled into {col1}{visit} on this date (NCCI edit, modifier indicator 0); no modifier allows both, so {col2} will be denied. Remove it or correct the codes.")),
        (_, false) => (Severity::Error, format!("{col2} is bundled into {col1}{visit} (NCCI edit, modifier indicator 1): the {col2} line is denied unless it carries 59 or XE/XS/XP/XU, which is only correct when the services were truly distinct (separate time blocks); otherwise remove {col2}.")),
        (_, true) => (Severity::Info, format!("{col2} and {col1}{visit} form an NCCI edit pair billed with a distinct-service modifier on {col2}; keep the documentation that shows separate time and purpose.")),
    }
}

/// The procedure-to-procedure pairs this payer applies: CMS's table in
/// force (when the payer follows NCCI) and the payer's own pairs.
pub(super) fn ptp_edits<'r>(
    rules: &'r Rules,
    policy: &'r PayerPolicy,
) -> impl Iterator<Item = &'r PtpEdit> {
    let cms: &[PtpEdit] = if policy.ncci { &rules.edits.ptp } else { &[] };
    cms.iter().chain(&policy.ptp)
}

/// NCCI_NOT_CHECKED on the lines of `a` and `b` when the payer follows
/// NCCI and CMS's table in force does not cover the pair (the shipped table
/// holds only the CMS rows in reach). Catalogue codes only.
pub(super) fn not_checked<'a>(
    rules: &Rules,
    policy: &PayerPolicy,
    a: &mut Draft<'a>,
    b: &mut Draft<'a>,
    visit: &str,
) {
    let Some(covered) = rules.edits.ptp_coverage.as_deref() else {
        return;
    };
    let (ca, cb) = (a.code, b.code);
    if !policy.ncci
        || ca == cb
        || a.info.is_none()
        || b.info.is_none()
        || (covered.contains(&ca) && covered.contains(&cb))
    {
        return;
    }
    for (d, other) in [(a, cb), (b, ca)] {
        let already = d
            .flags
            .iter()
            .any(|f| f.code == FlagCode::NcciNotChecked && f.related_codes.contains(&other));
        if !already {
            let own = d.code;
            d.flag(
                FlagCode::NcciNotChecked,
                Severity::Info,
                format!("{own} and {other}{visit}: the NCCI PTP table in force does not cover this pair (claimline ships only the CMS rows in reach), so whether CMS edits it was not checked. Import CMS's full quarterly PTP table (claimline rules import) to check it."),
                &[other],
            );
        }
    }
}

/// Two distinct elements of one slice, mutably.
pub(super) fn two<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    debug_assert!(a != b);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

/// NCCI edits between the encounters of one day (NCCI applies to one
/// provider, one patient, one date of service): a column-2 code in one
/// visit and its column-1 code in another. A pair within one encounter is
/// `flags::pair_flags`'s. Visits do not share clock minutes, so only the
/// distinct-service modifier decides.
pub(super) fn day_pair_flags(drafts: &mut [Vec<Draft>], encs: &[&Encounter], rules: &Rules) {
    let Some(first) = encs.first() else {
        return;
    };
    let date = first.date_of_service;
    let policy = rules.policies.for_payer(&first.payer_id, first.plan);
    for e in 0..drafts.len() {
        for f in e + 1..drafts.len() {
            let (x, y) = two(drafts, e, f);
            for a in x.iter_mut() {
                for b in y.iter_mut() {
                    not_checked(rules, policy, a, b, " (in another visit of the day)");
                }
            }
        }
    }
    for edit in ptp_edits(rules, policy).filter(|e| e.in_effect(date)) {
        let with_col1: Vec<usize> = (0..drafts.len())
            .filter(|&e| drafts[e].iter().any(|d| d.code == edit.column1))
            .collect();
        if with_col1.is_empty() {
            continue;
        }
        for e in 0..drafts.len() {
            if with_col1.contains(&e) {
                continue;
            }
            let Some(i) = drafts[e].iter().position(|d| d.code == edit.column2) else {
                continue;
            };
            let modifier = has_distinct_modifier(&drafts[e][i], encs[e]);
            let (severity, message) =
                ptp_flag(edit, modifier, " (billed in another visit of the day)");
            drafts[e][i].flag(FlagCode::NcciPtp, severity, message, &[edit.column1]);
        }
    }
}

pub(super) fn has_distinct_modifier(d: &Draft, enc: &Encounter) -> bool {
    d.services(&enc.services)
        .flat_map(|s| &s.modifiers)
        .any(Modifier::is_distinct_service)
}
