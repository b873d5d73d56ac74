//! Flags: one-on-one, overlaps, edit pairs, limits, documentation.

use super::*;

#[test]
fn group_or_not_one_on_one_97530_is_held() {
    for tweak in [json!({"one_on_one": false}), json!({"group_size": 3})] {
        let mut s = svc("1", "97530", "14:00", "14:30");
        for (k, v) in tweak.as_object().unwrap() {
            s[k] = v.clone();
        }
        let l = &run(&event("medicare", vec![s]))[0];
        assert_eq!(
            flag(l, FlagCode::NotOneOnOne).unwrap().severity,
            Severity::Error
        );
        assert_eq!(l.status, Status::NeedsReview);
    }
    let mut s = svc("1", "97530", "14:00", "14:30");
    s["group_size"] = json!(1);
    assert!(flag(&run(&event("medicare", vec![s]))[0], FlagCode::NotOneOnOne).is_none());
}

#[test]
fn overlapping_minutes_with_97535_and_97110_are_flagged_on_both_lines() {
    for (other, code) in [
        ("97535", FlagCode::Overlap97535),
        ("97110", FlagCode::Overlap97110),
    ] {
        let lines = run(&event(
            "medicare",
            vec![
                svc("1", "97530", "10:00", "10:30"),
                svc("2", other, "10:20", "10:40"),
            ],
        ));
        for l in &lines {
            let f = flag(l, code).unwrap_or_else(|| panic!("{other}: {l:?}"));
            assert_eq!(f.severity, Severity::Error);
            assert!(f.message.contains("10 documented minute"), "{}", f.message);
            assert_eq!(l.status, Status::NeedsReview);
        }
        assert_eq!(flag(&lines[0], code).unwrap().related_codes, vec![other]);
        // Back to back is not an overlap.
        let lines = run(&event(
            "medicare",
            vec![
                svc("1", "97530", "10:00", "10:30"),
                svc("2", other, "10:30", "10:50"),
            ],
        ));
        assert!(lines.iter().all(|l| flag(l, code).is_none()), "{lines:?}");
    }
}

#[test]
fn edit_pair_with_modifier_indicator_1() {
    // An indicator-1 pair with 97140 as column 1 and 97530 as column 2 (the
    // shape of CMS's modifier 59 article, MLN1783722; CMS deleted that
    // pair on 2019-12-31, so the mechanics run on a table of its own). No
    // modifier: the column-2 line (97530) is the one held.
    let rules = rules_with_ptp(json!([
        { "column1": "97140", "column2": "97530", "modifier_indicator": 1, "effective": null, "deleted": null }
    ]));
    let run = |ev: &Value| run_with(ev, &rules);
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97140", "10:00", "10:15"),
            svc("2", "97530", "10:15", "10:45"),
        ],
    ));
    let f = flag(line(&lines, "97530"), FlagCode::NcciPtp).expect("edit applies");
    assert_eq!(
        (f.severity, f.related_codes.clone()),
        (Severity::Error, vec![values::Code::lit(b"97140")])
    );
    assert!(flag(line(&lines, "97140"), FlagCode::NcciPtp).is_none());
    // 59 on the column-1 line does not bypass the edit.
    let mut manual = svc("1", "97140", "10:00", "10:15");
    manual["modifiers"] = json!(["59"]);
    let lines = run(&event(
        "medicare",
        vec![manual, svc("2", "97530", "10:15", "10:45")],
    ));
    let f = flag(line(&lines, "97530"), FlagCode::NcciPtp).unwrap();
    assert_eq!(f.severity, Severity::Error);
    // Distinct times and 59 on the column-2 line: allowed, noted.
    let mut activities = svc("2", "97530", "10:15", "10:45");
    activities["modifiers"] = json!(["59"]);
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97140", "10:00", "10:15"), activities.clone()],
    ));
    let l = line(&lines, "97530");
    assert_eq!(flag(l, FlagCode::NcciPtp).unwrap().severity, Severity::Info);
    assert!(flag(l, FlagCode::Modifier59Misuse).is_none());
    assert_eq!(l.status, Status::Validated);
    assert_eq!(l.modifiers, vec!["GP", "59"]);
    // XU on a service whose minutes overlap: the modifier is misused.
    activities["modifiers"] = json!(["XU"]);
    activities["start"] = json!("2026-03-02T10:10:00Z");
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97140", "10:00", "10:15"), activities],
    ));
    let l = line(&lines, "97530");
    assert_eq!(
        flag(l, FlagCode::Modifier59Misuse).unwrap().severity,
        Severity::Error
    );
    assert_eq!(l.status, Status::NeedsReview);
}

#[test]
fn modifier_59_on_an_overlapping_97110_is_misuse() {
    let mut ex = svc("2", "97110", "10:15", "10:40");
    ex["modifiers"] = json!(["59"]);
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:30"), ex],
    ));
    let l = line(&lines, "97110");
    assert!(flag(l, FlagCode::Overlap97110).is_some());
    assert_eq!(
        flag(l, FlagCode::Modifier59Misuse).unwrap().related_codes,
        vec!["97530"]
    );
    assert!(flag(line(&lines, "97530"), FlagCode::Modifier59Misuse).is_none());
}

#[test]
fn edits_apply_only_between_their_effective_and_deletion_dates() {
    // CMS's v32.3 rows: the 2020 evaluation/97530 edits were withdrawn
    // (indicator 9), so a 2026 visit is clean.
    let ev = event(
        "medicare",
        vec![
            minutes_svc("1", "97161", 45),
            svc("2", "97530", "10:00", "10:30"),
        ],
    );
    assert!(run(&ev)
        .iter()
        .all(|l| flag(l, FlagCode::NcciPtp).is_none()));
    assert!(run(&ev)
        .iter()
        .all(|l| flag(l, FlagCode::NcciNotChecked).is_none()));
    // An indicator-0 edit deleted on 2026-03-01 applies before it, not after.
    let rules = rules_with_ptp(json!([
        { "column1": "97161", "column2": "97530", "modifier_indicator": 0, "effective": "2020-01-01", "deleted": "2026-03-01" }
    ]));
    let mut before = ev.clone();
    before["encounter"]["date_of_service"] = json!("2026-02-28");
    let lines = run_with(&before, &rules);
    let f = flag(line(&lines, "97530"), FlagCode::NcciPtp).expect("in effect on 2026-02-28");
    assert_eq!(f.severity, Severity::Error);
    // Indicator 0: a modifier does not help.
    let mut with_mod = before.clone();
    with_mod["encounter"]["services"][1]["modifiers"] = json!(["59"]);
    let lines = run_with(&with_mod, &rules);
    assert_eq!(
        flag(line(&lines, "97530"), FlagCode::NcciPtp)
            .unwrap()
            .severity,
        Severity::Error
    );
    assert!(run_with(&ev, &rules)
        .iter()
        .all(|l| flag(l, FlagCode::NcciPtp).is_none()));
}

#[test]
fn units_over_the_daily_limit_are_held() {
    // The 4 units of 97530 a day is a commercial payer's rule of thumb.
    let lines = run(&event(
        "commercial",
        vec![svc("1", "97530", "10:00", "11:10")],
    ));
    assert_eq!(lines[0].units, 5);
    assert_eq!(
        flag(&lines[0], FlagCode::UnitsOverLimit).unwrap().severity,
        Severity::Error
    );
    let lines = run(&event(
        "commercial",
        vec![svc("1", "97530", "10:00", "10:53")],
    ));
    assert_eq!(lines[0].units, 4);
    assert!(flag(&lines[0], FlagCode::UnitsOverLimit).is_none());
    // Not a Medicare rule: Medicare's per-day limits are CMS's MUEs.
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "11:10")],
    ));
    assert_eq!(lines[0].units, 5);
    assert!(flag(&lines[0], FlagCode::UnitsOverLimit).is_none());
}

#[test]
fn documentation_flags() {
    let mut ev = event("medicare", vec![minutes_svc("1", "97530", 30)]);
    ev["encounter"]["diagnoses"] = json!([]);
    ev["encounter"]["services"][0]["activities"] = json!([]);
    ev["encounter"]["date_of_service"] = json!("2026-06-01");
    let l = &run(&ev)[0];
    assert_eq!(
        flag(l, FlagCode::MissingDiagnosis).unwrap().severity,
        Severity::Error
    );
    assert_eq!(
        flag(l, FlagCode::MissingTimeDocumentation)
            .unwrap()
            .severity,
        Severity::Warning
    );
    assert_eq!(
        flag(l, FlagCode::PlanOfCareExpired).unwrap().severity,
        Severity::Error
    );
    assert_eq!(
        flag(l, FlagCode::NoFunctionalActivity).unwrap().severity,
        Severity::Warning
    );
    assert_eq!(l.status, Status::NeedsReview);
    assert!(
        l.flags.iter().all(|f| f.message.len() > 40),
        "every flag explains itself: {l:?}"
    );

    ev["encounter"]
        .as_object_mut()
        .unwrap()
        .remove("plan_of_care");
    let l = &run(&ev)[0];
    assert_eq!(
        flag(l, FlagCode::MissingPlanOfCare).unwrap().severity,
        Severity::Warning
    );
    assert!(flag(
        &run(&{
            let mut c = ev.clone();
            c["encounter"]["payer"]["plan"] = json!("commercial");
            c
        })[0],
        FlagCode::MissingPlanOfCare
    )
    .is_none());
}

#[test]
fn warnings_alone_do_not_hold_a_line() {
    let l = &run(&event("medicare", vec![minutes_svc("1", "97530", 30)]))[0];
    assert!(flag(l, FlagCode::MissingTimeDocumentation).is_some());
    assert_eq!(l.status, Status::Validated);
}

#[test]
fn unknown_codes_are_held_with_no_units() {
    let l = &run(&event("medicare", vec![minutes_svc("1", "99999", 30)]))[0];
    assert_eq!(l.units, 0);
    assert_eq!(
        flag(l, FlagCode::UnknownCode).unwrap().severity,
        Severity::Error
    );
}
