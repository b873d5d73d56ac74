//! Clock minutes that two encounters of one date both document: two visits
//! of one provider's day (SHARED_MINUTES: the minute counts once, for the
//! earlier visit, or for the group or untimed service), and two providers
//! of one patient and payer (CO_TREATMENT: the shared minutes may be billed
//! once between them; claimline keeps each line's minutes and holds both
//! for review, since deciding the split is the clinicians').

use super::flags::shared_minutes_once;
use super::minutes::Across;
use super::Draft;
use crate::domain::claim::{ClaimLine, Flag, FlagCode, Severity, Status};
use crate::domain::encounter::Encounter;
use crate::domain::values::{Code, Discipline};

/// SHARED_MINUTES on both lines of every pair of services of two visits of
/// one provider's day that document the same clock minutes.
pub(super) fn shared_flags(drafts: &mut [Vec<Draft>], encs: &[&Encounter], across: &[Across]) {
    let line_of = |drafts: &[Draft], service: usize| {
        drafts.iter().position(|d| d.services.contains(&service))
    };
    for a in across {
        let ((ek, sk), (el, sl)) = (a.kept, a.lost);
        let (Some(dk), Some(dl)) = (line_of(&drafts[ek], sk), line_of(&drafts[el], sl)) else {
            continue;
        };
        let (ck, cl) = (drafts[ek][dk].code, drafts[el][dl].code);
        let (kept, lost) = (
            &encs[ek].services[sk].line_id,
            &encs[el].services[sl].line_id,
        );
        let m = a.minutes;
        let message = if a.holder {
            format!("Service {lost} ({cl}) documents {m} minute(s) inside service {kept} ({ck}) of another visit this day with this provider, a group session or an untimed service: the patient cannot receive one-on-one timed treatment during it, so those minutes stay {ck}'s and were not counted for {cl} (Pub 100-02, ch. 15, sec. 230.1; Pub 100-04, ch. 5, sec. 20.2). Correct the times if the services were truly separate.")
        } else {
            format!("Service {lost} ({cl}) documents {m} of the same clock minutes as service {kept} ({ck}) of an earlier visit this day with this provider; a minute is billed once, so they were counted for {kept}. Correct the times if the services were truly separate.")
        };
        shared_minutes_once(&mut drafts[ek][dk], &message, cl);
        shared_minutes_once(&mut drafts[el][dl], &message, ck);
    }
}

/// CO_TREATMENT on the lines of `encs` (one patient, payer and date, in
/// the day's order; `lines[i]` are `encs[i]`'s) whose services document
/// clock minutes that a service of another provider's (NPI) encounter also
/// documents. The flag names the other provider's discipline and code,
/// never a patient value; the line keeps its minutes and is held.
pub fn co_treatment(encs: &[&Encounter], lines: &mut [Vec<ClaimLine>]) {
    // (encounter, its code, the other's discipline, the other's code, minutes)
    let mut found: Vec<(usize, Code, Discipline, Code, u32)> = Vec::new();
    let mut note = |e: usize, code: Code, disc: Discipline, other: Code, m: u32| match found
        .iter_mut()
        .find(|f| f.0 == e && f.1 == code && f.2 == disc && f.3 == other)
    {
        Some(f) => f.4 += m,
        None => found.push((e, code, disc, other, m)),
    };
    for (a, ea) in encs.iter().enumerate() {
        for (b, eb) in encs.iter().enumerate().skip(a + 1) {
            if ea.npi == eb.npi {
                continue;
            }
            for sa in &ea.services {
                for sb in &eb.services {
                    let (Some(ia), Some(ib)) = (sa.interval, sb.interval) else {
                        continue;
                    };
                    let m = ia.overlap_minutes(&ib);
                    if m > 0 {
                        note(a, sa.code, eb.discipline, sb.code, m);
                        note(b, sb.code, ea.discipline, sa.code, m);
                    }
                }
            }
        }
    }
    for (e, code, disc, other, m) in found {
        let disc = discipline_name(disc);
        let message = format!("Co-treatment: {code} documents {m} clock minute(s) that another provider ({disc}, {other}) also documents for this patient and payer on this date. The shared minutes may be billed once between the two providers (split between them, or billed by one discipline); decide the split and correct the lines. Each line keeps its minutes until then.");
        for line in lines[e].iter_mut().filter(|l| l.code == code) {
            line.flags.push(Flag {
                code: FlagCode::CoTreatment,
                severity: Severity::Error,
                message: message.clone(),
                related_codes: vec![other],
            });
            line.status = Status::NeedsReview;
        }
    }
}

fn discipline_name(d: Discipline) -> &'static str {
    match d {
        Discipline::PT => "PT",
        Discipline::OT => "OT",
        Discipline::SLP => "SLP",
    }
}
