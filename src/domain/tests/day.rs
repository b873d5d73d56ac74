//! Twice-a-day therapy: the encounters of one patient with one provider and
//! payer on one date of service are one day for the units (contract
//! section 3). A later visit re-allocates the day: lines that change are
//! voided and reissued with new line numbers; an amendment or a void of
//! the first visit after the second re-allocates again.

use super::*;
use crate::domain::ledger::{Decision, Ledger, Outcome};

fn visit(encounter: &str, event_id: &str, version: u32, services: Vec<Value>) -> Encounter {
    let mut ev = event("medicare", services);
    ev["event_id"] = event_id.into();
    ev["event_type"] = if version == 1 { "finalized" } else { "amended" }.into();
    ev["encounter"]["encounter_id"] = encounter.into();
    ev["encounter"]["version"] = version.into();
    decode(ev.to_string().as_bytes()).unwrap()
}

fn ids_units(lines: &[ClaimLine]) -> Vec<(String, u32)> {
    lines
        .iter()
        .map(|l| (l.claim_line_id.clone(), l.units))
        .collect()
}

fn voided(d: &Decision) -> Vec<(String, String)> {
    d.voided
        .iter()
        .map(|l| (l.claim_line_id.clone(), l.event_id.to_string()))
        .collect()
}

#[test]
fn a_second_visit_that_changes_the_days_units_reissues_the_first() {
    let book = crate::cms::shipped::book();
    let mut ledger = Ledger::default();
    // Morning: 7 minutes of 97530, no unit alone.
    let am = visit(
        "ENC-AM",
        "e-am",
        1,
        vec![svc("1", "97530", "09:00", "09:07")],
    );
    let d = ledger.apply(&am, book);
    assert_eq!(ids_units(&d.lines), [("ENC-AM:1:1".into(), 0)]);

    // Afternoon: 7 more. The day has 14 minutes: one unit, to the morning
    // (equal shares: the earlier visit). Its line is voided and reissued
    // as line 2; the afternoon's own line has none.
    let pm = visit(
        "ENC-PM",
        "e-pm",
        1,
        vec![svc("1", "97530", "15:00", "15:07")],
    );
    let d = ledger.apply(&pm, book);
    assert_eq!(d.outcome, Outcome::Processed);
    assert_eq!(voided(&d), [("ENC-AM:1:1".to_string(), "e-pm".to_string())]);
    assert_eq!(
        ids_units(&d.lines),
        [("ENC-PM:1:1".into(), 0), ("ENC-AM:1:2".into(), 1)]
    );
    let day_units: u32 = ledger.active.values().flatten().map(|l| l.units).sum();
    assert_eq!(day_units, 1, "14 minutes on the day: one unit");

    // The morning is amended to 3 minutes after the afternoon was
    // processed: 10 minutes, one unit, now to the afternoon (7 of 10).
    let am2 = visit(
        "ENC-AM",
        "e-am2",
        2,
        vec![svc("1", "97530", "09:00", "09:03")],
    );
    let d = ledger.apply(&am2, book);
    assert_eq!(
        voided(&d),
        [
            ("ENC-AM:1:2".to_string(), "e-am2".to_string()),
            ("ENC-PM:1:1".to_string(), "e-am2".to_string())
        ]
    );
    assert_eq!(
        ids_units(&d.lines),
        [("ENC-AM:2:1".into(), 0), ("ENC-PM:1:2".into(), 1)]
    );

    // A void of the morning leaves the afternoon alone: 7 minutes, no unit.
    let mut void = visit(
        "ENC-AM",
        "e-am3",
        2,
        vec![svc("1", "97530", "09:00", "09:03")],
    );
    void.event_type = EventType::Voided;
    let d = ledger.apply(&void, book);
    assert_eq!(d.outcome, Outcome::Voided);
    assert_eq!(
        voided(&d),
        [
            ("ENC-AM:2:1".to_string(), "e-am3".to_string()),
            ("ENC-PM:1:2".to_string(), "e-am3".to_string())
        ]
    );
    assert_eq!(ids_units(&d.lines), [("ENC-PM:1:3".into(), 0)]);
}

#[test]
fn a_second_visit_that_changes_nothing_reissues_nothing() {
    let book = crate::cms::shipped::book();
    let mut ledger = Ledger::default();
    ledger.apply(
        &visit(
            "ENC-AM",
            "e-am",
            1,
            vec![svc("1", "97110", "09:00", "09:20")],
        ),
        book,
    );
    // 20 + 10 minutes: two units, one each, as each had alone.
    let d = ledger.apply(
        &visit(
            "ENC-PM",
            "e-pm",
            1,
            vec![svc("1", "97530", "15:00", "15:10")],
        ),
        book,
    );
    assert!(d.voided.is_empty());
    assert_eq!(ids_units(&d.lines), [("ENC-PM:1:1".into(), 1)]);
}

#[test]
fn the_day_pools_minutes_the_cms_way_and_limits_see_the_days_units() {
    // 97530: 20 + 20 minutes = 40: three units on the day (not 1 + 1).
    let am = visit(
        "ENC-AM",
        "e-am",
        1,
        vec![svc("1", "97530", "09:00", "09:20")],
    );
    let pm = visit(
        "ENC-PM",
        "e-pm",
        1,
        vec![svc("1", "97530", "15:00", "15:20")],
    );
    let rules = rules();
    let day = crate::domain::evaluate::evaluate_day(&[&am, &pm], rules);
    assert_eq!(day[0][0].units + day[1][0].units, 3);
    assert_eq!((day[0][0].units, day[1][0].units), (2, 1));
    assert_eq!(day[0][0].minutes, 20, "each line keeps its own minutes");

    // Commercial: 4 units of 97530 a day; 35 + 35 minutes = 2 + 2 alone
    // per encounter would pass, 70 minutes on the day is 5 units.
    let mk = |id: &str, e: &str, start: &str, end: &str| {
        let mut ev = event("commercial", vec![svc("1", "97530", start, end)]);
        ev["event_id"] = e.into();
        ev["encounter"]["encounter_id"] = id.into();
        decode(ev.to_string().as_bytes()).unwrap()
    };
    let am = mk("ENC-AM", "e-am", "09:00", "09:35");
    let pm = mk("ENC-PM", "e-pm", "15:00", "15:35");
    let day = crate::domain::evaluate::evaluate_day(&[&am, &pm], rules);
    let total: u32 = day.iter().flatten().map(|l| l.units).sum();
    assert_eq!(total, 5);
    assert!(day
        .iter()
        .flatten()
        .all(|l| flag(l, FlagCode::UnitsOverLimit).is_some()));
}

#[test]
fn another_provider_or_date_is_another_day() {
    let book = crate::cms::shipped::book();
    let mut ledger = Ledger::default();
    ledger.apply(
        &visit(
            "ENC-AM",
            "e-am",
            1,
            vec![svc("1", "97530", "09:00", "09:07")],
        ),
        book,
    );
    let mut ev = event("medicare", vec![svc("1", "97530", "15:00", "15:07")]);
    ev["event_id"] = "e-pm".into();
    ev["encounter"]["encounter_id"] = "ENC-PM".into();
    ev["encounter"]["payer"]["id"] = "ANOTHER-PAYER".into();
    let d = ledger.apply(&decode(ev.to_string().as_bytes()).unwrap(), book);
    assert!(d.voided.is_empty());
    assert_eq!(ids_units(&d.lines), [("ENC-PM:1:1".into(), 0)]);
}

#[test]
fn an_ncci_pair_split_over_two_visits_of_the_day_is_flagged() {
    // 97140 (column 1) in the morning, 97530 (column 2) in the afternoon:
    // one provider, one patient, one date of service for NCCI.
    let am = visit(
        "ENC-AM",
        "e-am",
        1,
        vec![svc("1", "97140", "09:00", "09:20")],
    );
    let pm = visit(
        "ENC-PM",
        "e-pm",
        1,
        vec![svc("1", "97530", "15:00", "15:20")],
    );
    // CMS deleted 97140/97530 in 2019: the mechanics run on a table of its own.
    let rules = rules_with_ptp(json!([
        { "column1": "97140", "column2": "97530", "modifier_indicator": 1, "effective": null, "deleted": null }
    ]));
    let day = crate::domain::evaluate::evaluate_day(&[&am, &pm], &rules);
    assert!(flag(&day[0][0], FlagCode::NcciPtp).is_none());
    let f = flag(&day[1][0], FlagCode::NcciPtp).expect("column 2 flagged");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("another visit of the day"),
        "{}",
        f.message
    );
    assert_eq!(f.related_codes, [Code::parse("97140").unwrap()]);

    // With a distinct-service modifier on the column-2 line: information.
    let mut ev = event("medicare", vec![svc("1", "97530", "15:00", "15:20")]);
    ev["event_id"] = "e-pm".into();
    ev["encounter"]["encounter_id"] = "ENC-PM".into();
    ev["encounter"]["services"][0]["modifiers"] = json!(["XU"]);
    let pm = decode(ev.to_string().as_bytes()).unwrap();
    let day = crate::domain::evaluate::evaluate_day(&[&am, &pm], &rules);
    assert_eq!(
        flag(&day[1][0], FlagCode::NcciPtp).unwrap().severity,
        Severity::Info
    );
    // With the shipped CMS rows, 97140/97530 is no edit in 2026, and 97150
    // in another visit is a pair they do not cover.
    let day = crate::domain::evaluate::evaluate_day(&[&am, &pm], rules_on(am.date_of_service));
    assert!(day
        .iter()
        .flatten()
        .all(|l| flag(l, FlagCode::NcciPtp).is_none()));
    let group = visit("ENC-PM", "e-pm", 1, vec![minutes_svc("1", "97150", 30)]);
    let day = crate::domain::evaluate::evaluate_day(&[&am, &group], rules_on(am.date_of_service));
    let f = flag(&day[1][0], FlagCode::NcciNotChecked).expect("97140/97150 not covered");
    assert!(f.message.contains("another visit"), "{}", f.message);
}
