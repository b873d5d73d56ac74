//! Medicare's year-to-date therapy amounts and the KX modifier (contract
//! flag `KX_THRESHOLD`). Per patient and calendar year, the expected
//! payments of their non-void lines add up, PT and SLP together and OT
//! alone (SSA 1833(g)(1)-(2)); the line that takes a group past the year's
//! threshold, and every later line of that group and year, carries KX: the
//! therapist attests the services are medically necessary (SSA
//! 1833(g)(7)(A); Pub 100-02, ch. 15, sec. 220.3). Past the targeted
//! medical review amount ($3,000, SSA 1833(g)(7)(B)) a warning: the claim
//! may be reviewed. Totals change later evaluations only: a line once
//! issued is not reissued because an earlier one was voided.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Datelike;

use super::claim::{ClaimLine, Flag, FlagCode, KxGroup, Severity, Status};
use super::encounter::Encounter;
use super::rules::Rules;
use super::values::{Discipline, Modifier};

/// Year-to-date amounts in cents by (patient, calendar year, group). Its
/// `Debug` shows only how many: the keys are patient ids.
#[derive(Default, Clone)]
pub struct YearToDate(HashMap<(Arc<str>, i32, KxGroup), i64>);

impl std::fmt::Debug for YearToDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "YearToDate({} totals)", self.0.len())
    }
}

impl YearToDate {
    pub fn set(&mut self, patient_id: Arc<str>, year: i32, group: KxGroup, cents: i64) {
        self.0.insert((patient_id, year, group), cents);
    }

    pub fn get(&self, patient_id: &str, year: i32, group: KxGroup) -> i64 {
        // Keys borrow as a tuple only by building one: a linear probe on a
        // miss costs an Arc clone, so look up through a temporary key.
        self.0
            .get(&(Arc::from(patient_id), year, group))
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, line: &ClaimLine, group: KxGroup, cents: i64) {
        *self
            .0
            .entry((line.patient_id.clone(), line.date_of_service.year(), group))
            .or_default() += cents;
    }

    /// A line leaves the totals (it was voided).
    pub fn remove(&mut self, line: &ClaimLine) {
        if let (Some(group), Some(cents)) = (line.kx_group, line.expected_payment_cents) {
            if line.status != Status::Void {
                self.add(line, group, -cents);
            }
        }
    }
}

/// The group an encounter's lines count toward, when the payer tracks it.
pub fn group_of(enc: &Encounter, rules: &Rules) -> Option<KxGroup> {
    let policy = rules.policies.for_payer(&enc.payer_id, enc.plan);
    if !policy.kx_threshold {
        return None;
    }
    Some(match enc.discipline {
        Discipline::PT | Discipline::SLP => KxGroup::PtSlp,
        Discipline::OT => KxGroup::Ot,
    })
}

/// Adds the encounter's new lines to the totals, in order, and marks the
/// lines past the year's threshold.
pub fn apply(lines: &mut [ClaimLine], enc: &Encounter, rules: &Rules, ytd: &mut YearToDate) {
    let Some(group) = group_of(enc, rules) else {
        return;
    };
    let year = enc.date_of_service.year();
    let threshold = rules.policies.therapy_threshold(year);
    for line in lines.iter_mut() {
        line.kx_group = Some(group);
        let before = ytd.get(&line.patient_id, year, group);
        let cents = line.expected_payment_cents.unwrap_or(0);
        ytd.add(line, group, cents);
        let Some(t) = threshold else { continue };
        let after = before + cents;
        if after <= t.kx_cents {
            continue;
        }
        let name = match group {
            KxGroup::PtSlp => "PT and SLP",
            KxGroup::Ot => "OT",
        };
        mark_kx(line);
        line.flags.push(Flag {
            code: FlagCode::KxThreshold,
            severity: Severity::Info,
            message: format!(
                "the patient's {year} {name} therapy amount reaches {} with this line, past the {} threshold: KX added, which attests that the services are medically necessary as documented in the record.",
                dollars(after),
                dollars(t.kx_cents)
            ),
            related_codes: Vec::new(),
        });
        if after > t.review_cents {
            line.flags.push(Flag {
                code: FlagCode::KxThreshold,
                severity: Severity::Warning,
                message: format!(
                    "the patient's {year} {name} therapy amount reaches {} with this line, past the {} targeted medical review amount: the claim may be selected for medical review; make sure the record supports the services.",
                    dollars(after),
                    dollars(t.review_cents)
                ),
                related_codes: Vec::new(),
            });
        }
    }
}

/// The flags KX marking adds (compared apart: they depend on the order of
/// processing).
pub fn is_kx_flag(f: &Flag) -> bool {
    f.code == FlagCode::KxThreshold
        || (f.code == FlagCode::TooManyModifiers && f.message.contains(KX_DROPPED))
}

const KX_DROPPED: &str = "needs KX and four other modifiers";

/// Whether two lines' modifiers are the same but for KX: with KX a line of
/// four keeps three of the others, so those must be the other's first three.
pub fn same_modifiers(a: &[Modifier], b: &[Modifier]) -> bool {
    let strip = |m: &[Modifier]| -> Vec<Modifier> {
        m.iter().filter(|m| **m != Modifier::KX).copied().collect()
    };
    let (sa, sb) = (strip(a), strip(b));
    if sa == sb {
        return true;
    }
    let cut = |with_kx: &[Modifier], s_with: &[Modifier], s_other: &[Modifier]| {
        with_kx.len() == 4
            && with_kx.contains(&Modifier::KX)
            && s_other.len() == 4
            && s_other.starts_with(s_with)
    };
    cut(a, &sa, &sb) || cut(b, &sb, &sa)
}

/// KX goes after the therapy and assistant modifiers (payment depends on
/// it); a line that already has four keeps its first three and KX.
fn mark_kx(line: &mut ClaimLine) {
    if line.modifiers.contains(&Modifier::KX) {
        return;
    }
    let at = line
        .modifiers
        .iter()
        .take_while(|m| m.is_therapy() || m.is_assistant())
        .count();
    line.modifiers.insert(at, Modifier::KX);
    if line.modifiers.len() > 4 {
        // The ones that change payment or liability stay (GA, 59/X...).
        let dropped: Vec<String> = Modifier::keep_at_most(&mut line.modifiers, 4)
            .iter()
            .map(|m| m.to_string())
            .collect();
        let dropped = dropped.join(", ");
        line.flags.push(Flag {
            code: FlagCode::TooManyModifiers,
            severity: Severity::Warning,
            message: format!("{} {KX_DROPPED} but a claim line carries 4 (837P, CMS-1500); dropped {dropped}, keeping those that change payment or liability. Check whether it belongs on another line.", line.code),
            related_codes: Vec::new(),
        });
    }
}

fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods(list: &[&str]) -> Vec<Modifier> {
        list.iter().map(|m| Modifier::parse(m).unwrap()).collect()
    }

    #[test]
    fn modifiers_compare_apart_from_kx() {
        let plain = mods(&["GP", "59", "76", "77"]);
        // KX took the fourth place: the same line.
        assert!(same_modifiers(&mods(&["GP", "KX", "59", "76"]), &plain));
        assert!(same_modifiers(&plain, &mods(&["GP", "KX", "59", "76"])));
        assert!(same_modifiers(&mods(&["GP", "KX"]), &mods(&["GP"])));
        assert!(!same_modifiers(&mods(&["GP", "KX", "59", "77"]), &plain));
        assert!(!same_modifiers(&mods(&["GP", "59"]), &mods(&["GP", "XU"])));
    }
}
