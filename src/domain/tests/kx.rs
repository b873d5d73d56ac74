//! Year-to-date KX tracking (contract flag KX_THRESHOLD): one encounter,
//! two encounters through the ledger, a void, the groups and the years.

use super::*;
use crate::domain::kx::{self, YearToDate};
use crate::domain::ledger::Ledger;

const PATIENT: &str = "PAT-SECRET-1";

fn two_lines(plan: &str) -> Value {
    event(
        plan,
        vec![
            svc("1", "97530", "10:00", "10:24"),
            svc("2", "97110", "10:24", "10:47"),
        ],
    )
}

/// Another encounter of the patient: another payer id, so not the same
/// day for the units (those are pooled: see the twice-a-day tests).
fn with(mut ev: Value, encounter: &str, event_id: &str, event_type: &str) -> Value {
    ev["encounter"]["payer"]["id"] = format!("MEDICARE-{encounter}").into();
    ev["event_id"] = event_id.into();
    ev["event_type"] = event_type.into();
    ev["encounter"]["encounter_id"] = encounter.into();
    ev
}

fn kx_run(ev: &Value, ytd: &mut YearToDate) -> Vec<ClaimLine> {
    let enc = decode(ev.to_string().as_bytes()).unwrap();
    let rules = rules_on(enc.date_of_service);
    let mut lines = evaluate(&enc, rules);
    kx::apply(&mut lines, &enc, rules, ytd);
    lines
}

fn has_kx(l: &ClaimLine) -> bool {
    l.modifiers.contains(&Modifier::KX)
}

fn kx_flags(l: &ClaimLine) -> Vec<Severity> {
    l.flags
        .iter()
        .filter(|f| f.code == FlagCode::KxThreshold)
        .map(|f| f.severity)
        .collect()
}

#[test]
fn the_line_that_crosses_the_threshold_and_every_later_one_carry_kx() {
    let plain = run(&two_lines("medicare"));
    let first = plain[0].expected_payment_cents.unwrap();
    assert!(first > 0);
    // Up to the threshold exactly with the first line: not past it.
    let mut ytd = YearToDate::default();
    ytd.set(PATIENT.into(), 2026, KxGroup::PtSlp, 248_000 - first);
    let lines = kx_run(&two_lines("medicare"), &mut ytd);
    assert!(!has_kx(&lines[0]), "{:?}", lines[0].modifiers);
    assert!(kx_flags(&lines[0]).is_empty());
    assert!(has_kx(&lines[1]));
    assert_eq!(lines[1].modifiers, [Modifier::GP, Modifier::KX]);
    assert_eq!(kx_flags(&lines[1]), [Severity::Info]);
    assert_eq!(lines[1].status, Status::Validated, "KX is information");
    let total = 248_000 + lines[1].expected_payment_cents.unwrap();
    assert_eq!(ytd.get(PATIENT, 2026, KxGroup::PtSlp), total);
    assert!(lines.iter().all(|l| l.kx_group == Some(KxGroup::PtSlp)));
    let msg = &flag(&lines[1], FlagCode::KxThreshold).unwrap().message;
    assert!(msg.contains("$2480.00 threshold"), "{msg}");
    assert!(!msg.contains(PATIENT), "no PHI in messages");
}

#[test]
fn past_the_review_amount_a_warning() {
    let mut ytd = YearToDate::default();
    ytd.set(PATIENT.into(), 2026, KxGroup::PtSlp, 299_990);
    let lines = kx_run(&two_lines("medicare"), &mut ytd);
    for l in &lines {
        assert!(has_kx(l));
        assert_eq!(kx_flags(l), [Severity::Info, Severity::Warning]);
        assert_eq!(l.status, Status::Validated);
    }
}

#[test]
fn ot_has_its_own_amount_and_commercial_payers_none() {
    let mut ytd = YearToDate::default();
    ytd.set(PATIENT.into(), 2026, KxGroup::PtSlp, 299_990);
    let mut ot = two_lines("medicare");
    ot["encounter"]["provider"]["discipline"] = "OT".into();
    let lines = kx_run(&ot, &mut ytd);
    assert!(lines
        .iter()
        .all(|l| !has_kx(l) && l.kx_group == Some(KxGroup::Ot)));
    assert!(ytd.get(PATIENT, 2026, KxGroup::Ot) > 0);

    let lines = kx_run(&two_lines("commercial"), &mut ytd);
    assert!(lines.iter().all(|l| !has_kx(l) && l.kx_group.is_none()));
}

#[test]
fn a_year_without_threshold_data_is_not_flagged() {
    let mut ev = two_lines("medicare");
    ev["encounter"]["date_of_service"] = "2023-03-02".into();
    ev["encounter"]["plan_of_care"]["certified_from"] = "2023-02-20".into();
    ev["encounter"]["plan_of_care"]["certified_through"] = "2023-05-20".into();
    for (i, s) in ["10:00", "10:24"].iter().enumerate() {
        let e = ["10:24", "10:47"][i];
        ev["encounter"]["services"][i]["start"] = format!("2023-03-02T{s}:00Z").into();
        ev["encounter"]["services"][i]["end"] = format!("2023-03-02T{e}:00Z").into();
    }
    let mut ytd = YearToDate::default();
    ytd.set(PATIENT.into(), 2023, KxGroup::PtSlp, 900_000);
    let lines = kx_run(&ev, &mut ytd);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| !has_kx(l)));
}

#[test]
fn two_encounters_in_one_batch_cross_in_order_and_a_void_lowers_the_total() {
    let book = crate::cms::shipped::book();
    let enc = |ev: &Value| decode(ev.to_string().as_bytes()).unwrap();
    let one = run(&two_lines("medicare"));
    let per_encounter: i64 = one.iter().map(|l| l.expected_payment_cents.unwrap()).sum();

    // The year so far leaves room for one encounter, not two.
    let start = 248_000 - per_encounter;
    let mut ledger = Ledger::default();
    ledger.ytd.set(PATIENT.into(), 2026, KxGroup::PtSlp, start);
    let a = ledger.apply(
        &enc(&with(two_lines("medicare"), "ENC-A", "e-a", "finalized")),
        book,
    );
    assert!(a.lines.iter().all(|l| !has_kx(l)));
    let b = ledger.apply(
        &enc(&with(two_lines("medicare"), "ENC-B", "e-b", "finalized")),
        book,
    );
    assert!(b.lines.iter().all(has_kx), "the second encounter passes it");

    // Voiding the first brings the total back under; a later encounter
    // crosses again, and B's lines are not reissued (totals change later
    // evaluations only).
    let void = ledger.apply(
        &enc(&with(two_lines("medicare"), "ENC-A", "e-a2", "voided")),
        book,
    );
    assert_eq!(void.voided.len(), 2);
    assert!(void.lines.is_empty());
    assert_eq!(
        ledger.ytd.get(PATIENT, 2026, KxGroup::PtSlp),
        start + per_encounter
    );
    let c = ledger.apply(
        &enc(&with(two_lines("medicare"), "ENC-C", "e-c", "finalized")),
        book,
    );
    assert!(c.lines.iter().all(has_kx));
    assert_eq!(
        ledger.ytd.get(PATIENT, 2026, KxGroup::PtSlp),
        start + 2 * per_encounter
    );
}

#[test]
fn kx_keeps_the_line_at_four_modifiers() {
    let mut ev = two_lines("medicare");
    ev["encounter"]["services"][0]["modifiers"] = json!(["59", "76", "77"]);
    let mut ytd = YearToDate::default();
    ytd.set(PATIENT.into(), 2026, KxGroup::PtSlp, 300_000);
    let lines = kx_run(&ev, &mut ytd);
    let l = line(&lines, "97530");
    assert_eq!(l.modifiers.len(), 4);
    assert_eq!(l.modifiers[..2], [Modifier::GP, Modifier::KX]);
    assert!(flag(l, FlagCode::TooManyModifiers).is_some());
}
