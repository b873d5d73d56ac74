//! A line's modifiers, in billing order: the discipline's GP/GO/GN, CQ/CO
//! on assistant units, a distinct-service modifier, then the clinician's.

use super::{Draft, Part};
use crate::domain::claim::{Flag, FlagCode, Severity};
use crate::domain::encounter::Encounter;
use crate::domain::rules::PayerPolicy;
use crate::domain::values::{Discipline, Modifier};

/// The most modifiers one claim line carries (837P SV101-3 to SV101-6;
/// CMS-1500 item 24D).
const MAX_MODIFIERS: usize = 4;

pub(super) fn therapy_modifier(discipline: Discipline) -> Modifier {
    match discipline {
        Discipline::PT => Modifier::GP,
        Discipline::OT => Modifier::GO,
        Discipline::SLP => Modifier::GN,
    }
}

pub(super) fn assistant_modifier(discipline: Discipline) -> Option<Modifier> {
    match discipline {
        Discipline::PT => Some(Modifier::CQ),
        Discipline::OT => Some(Modifier::CO),
        Discipline::SLP => None,
    }
}

/// TOO_MANY_MODIFIERS (warning): which were dropped, and a word when one
/// of them changes liability or payment.
pub(crate) fn too_many(code: crate::domain::Code, needed: usize, dropped: &[Modifier]) -> Flag {
    let names: Vec<String> = dropped.iter().map(|m| m.to_string()).collect();
    let liability: Vec<String> = dropped
        .iter()
        .filter(|m| m.changes_payment())
        .map(|m| m.to_string())
        .collect();
    let warning = if liability.is_empty() {
        String::new()
    } else {
        format!(
            " {} changes payment or liability (an ABN on file, a distinct service): bill the service on a line of its own or correct the documentation rather than drop it.",
            liability.join(", ")
        )
    };
    Flag {
        code: FlagCode::TooManyModifiers,
        severity: Severity::Warning,
        message: format!("{code} needs {needed} modifiers but a claim line carries {MAX_MODIFIERS} (837P, CMS-1500); kept those that change payment or liability first (GP/GO/GN, CQ/CO, 59/X, KX, GA/GX/GY/GZ), dropped {}.{warning} Check whether the dropped ones belong on another line.", names.join(", ")),
        related_codes: Vec::new(),
    }
}

/// In billing order: exactly one of GP/GO/GN (the provider's discipline),
/// CQ/CO on assistant units, a distinct-service modifier, then the
/// clinician's others as documented; at most four (the rest flagged).
pub(super) fn assign_modifiers(p: &mut Part, d: &Draft, enc: &Encounter, policy: &PayerPolicy) {
    let mut mods = Vec::with_capacity(MAX_MODIFIERS);
    mods.push(therapy_modifier(enc.discipline));
    if p.assistant {
        if let Some(a) = assistant_modifier(enc.discipline) {
            mods.push(a);
            let code = d.code;
            let paid = if policy.assistant_payment_percent < 100 {
                format!(
                    "paid at {}% of the fee schedule",
                    policy.assistant_payment_percent
                )
            } else {
                "paid at this payer's rate for assistant services".to_owned()
            };
            p.flags.push(Flag {
                code: FlagCode::AssistantModifier,
                severity: Severity::Info,
                message: format!("{a} on {} unit(s) of {code}: an assistant furnished over 10% of each (the per-unit de minimis standard), {paid}.", p.units),
                related_codes: Vec::new(),
            });
        }
    }
    let documented = d
        .services(&enc.services)
        .flat_map(|s| &s.modifiers)
        .filter(|m| !m.is_therapy() && !m.is_assistant());
    let (distinct, others): (Vec<&Modifier>, Vec<&Modifier>) =
        documented.partition(|m| m.is_distinct_service());
    for m in distinct.into_iter().chain(others) {
        if !mods.contains(m) {
            mods.push(*m);
        }
    }
    if mods.len() > MAX_MODIFIERS {
        let dropped = Modifier::keep_at_most(&mut mods, MAX_MODIFIERS);
        p.flags
            .push(too_many(d.code, MAX_MODIFIERS + dropped.len(), &dropped));
    }
    p.modifiers = mods;
}
