//! A clock minute is billed once across services and evaluations; XE is
//! no distinct-service modifier within one encounter; 0-unit lines say so;
//! the modifiers kept over the limit are those that change payment.

use super::*;

fn group(line: &str, start: &str, end: &str) -> Value {
    let mut s = svc(line, "97150", start, end);
    s["group_size"] = json!(3);
    s["one_on_one"] = json!(false);
    s
}

#[test]
fn one_on_one_minutes_inside_a_group_session_are_the_group_s_in_either_order() {
    for services in [
        vec![
            group("1", "10:00", "10:30"),
            svc("2", "97110", "10:00", "10:30"),
        ],
        vec![
            svc("1", "97110", "10:00", "10:30"),
            group("2", "10:00", "10:30"),
        ],
    ] {
        let lines = run(&event("medicare", services));
        let ex = line(&lines, "97110");
        assert_eq!((ex.minutes, ex.units), (0, 0), "{ex:?}");
        for (own, other) in [("97110", "97150"), ("97150", "97110")] {
            let f = flag(line(&lines, own), FlagCode::SharedMinutes).expect("both lines");
            assert_eq!(f.severity, Severity::Error);
            assert_eq!(f.related_codes, vec![Code::parse(other).unwrap()]);
        }
        assert_eq!(line(&lines, "97150").units, 1);
        assert!(flag(ex, FlagCode::NoUnits).is_some());
    }
    // Minutes outside the session still count: 10:20-10:50 keeps 20.
    let lines = run(&event(
        "medicare",
        vec![
            group("1", "10:00", "10:30"),
            svc("2", "97110", "10:20", "10:50"),
        ],
    ));
    let ex = line(&lines, "97110");
    assert_eq!((ex.minutes, ex.units), (20, 1));
}

#[test]
fn timed_minutes_inside_an_evaluation_are_the_evaluation_s() {
    // 97161 10:00-10:40 and 97110 10:00-10:30: 40 minutes, not 70.
    let mut eval = svc("1", "97161", "10:00", "10:40");
    eval["activities"] = json!([]);
    let lines = run(&event(
        "medicare",
        vec![eval.clone(), svc("2", "97110", "10:00", "10:30")],
    ));
    let ex = line(&lines, "97110");
    assert_eq!((ex.minutes, ex.units), (0, 0));
    let f = flag(ex, FlagCode::SharedMinutes).expect("flagged");
    assert!(f.message.contains("untimed"), "{}", f.message);
    assert!(flag(line(&lines, "97161"), FlagCode::SharedMinutes).is_some());
    // Partly inside: only the minutes after the evaluation count.
    let lines = run(&event(
        "medicare",
        vec![eval, svc("2", "97110", "10:30", "10:55")],
    ));
    assert_eq!(line(&lines, "97110").minutes, 15);
    // Two timed services keep the rule of the one listed first.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97110", "10:00", "10:30"),
            svc("2", "97112", "10:20", "10:40"),
        ],
    ));
    assert_eq!(line(&lines, "97110").minutes, 30);
    assert_eq!(line(&lines, "97112").minutes, 10);
}

#[test]
fn xe_within_one_encounter_is_modifier_misuse() {
    let rules = rules_with_ptp(json!([
        { "column1": "97140", "column2": "97530", "modifier_indicator": 1, "effective": null, "deleted": null }
    ]));
    let with = |modifier: &str| {
        let mut activities = svc("2", "97530", "10:15", "10:45");
        activities["modifiers"] = json!([modifier]);
        run_with(
            &event(
                "medicare",
                vec![svc("1", "97140", "10:00", "10:15"), activities],
            ),
            &rules,
        )
    };
    let lines = with("XE");
    let l = line(&lines, "97530");
    let f = flag(l, FlagCode::Modifier59Misuse).expect("XE in one encounter");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("XU"), "{}", f.message);
    // Not a valid bypass: the edit holds the line.
    assert_eq!(
        flag(l, FlagCode::NcciPtp).unwrap().severity,
        Severity::Error
    );
    assert_eq!(l.status, Status::NeedsReview);
    // XU (or XS, XP, 59) is the modifier for distinct services of one encounter.
    let lines = with("XU");
    let l = line(&lines, "97530");
    assert!(flag(l, FlagCode::Modifier59Misuse).is_none());
    assert_eq!(flag(l, FlagCode::NcciPtp).unwrap().severity, Severity::Info);
}

#[test]
fn a_line_with_no_units_says_why() {
    // Per code: 7 minutes earn nothing.
    let lines = run(&event(
        "commercial",
        vec![
            svc("1", "97530", "10:00", "10:30"),
            svc("2", "97110", "10:30", "10:37"),
        ],
    ));
    let f = flag(line(&lines, "97110"), FlagCode::NoUnits).expect("0 units");
    assert_eq!(f.severity, Severity::Info);
    assert!(f.message.contains("under the 8"), "{}", f.message);
    assert!(flag(line(&lines, "97530"), FlagCode::NoUnits).is_none());
    // Total time: 44 + 8 minutes are 3 units: 97530's two full units,
    // and the third to the code with the most minutes left over (14 > 8).
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97530", "10:00", "10:44"),
            svc("2", "97110", "10:44", "10:52"),
        ],
    ));
    assert_eq!(line(&lines, "97110").units, 0);
    let f = flag(line(&lines, "97110"), FlagCode::NoUnits).expect("0 units");
    assert!(
        f.message.contains("counted under the day's other codes"),
        "{}",
        f.message
    );
    assert_eq!(line(&lines, "97110").status, Status::Validated, "info only");
}

#[test]
fn over_four_modifiers_the_ones_that_change_payment_are_kept() {
    let mut s = svc("1", "97110", "10:00", "10:30");
    s["assistant_minutes"] = json!(30);
    s["modifiers"] = json!(["76", "AT", "GA", "59", "RT"]);
    let l = &run(&event("medicare", vec![s]))[0];
    // GP, CQ, 59 and GA (an ABN on file: liability) stay; 76, AT and RT go.
    assert_eq!(l.modifiers, vec!["GP", "CQ", "59", "GA"]);
    let f = flag(l, FlagCode::TooManyModifiers).expect("flagged");
    assert!(f.message.contains("dropped 76, AT, RT"), "{}", f.message);
    assert!(
        !f.message.contains("changes payment or liability (an ABN"),
        "{}",
        f.message
    );
    // Five that all change payment: the last goes, and the warning names it.
    let mut s = svc("1", "97110", "10:00", "10:30");
    s["assistant_minutes"] = json!(30);
    s["modifiers"] = json!(["GA", "59", "KX"]);
    let l = &run(&event("medicare", vec![s]))[0];
    assert_eq!(l.modifiers.len(), 4);
    let f = flag(l, FlagCode::TooManyModifiers).expect("flagged");
    assert!(
        f.message.contains("changes payment or liability"),
        "{}",
        f.message
    );
}

fn at(line: &str, code: &str, start: &str, end: &str) -> Value {
    let mut s = svc(line, code, "10:00", "10:30");
    s["start"] = json!(start);
    s["end"] = json!(end);
    s.as_object_mut().unwrap().remove("minutes");
    s
}

#[test]
fn times_on_another_day_than_the_date_of_service_are_held() {
    // Date of service 2026-03-02 (the tests' event), times on the 4th.
    let lines = run(&event(
        "medicare",
        vec![at(
            "1",
            "97530",
            "2026-03-04T10:00:00Z",
            "2026-03-04T10:30:00Z",
        )],
    ));
    let f = flag(&lines[0], FlagCode::ServiceDateMismatch).expect("another day");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("2026-03-04"), "{}", f.message);
    assert_eq!(lines[0].status, Status::NeedsReview);
    // Judged in the timestamps' own offset: 23:30-23:55 at UTC-5 is the
    // 2nd there, though the 3rd in UTC.
    let lines = run(&event(
        "medicare",
        vec![at(
            "1",
            "97530",
            "2026-03-02T23:30:00-05:00",
            "2026-03-02T23:55:00-05:00",
        )],
    ));
    assert!(flag(&lines[0], FlagCode::ServiceDateMismatch).is_none());
    // Across midnight: the day holding most minutes (40 of 50 on the 3rd).
    let lines = run(&event(
        "medicare",
        vec![at(
            "1",
            "97530",
            "2026-03-02T23:50:00Z",
            "2026-03-03T00:40:00Z",
        )],
    ));
    assert!(flag(&lines[0], FlagCode::ServiceDateMismatch).is_some());
    // A tie (15 and 15) goes to the start's day.
    let lines = run(&event(
        "medicare",
        vec![at(
            "1",
            "97530",
            "2026-03-02T23:45:00Z",
            "2026-03-03T00:15:00Z",
        )],
    ));
    assert!(flag(&lines[0], FlagCode::ServiceDateMismatch).is_none());
}
