//! Table tests for the rules, driven through the public entry points
//! (`decode` then `evaluate`) with events built as JSON.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn svc(line: &str, code: &str, start: &str, end: &str) -> Value {
    json!({
        "line_id": line, "code": code,
        "start": format!("2026-03-02T{start}:00Z"), "end": format!("2026-03-02T{end}:00Z"),
        "activities": ["sit-to-stand transfers"]
    })
}

fn minutes_svc(line: &str, code: &str, minutes: u32) -> Value {
    json!({ "line_id": line, "code": code, "minutes": minutes, "activities": ["stairs"] })
}

fn event(plan: &str, services: Vec<Value>) -> Value {
    json!({
        "event_id": "evt-1",
        "event_type": "finalized",
        "occurred_at": "2026-03-02T15:10:00Z",
        "encounter": {
            "encounter_id": "ENC-1",
            "version": 1,
            "date_of_service": "2026-03-02",
            "patient": { "id": "PAT-SECRET-1", "birth_date": "1948-06-14" },
            "provider": { "npi": "1234567893", "discipline": "PT", "credential": "therapist" },
            "payer": { "id": "PAYER-1", "plan": plan },
            "diagnoses": ["S72.001D"],
            "plan_of_care": { "id": "POC-1", "certified_from": "2026-02-20", "certified_through": "2026-05-20" },
            "services": services
        }
    })
}

fn run(ev: &Value) -> Vec<ClaimLine> {
    run_with(ev, Rules::builtin())
}

fn run_with(ev: &Value, rules: &Rules) -> Vec<ClaimLine> {
    let enc = decode(ev.to_string().as_bytes()).expect("valid event");
    evaluate(&enc, rules)
}

fn reject(ev: &Value) -> EventError {
    decode(ev.to_string().as_bytes()).expect_err("event must be rejected")
}

fn line<'a>(lines: &'a [ClaimLine], code: &str) -> &'a ClaimLine {
    lines
        .iter()
        .find(|l| l.code == code)
        .unwrap_or_else(|| panic!("no {code} line in {lines:?}"))
}

fn flag(l: &ClaimLine, code: FlagCode) -> Option<&Flag> {
    l.flags.iter().find(|f| f.code == code)
}

fn units(lines: &[ClaimLine]) -> Vec<(String, u32)> {
    lines
        .iter()
        .map(|l| (l.code.to_string(), l.units))
        .collect()
}

// ---- parsing -------------------------------------------------------------

fn field_of(err: &EventError) -> &str {
    match err {
        EventError::Schema { field, .. } => field,
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

#[test]
fn rejects_what_breaks_the_contract_and_names_the_field() {
    let base = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "missing npi",
            Box::new(|v| {
                v["encounter"]["provider"]
                    .as_object_mut()
                    .unwrap()
                    .remove("npi");
            }),
            "encounter.provider",
        ),
        (
            "bad date",
            Box::new(|v| v["encounter"]["date_of_service"] = json!("2026-02-30")),
            "encounter.date_of_service",
        ),
        (
            "bad timestamp",
            Box::new(|v| v["occurred_at"] = json!("yesterday")),
            "occurred_at",
        ),
        (
            "npi check digit",
            Box::new(|v| v["encounter"]["provider"]["npi"] = json!("1234567890")),
            "encounter.provider.npi",
        ),
        (
            "npi length",
            Box::new(|v| v["encounter"]["provider"]["npi"] = json!("12345")),
            "encounter.provider.npi",
        ),
        (
            "unknown discipline",
            Box::new(|v| v["encounter"]["provider"]["discipline"] = json!("RN")),
            "encounter.provider.discipline",
        ),
        (
            "unknown plan",
            Box::new(|v| v["encounter"]["payer"]["plan"] = json!("cash")),
            "encounter.payer.plan",
        ),
        (
            "unknown event type",
            Box::new(|v| v["event_type"] = json!("deleted")),
            "event_type",
        ),
        (
            "version 0",
            Box::new(|v| v["encounter"]["version"] = json!(0)),
            "encounter.version",
        ),
        (
            "empty event id",
            Box::new(|v| v["event_id"] = json!("")),
            "event_id",
        ),
        (
            "event id too long",
            Box::new(|v| v["event_id"] = json!("x".repeat(129))),
            "event_id",
        ),
        (
            "encounter id too long",
            Box::new(|v| v["encounter"]["encounter_id"] = json!("x".repeat(65))),
            "encounter.encounter_id",
        ),
        (
            "minutes over 1440",
            Box::new(|v| v["encounter"]["services"][0]["minutes"] = json!(1441)),
            "encounter.services[0].minutes",
        ),
        (
            "negative minutes",
            Box::new(|v| v["encounter"]["services"][0]["minutes"] = json!(-5)),
            "encounter.services[0].minutes",
        ),
        (
            "no services",
            Box::new(|v| v["encounter"]["services"] = json!([])),
            "encounter.services",
        ),
        (
            "neither minutes nor times",
            Box::new(|v| v["encounter"]["services"] = json!([{"line_id": "1", "code": "97530"}])),
            "encounter.services[0].minutes",
        ),
        (
            "only a start time",
            Box::new(|v| {
                v["encounter"]["services"] =
                    json!([{"line_id": "1", "code": "97530", "start": "2026-03-02T14:00:00Z"}])
            }),
            "encounter.services[0].minutes",
        ),
        (
            "end before start",
            Box::new(|v| v["encounter"]["services"][0]["end"] = json!("2026-03-02T13:00:00Z")),
            "encounter.services[0].end",
        ),
        (
            "bad code",
            Box::new(|v| v["encounter"]["services"][0]["code"] = json!("9753")),
            "encounter.services[0].code",
        ),
        (
            "bad modifier",
            Box::new(|v| v["encounter"]["services"][0]["modifiers"] = json!(["GPX"])),
            "encounter.services[0].modifiers[0]",
        ),
        (
            "bad diagnosis",
            Box::new(|v| v["encounter"]["diagnoses"] = json!(["hip"])),
            "encounter.diagnoses[0]",
        ),
        (
            "duplicate line id",
            Box::new(|v| {
                v["encounter"]["services"] =
                    json!([minutes_svc("1", "97530", 10), minutes_svc("1", "97110", 10)])
            }),
            "encounter.services[1].line_id",
        ),
        (
            "plan of care backwards",
            Box::new(|v| v["encounter"]["plan_of_care"]["certified_through"] = json!("2026-01-01")),
            "encounter.plan_of_care.certified_through",
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut ev = base.clone();
        mutate(&mut ev);
        let err = reject(&ev);
        assert_eq!(err.reason_code(), "schema_violation", "{name}: {err}");
        assert!(
            field_of(&err).starts_with(expected),
            "{name}: got field {:?} ({err})",
            field_of(&err)
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn bad_json_and_oversized_events_have_their_own_reason() {
    assert_eq!(
        decode(b"{not json").unwrap_err().reason_code(),
        "invalid_json"
    );
    assert_eq!(decode(b"").unwrap_err().reason_code(), "invalid_json");
    let good = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]).to_string();
    assert_eq!(
        decode(format!("{good} trailing").as_bytes())
            .unwrap_err()
            .reason_code(),
        "invalid_json"
    );
    let big = vec![b' '; MAX_EVENT_BYTES + 1];
    assert_eq!(decode(&big).unwrap_err().reason_code(), "too_large");
    assert_eq!(
        decode(b"[1,2]").unwrap_err().reason_code(),
        "schema_violation"
    );
}

#[test]
fn errors_about_the_patient_never_quote_the_patient() {
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["patient"]["id"] = json!(987654321);
    let err = reject(&ev);
    assert!(field_of(&err).starts_with("encounter.patient"));
    assert!(!err.to_string().contains("987654321"), "{err}");
}

#[test]
fn errors_never_repeat_the_offending_value() {
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["provider"]["npi"] = json!(1234567893u64);
    let err = reject(&ev).to_string();
    assert!(
        err.starts_with(
            "encounter.provider.npi: invalid type: integer (value not shown), expected a string"
        ),
        "{err}"
    );
    // A double-encoded encounter must not echo the patient inside it.
    let inner = ev["encounter"].to_string();
    ev["encounter"] = json!(inner);
    let err = reject(&ev).to_string();
    assert!(
        !err.contains("PAT-SECRET-1") && !err.contains("1948-06-14"),
        "{err}"
    );
    assert!(err.contains("encounter"), "{err}");
}

#[test]
fn unknown_fields_are_ignored_and_a_void_may_have_no_services() {
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["facility"] = json!("north wing");
    ev["encounter"]["services"][0]["room"] = json!(12);
    assert_eq!(run(&ev).len(), 1);
    ev["event_type"] = json!("voided");
    ev["encounter"]["services"] = json!([]);
    assert!(run(&ev).is_empty(), "a voided event yields no new lines");
}

#[test]
fn npi_check_digit() {
    for good in ["1234567893", "1245319599", "1003000126"] {
        assert!(encounter::Npi::parse(good).is_ok(), "{good}");
    }
    for bad in ["1234567890", "1245319590", "123456789", "12345678a3"] {
        assert!(encounter::Npi::parse(bad).is_err(), "{bad}");
    }
}

// ---- units -----------------------------------------------------------------

#[test]
fn the_seed_case_hip_fracture_on_medicare() {
    let ev: Value = serde_json::from_str(include_str!("../../examples/hip-fracture.json")).unwrap();
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
        include_str!("../../data/catalogue.json"),
        payers,
        include_str!("../../data/edits.json"),
    )
    .unwrap()
}

#[test]
fn a_payer_of_its_own_overrides_its_plan() {
    let mut payers: Value = serde_json::from_str(include_str!("../../data/payers.json")).unwrap();
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

// ---- flags -----------------------------------------------------------------

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
    // No modifier: the column 2 code is held.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97530", "10:00", "10:30"),
            svc("2", "97140", "10:30", "10:45"),
        ],
    ));
    let f = flag(line(&lines, "97140"), FlagCode::NcciPtp).expect("edit applies");
    assert_eq!(
        (f.severity, f.related_codes.clone()),
        (Severity::Error, vec![encounter::Code::lit(b"97530")])
    );
    // Distinct times and 59 on the column 2 code: allowed, noted.
    let mut manual = svc("2", "97140", "10:30", "10:45");
    manual["modifiers"] = json!(["59"]);
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:30"), manual.clone()],
    ));
    let l = line(&lines, "97140");
    assert_eq!(flag(l, FlagCode::NcciPtp).unwrap().severity, Severity::Info);
    assert!(flag(l, FlagCode::Modifier59Misuse).is_none());
    assert_eq!(l.status, Status::Validated);
    assert_eq!(l.modifiers, vec!["GP", "59"]);
    // XU on a service whose minutes overlap: the modifier is misused.
    manual["modifiers"] = json!(["XU"]);
    manual["start"] = json!("2026-03-02T10:20:00Z");
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:30"), manual],
    ));
    let l = line(&lines, "97140");
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
    let mut edits: Value = serde_json::from_str(include_str!("../../data/edits.json")).unwrap();
    // The shipped evaluation edits were deleted, so a 2026 visit is clean.
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
    // The same edit with a later deletion date applies before it, not after.
    for e in edits["ptp"].as_array_mut().unwrap() {
        if e["column1"] == "97161" && e["column2"] == "97530" {
            e["deleted"] = json!("2026-03-01");
        }
    }
    let rules = Rules::from_json(
        include_str!("../../data/catalogue.json"),
        include_str!("../../data/payers.json"),
        &edits.to_string(),
    )
    .unwrap();
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
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "11:10")],
    ));
    assert_eq!(lines[0].units, 5);
    assert_eq!(
        flag(&lines[0], FlagCode::UnitsOverLimit).unwrap().severity,
        Severity::Error
    );
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:53")],
    ));
    assert_eq!(lines[0].units, 4);
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

// ---- modifiers -------------------------------------------------------------

#[test]
fn modifiers_in_billing_order() {
    let mut s = svc("1", "97530", "10:00", "10:30");
    s["assistant_minutes"] = json!(4);
    s["modifiers"] = json!(["KX", "GP"]);
    let l = &run(&event("medicare", vec![s.clone()]))[0];
    assert_eq!(l.modifiers, vec!["GP", "CQ", "KX"]);
    assert_eq!(
        flag(l, FlagCode::AssistantModifier).unwrap().severity,
        Severity::Info
    );
    // Exactly 10% is de minimis: no CQ.
    s["assistant_minutes"] = json!(3);
    assert_eq!(
        run(&event("medicare", vec![s.clone()]))[0].modifiers,
        vec!["GP", "KX"]
    );

    let mut ot = event("medicare", vec![svc("1", "97530", "10:00", "10:30")]);
    ot["encounter"]["provider"]["discipline"] = json!("OT");
    ot["encounter"]["provider"]["credential"] = json!("assistant");
    assert_eq!(run(&ot)[0].modifiers, vec!["GO", "CO"]);
    ot["encounter"]["provider"]["discipline"] = json!("SLP");
    let l = &run(&ot)[0];
    assert_eq!(l.modifiers, vec!["GN"]);
    assert!(flag(l, FlagCode::AssistantModifier).is_none());
}

// ---- payment ---------------------------------------------------------------

#[test]
fn one_unit_of_97530_pays_what_medicare_pays() {
    let l = &run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:15")],
    ))[0];
    let cents = l.expected_payment_cents.unwrap();
    assert!((3200..=4500).contains(&cents), "{cents}");
}

#[test]
fn mppr_reduces_every_unit_after_the_first_of_the_day() {
    let rules = Rules::builtin();
    let full = rules.catalogue.unit_payment_cents("97530").unwrap();
    let medicare = &run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:45")],
    ))[0];
    assert_eq!(medicare.units, 3);
    let paid = medicare.expected_payment_cents.unwrap();
    assert!(paid > full && paid < 3 * full, "{paid} vs {full}");
    let rvu = rules.catalogue.get("97530").unwrap().rvu.clone().unwrap();
    let cf = rules.catalogue.conversion_factor;
    let reduced = rvu.work + rvu.pe_nonfacility / 2.0 + rvu.mp;
    assert_eq!(paid, full + 2 * (reduced * cf * 100.0).round() as i64);
    let commercial = &run(&event(
        "commercial",
        vec![svc("1", "97530", "10:00", "10:45")],
    ))[0];
    assert_eq!(commercial.expected_payment_cents, Some(3 * full));
    // Two lines on Medicare: only one unit of the day is paid in full.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97530", "10:00", "10:15"),
            svc("2", "97110", "10:15", "10:30"),
        ],
    ));
    let sum: i64 = lines
        .iter()
        .map(|l| l.expected_payment_cents.unwrap())
        .sum();
    let unreduced = full + rules.catalogue.unit_payment_cents("97110").unwrap();
    assert!(sum < unreduced, "{sum} < {unreduced}");
    assert_eq!(
        line(&lines, "97530").expected_payment_cents,
        Some(full),
        "97530 has the higher practice expense"
    );
}

#[test]
fn assistant_lines_are_paid_85_percent() {
    let mut s = svc("1", "97530", "10:00", "10:15");
    s["assistant_minutes"] = json!(15);
    let l = &run(&event("medicare", vec![s]))[0];
    let full = Rules::builtin()
        .catalogue
        .unit_payment_cents("97530")
        .unwrap();
    assert_eq!(
        l.expected_payment_cents,
        Some((full as f64 * 0.85).round() as i64)
    );
}

#[test]
fn every_line_names_its_rules_and_the_event() {
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97530", "10:00", "10:30"),
            svc("2", "97110", "10:30", "10:40"),
        ],
    ));
    for l in &lines {
        assert_eq!(l.rules_version, RULES_VERSION);
        assert_eq!(
            (&*l.event_id, &*l.patient_id, l.provider_npi.as_str()),
            ("evt-1", "PAT-SECRET-1", "1234567893")
        );
        assert_eq!(l.diagnoses.to_vec(), vec!["S72.001D"]);
    }
}

#[test]
fn flag_codes_are_the_contracts_names() {
    let contract = [
        "NOT_ONE_ON_ONE",
        "BELOW_8_MINUTES",
        "OVERLAP_97535",
        "OVERLAP_97110",
        "NCCI_PTP",
        "MODIFIER_59_MISUSE",
        "UNITS_OVER_LIMIT",
        "MISSING_DIAGNOSIS",
        "MISSING_TIME_DOCUMENTATION",
        "MINUTES_MISMATCH",
        "PLAN_OF_CARE_EXPIRED",
        "NO_FUNCTIONAL_ACTIVITY",
        "ASSISTANT_MODIFIER",
    ];
    let names: Vec<&str> = FlagCode::ALL.iter().map(|f| f.as_str()).collect();
    for c in contract {
        assert!(names.contains(&c), "{c} missing");
    }
    for f in FlagCode::ALL {
        assert_eq!(
            serde_json::to_value(f).unwrap(),
            json!(f.as_str()),
            "metric label and wire name agree"
        );
    }
}

// ---- data ------------------------------------------------------------------

#[test]
fn the_catalogue_covers_the_common_therapy_codes() {
    let c = &Rules::builtin().catalogue;
    let timed = [
        "97110", "97112", "97113", "97116", "97140", "97530", "97533", "97535", "97537", "97542",
        "97750", "97755", "97760", "97761", "97763", "97032", "97033", "97034", "97035", "97036",
    ];
    let untimed = [
        "97010", "97012", "97014", "97016", "97018", "97022", "97024", "97026", "97028", "97150",
        "97161", "97162", "97163", "97164", "97165", "97166", "97167", "97168", "97169", "97170",
        "97171", "97172", "G0283",
    ];
    for code in timed {
        assert!(c.get(code).is_some_and(|i| i.timed), "{code} timed");
    }
    for code in untimed {
        assert!(c.get(code).is_some_and(|i| !i.timed), "{code} untimed");
    }
    assert!(c.codes().iter().all(|i| !i.description.is_empty()));
}

#[test]
fn a_catalogue_listing_a_code_twice_is_refused() {
    let entry = r#"{"code": "97530", "timed": true, "description": "x", "rvu": null}"#;
    let json = format!(r#"{{"conversion_factor": 33.4, "codes": [{entry}, {entry}]}}"#);
    let err = rules::Catalogue::from_json(&json).unwrap_err();
    assert!(err.to_string().contains("97530 is listed twice"), "{err}");
    let json = format!(r#"{{"conversion_factor": 33.4, "codes": [{entry}]}}"#);
    assert!(rules::Catalogue::from_json(&json).is_ok());
}

// ---- properties ------------------------------------------------------------

fn arb_service() -> impl Strategy<Value = Value> {
    let codes = prop::sample::select(vec![
        "97530", "97110", "97112", "97140", "97535", "97150", "97161", "G0283",
    ]);
    (
        codes,
        0u32..600,
        0u32..90,
        prop::option::of(0u32..100),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["59", "XU", "KX"])),
    )
        .prop_map(|(code, start, minutes, documented, one_on_one, modifier)| {
            let start_t = chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap()
                + chrono::Duration::minutes(start.into());
            let mut s = json!({
                "code": code,
                "start": start_t.to_rfc3339(),
                "end": (start_t + chrono::Duration::minutes(minutes.into())).to_rfc3339(),
                "one_on_one": one_on_one,
                "activities": ["transfers"]
            });
            if let Some(d) = documented {
                s["minutes"] = json!(d);
            }
            if let Some(m) = modifier {
                s["modifiers"] = json!([m]);
            }
            s
        })
}

fn arb_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["medicare", "medicaid", "commercial", "other"]),
        prop::collection::vec(arb_service(), 1..6),
    )
        .prop_map(|(plan, services)| {
            let services = services
                .into_iter()
                .enumerate()
                .map(|(i, mut s)| {
                    s["line_id"] = json!(i.to_string());
                    s
                })
                .collect();
            event(plan, services)
        })
}

proptest! {
    #[test]
    fn evaluation_is_deterministic_and_consistent(ev in arb_event()) {
        let a = run(&ev);
        let b = run(&ev);
        prop_assert_eq!(&a, &b);
        for l in &a {
            let held = l.flags.iter().any(|f| f.severity == Severity::Error);
            prop_assert_eq!(l.status == Status::NeedsReview, held);
            prop_assert!(l.modifiers[0] == "GP");
        }
        let plan = ev["encounter"]["payer"]["plan"].as_str().unwrap();
        if plan == "medicare" || plan == "medicaid" {
            let timed_minutes: u32 = a.iter().filter(|l| Rules::builtin().catalogue.get_code(&l.code).unwrap().timed).map(|l| l.minutes).sum();
            let timed_units: u32 = a.iter().filter(|l| Rules::builtin().catalogue.get_code(&l.code).unwrap().timed).map(|l| l.units).sum();
            prop_assert_eq!(timed_units, units::units_for_minutes(timed_minutes));
        }
    }

    #[test]
    fn decoding_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_never_panics_on_damaged_events(ev in arb_event(), cut in 0usize..4000, byte in any::<u8>()) {
        let mut bytes = ev.to_string().into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        if let Ok(enc) = decode(&bytes) {
            let _ = evaluate(&enc, Rules::builtin());
        }
        bytes.truncate(at);
        let _ = decode(&bytes);
    }
}
