//! Minutes to units, per payer method.

use super::*;

#[test]
fn the_seed_case_hip_fracture_on_medicare() {
    let ev: Value =
        serde_json::from_str(include_str!("../../../examples/hip-fracture.json")).unwrap();
    let lines = run(&ev);
    // 24 + 23 = 47 minutes: 3 units, the extra one to 97530 (9 min left vs 8).
    assert_eq!(
        units(&lines),
        vec![("97530".into(), 2), ("97110".into(), 1)]
    );
    assert!(
        lines
            .iter()
            .all(|l| l.status == Status::Validated && l.flags.is_empty()),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .all(|l| l.modifiers == ["GP"] && l.unit_method == UnitMethod::CmsTotalTime));
    assert_eq!(lines[0].claim_line_id, "ENC-000101:1:1");
    assert_eq!(lines[1].claim_line_id, "ENC-000101:1:2");
}

#[test]
fn the_unit_method_follows_the_payer_plan() {
    let services = vec![minutes_svc("1", "97110", 33), minutes_svc("2", "97140", 7)];
    let cms = run(&event("medicare", services.clone()));
    assert_eq!(units(&cms), vec![("97110".into(), 2), ("97140".into(), 1)]);
    let medicaid = run(&event("medicaid", services.clone()));
    assert_eq!(units(&medicaid), units(&cms));
    let per_code = run(&event("commercial", services.clone()));
    assert_eq!(
        units(&per_code),
        vec![("97110".into(), 2), ("97140".into(), 0)]
    );
    assert!(per_code
        .iter()
        .all(|l| l.unit_method == UnitMethod::PerCode));
    assert_eq!(units(&run(&event("other", services))), units(&per_code));
}

fn rules_with_payers(payers: &str) -> Rules {
    Rules::from_json(
        include_str!("../../../data/catalogue.json"),
        payers,
        include_str!("../../../data/edits.json"),
    )
    .unwrap()
}

#[test]
fn a_payer_of_its_own_overrides_its_plan() {
    let mut payers: Value =
        serde_json::from_str(include_str!("../../../data/payers.json")).unwrap();
    payers["payers"]["PAYER-1"] =
        json!({ "unit_method": "cms_total_time", "daily_unit_limits": { "97530": 2 } });
    let rules = rules_with_payers(&payers.to_string());
    let ev = event(
        "commercial",
        vec![minutes_svc("1", "97530", 40), minutes_svc("2", "97140", 7)],
    );
    let lines = run_with(&ev, &rules);
    assert_eq!(
        units(&lines),
        vec![("97530".into(), 3), ("97140".into(), 0)]
    );
    assert!(flag(&lines[0], FlagCode::UnitsOverLimit).is_some());
    assert_eq!(lines[0].unit_method, UnitMethod::CmsTotalTime);
}

#[test]
fn same_code_services_are_one_line_and_untimed_codes_are_not_pooled() {
    let ev = event(
        "medicare",
        vec![
            minutes_svc("1", "97530", 10),
            minutes_svc("2", "97161", 30),
            minutes_svc("3", "97530", 5),
            minutes_svc("4", "97010", 15),
        ],
    );
    let lines = run(&ev);
    assert_eq!(
        units(&lines),
        vec![
            ("97530".into(), 1),
            ("97161".into(), 1),
            ("97010".into(), 1)
        ]
    );
    assert_eq!(line(&lines, "97530").minutes, 15);
    assert_eq!(
        lines.iter().map(|l| l.line_no).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // 97530 with 7 minutes next to a 45-minute evaluation: no pooling with untimed codes.
    let lines = run(&event(
        "medicare",
        vec![minutes_svc("1", "97530", 7), minutes_svc("2", "97161", 45)],
    ));
    assert_eq!(
        units(&lines),
        vec![("97530".into(), 0), ("97161".into(), 1)]
    );
    assert!(flag(line(&lines, "97530"), FlagCode::Below8Minutes).is_some());
}

#[test]
fn times_win_over_minutes_that_disagree() {
    let mut s = svc("1", "97530", "14:00", "14:30");
    s["minutes"] = json!(20);
    let lines = run(&event("commercial", vec![s.clone()]));
    assert_eq!((lines[0].minutes, lines[0].units), (30, 2));
    let f = flag(&lines[0], FlagCode::MinutesMismatch).expect("mismatch flagged");
    assert_eq!(f.severity, Severity::Warning);
    // One minute apart is rounding, not a mismatch.
    s["minutes"] = json!(31);
    assert!(flag(
        &run(&event("commercial", vec![s]))[0],
        FlagCode::MinutesMismatch
    )
    .is_none());
}

#[test]
fn a_code_under_8_minutes_can_still_earn_a_unit_under_cms() {
    let lines = run(&event(
        "medicare",
        vec![minutes_svc("1", "97110", 33), minutes_svc("2", "97140", 7)],
    ));
    let f = flag(line(&lines, "97140"), FlagCode::Below8Minutes).expect("flagged");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("1 unit"), "{}", f.message);
    assert!(flag(line(&lines, "97110"), FlagCode::Below8Minutes).is_none());
}
