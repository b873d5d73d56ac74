//! Who may furnish a service, what the payer pays for it, and whether the
//! code belongs to the provider's discipline.

use super::{therapy_modifier, Draft};
use crate::domain::claim::{FlagCode, Severity};
use crate::domain::encounter::Encounter;
use crate::domain::rules::{CodeKind, PayerPolicy};
use crate::domain::values::{Credential, Discipline, Modifier};

/// Who may furnish the service, what the payer pays, and whether the code
/// belongs to the provider's discipline.
pub(super) fn who_and_what(d: &mut Draft, enc: &Encounter, policy: &PayerPolicy) {
    let code = d.code;
    let by_assistant = enc.credential == Credential::Assistant || d.assistant_minutes > 0;
    let kind = d.info.and_then(|i| i.kind);
    if by_assistant && matches!(kind, Some(CodeKind::Evaluation | CodeKind::Reevaluation)) {
        d.flag(
            FlagCode::AssistantNotAllowed,
            Severity::Error,
            format!("{code} is an evaluation; only the therapist may furnish it (Pub 100-02, ch. 15, sec. 230.1: assistants may not provide evaluative or assessment services). Bill it under the therapist who evaluated the patient."),
            &[],
        );
    } else if by_assistant && enc.discipline == Discipline::SLP && !policy.slp_assistants {
        d.flag(
            FlagCode::AssistantNotAllowed,
            Severity::Error,
            "This payer does not recognize speech-language pathology assistants (Medicare: Pub 100-02, ch. 15, sec. 230.3.C); services they furnish are not billable as therapy.".into(),
            &[],
        );
    }
    if policy.pfs_bundled && d.info.is_some_and(|i| i.bundled) {
        d.flag(
            FlagCode::BundledCode,
            Severity::Warning,
            format!("{code} has PFS status B in CMS's fee schedule for this date: bundled into the other services of the day and never paid separately. No expected payment; bill it only if the payer asks for it to be reported."),
            &[],
        );
    }
    // One or two entries: a scan beats hashing.
    if let Some((_, instead)) = policy.not_recognized.iter().find(|(c, _)| **c == code) {
        d.flag(
            FlagCode::NotRecognizedByPayer,
            Severity::Error,
            format!("This payer does not pay {code}; bill {instead} for the service instead."),
            &[*instead],
        );
    }
    let own = therapy_modifier(enc.discipline);
    if let Some(other) = d
        .info
        .and_then(|i| i.discipline)
        .filter(|x| *x != enc.discipline)
    {
        d.flag(
            FlagCode::DisciplineMismatch,
            Severity::Error,
            format!("{code} is a {other:?} code but the provider's discipline is {:?}; bill it under a {other:?} provider or correct the code.", enc.discipline),
            &[],
        );
    }
    let contradicting: Vec<Modifier> = d
        .services(&enc.services)
        .flat_map(|s| &s.modifiers)
        .filter(|m| m.is_therapy() && **m != own)
        .copied()
        .collect();
    if let Some(m) = contradicting.first() {
        d.flag(
            FlagCode::DisciplineMismatch,
            Severity::Error,
            format!("The clinician put {m} on {code}, but the provider's discipline is {:?}, whose modifier is {own}; the line carries {own}. Correct the discipline or the modifier.", enc.discipline),
            &[],
        );
    }
}
