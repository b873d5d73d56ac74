//! The compliance review's rules, each with the worked example of its
//! source: CQ/CO per unit, a clock minute once, one-on-one minutes only,
//! NCCI orientation, unit limits, who may furnish what, what the payer pays.

use super::*;

fn minutes_with_assistant(line: &str, code: &str, minutes: u32, assistant: u32) -> Value {
    let mut s = minutes_svc(line, code, minutes);
    s["assistant_minutes"] = json!(assistant);
    s
}

fn lines_of<'a>(lines: &'a [ClaimLine], code: &str) -> Vec<&'a ClaimLine> {
    lines.iter().filter(|l| l.code == code).collect()
}

fn has_cq(l: &ClaimLine) -> bool {
    l.modifiers.iter().any(|m| m == "CQ")
}

#[test]
fn cq_per_unit_cms_scenario_1() {
    // CMS "Billing Examples Using CQ/CO Modifiers", scenario 1: PTA 23
    // minutes and PT 13 minutes of 97110, PT 30 minutes of 97140: 66
    // minutes, 4 units.
    let ev = event(
        "medicare",
        vec![
            minutes_with_assistant("1", "97110", 36, 23),
            minutes_svc("2", "97140", 30),
        ],
    );
    let lines = run(&ev);
    let ex = lines_of(&lines, "97110");
    assert_eq!(ex.len(), 2, "{lines:?}");
    assert_eq!((ex[0].units, has_cq(ex[0])), (1, false));
    assert_eq!((ex[1].units, has_cq(ex[1])), (1, true));
    assert_eq!(ex[0].minutes + ex[1].minutes, 36);
    assert!(flag(ex[1], FlagCode::AssistantModifier).is_some());
    assert!(flag(ex[0], FlagCode::AssistantModifier).is_none());
    assert_eq!(
        (
            lines_of(&lines, "97140")[0].units,
            has_cq(lines_of(&lines, "97140")[0])
        ),
        (2, false)
    );
    assert_eq!(lines.iter().map(|l| l.units).sum::<u32>(), 4);
    // Line numbers follow the split: the units without CQ first.
    assert_eq!(
        lines.iter().map(|l| l.line_no).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // Only the CQ unit is paid at 85%.
    let rules = rules();
    let plain = rules.catalogue.unit_payment_cents("97110").unwrap();
    assert!(ex[1].expected_payment_cents.unwrap() < ex[0].expected_payment_cents.unwrap());
    assert!(ex[0].expected_payment_cents.unwrap() <= plain);
    assert!(flag(ex[1], FlagCode::AssistantModifier)
        .unwrap()
        .message
        .contains("85%"));
}

#[test]
fn cq_on_the_last_unit_when_the_assistant_is_over_the_de_minimis() {
    // PT 50 minutes and PTA 5 of 97110: 55 minutes, 4 units; the last
    // unit's 10 minutes are half the PTA's.
    let lines = run(&event(
        "medicare",
        vec![minutes_with_assistant("1", "97110", 55, 5)],
    ));
    let units: Vec<(u32, bool)> = lines.iter().map(|l| (l.units, has_cq(l))).collect();
    assert_eq!(units, vec![(3, false), (1, true)]);
}

#[test]
fn a_commercial_line_gets_no_cq_and_no_85_percent() {
    let lines = run(&event(
        "commercial",
        vec![minutes_with_assistant("1", "97110", 36, 23)],
    ));
    assert_eq!(lines.len(), 1);
    assert!(!has_cq(&lines[0]));
    assert!(lines
        .iter()
        .all(|l| l.flags.iter().all(|f| !f.message.contains("85%"))));
}

#[test]
fn a_clock_minute_counts_once() {
    // 97112 and 97116 documented over the same 30 minutes: 30 timed
    // minutes, 2 units (not 4), for the service listed first.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97112", "14:00", "14:30"),
            svc("2", "97116", "14:00", "14:30"),
        ],
    ));
    assert_eq!(lines.iter().map(|l| l.units).sum::<u32>(), 2, "{lines:?}");
    assert_eq!(line(&lines, "97112").units, 2);
    for (code, other) in [("97112", "97116"), ("97116", "97112")] {
        let f = flag(line(&lines, code), FlagCode::SharedMinutes).expect("flagged");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.related_codes, vec![values::Code::parse(other).unwrap()]);
    }
    // The same code twice, overlapping: 45 minutes of clock time, 3 units.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97110", "14:00", "14:30"),
            svc("2", "97110", "14:15", "14:45"),
        ],
    ));
    assert_eq!((lines[0].units, lines[0].minutes), (3, 45));
    assert!(flag(&lines[0], FlagCode::SharedMinutes).is_some());
    // The 97530/97535 pair keeps its own flag.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97530", "14:00", "14:30"),
            svc("2", "97535", "14:20", "14:40"),
        ],
    ));
    assert!(flag(line(&lines, "97535"), FlagCode::Overlap97535).is_some());
    assert!(flag(line(&lines, "97535"), FlagCode::SharedMinutes).is_none());
}

#[test]
fn only_one_on_one_minutes_are_timed_minutes() {
    // A group 97530 no longer takes units from a 10-minute one-on-one 97110.
    let mut group = svc("1", "97530", "10:00", "10:30");
    group["one_on_one"] = json!(false);
    let lines = run(&event(
        "medicare",
        vec![group, minutes_svc("2", "97110", 10)],
    ));
    assert_eq!(line(&lines, "97110").units, 1, "{lines:?}");
    let ta = line(&lines, "97530");
    assert_eq!((ta.units, ta.minutes), (0, 0));
    let f = flag(ta, FlagCode::NotOneOnOne).expect("flagged");
    assert!(f.message.contains("97150"));
    // Any one-on-one code, not only 97530.
    let mut ex = svc("1", "97110", "10:00", "10:30");
    ex["group_size"] = json!(4);
    let lines = run(&event("commercial", vec![ex]));
    assert_eq!(lines[0].units, 0);
    assert!(flag(&lines[0], FlagCode::NotOneOnOne).is_some());
    assert!(flag(&lines[0], FlagCode::Below8Minutes).is_none());
}

#[test]
fn cms_v323_rows_decide_the_pairs_not_secondary_sources() {
    // Widely read sources still call 97161-97163 with 97140, and 97140
    // with 97530, edits. CMS's v32.3 table shows them deleted or withdrawn
    // (indicator 9): on a 2026 Medicare date they are validated.
    for pair in [["97161", "97140"], ["97163", "97140"], ["97140", "97530"]] {
        let lines = run(&event(
            "medicare",
            vec![
                minutes_svc("1", pair[0], 30),
                svc("2", pair[1], "10:30", "10:45"),
            ],
        ));
        for l in &lines {
            assert!(flag(l, FlagCode::NcciPtp).is_none(), "{pair:?}: {l:?}");
            assert!(
                flag(l, FlagCode::NcciNotChecked).is_none(),
                "covered: {pair:?}"
            );
        }
    }
    // An edit CMS has in force: 97163 (column 1) with 97161 (column 2),
    // indicator 0, from 2020-10-01.
    let lines = run(&event(
        "medicare",
        vec![minutes_svc("1", "97163", 45), minutes_svc("2", "97161", 30)],
    ));
    let f = flag(line(&lines, "97161"), FlagCode::NcciPtp).expect("CMS's 97163/97161 edit");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.related_codes, vec![values::Code::lit(b"97163")]);
    assert!(flag(line(&lines, "97163"), FlagCode::NcciPtp).is_none());
    // 97530 and 97150 on a 2026 Medicare date: 97150 is outside what the
    // shipped rows cover, so the pair is not checked, and both lines say so.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97530", "10:00", "10:30"),
            minutes_svc("2", "97150", 30),
        ],
    ));
    for (own, other) in [("97530", "97150"), ("97150", "97530")] {
        let f = flag(line(&lines, own), FlagCode::NcciNotChecked).expect("not covered");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.related_codes, vec![Code::parse(other).unwrap()]);
        assert!(
            f.message.contains(own) && f.message.contains(other),
            "{}",
            f.message
        );
    }
    // A table that covers every pair (an imported quarter): no such flag.
    let lines = run_with(
        &event(
            "medicare",
            vec![
                svc("1", "97530", "10:00", "10:30"),
                minutes_svc("2", "97150", 30),
            ],
        ),
        &rules_with_ptp(json!([])),
    );
    assert!(lines
        .iter()
        .all(|l| flag(l, FlagCode::NcciNotChecked).is_none()));
}

#[test]
fn the_97164_pairs_are_a_commercial_policy_not_medicare_s() {
    let ev = |plan: &str| {
        event(
            plan,
            vec![
                minutes_svc("1", "97164", 30),
                svc("2", "97530", "10:30", "11:00"),
            ],
        )
    };
    // Medicare applies CMS's rows only: no edit (97164 is outside what the
    // shipped rows cover, so the pair is not checked).
    let lines = run(&ev("medicare"));
    assert!(flag(line(&lines, "97530"), FlagCode::NcciPtp).is_none());
    assert!(flag(line(&lines, "97530"), FlagCode::NcciNotChecked).is_some());
    // The commercial policy's own pair (data/payers.json, with its source).
    let lines = run(&ev("commercial"));
    let f = flag(line(&lines, "97530"), FlagCode::NcciPtp).expect("the payer's pair");
    assert_eq!(f.related_codes, vec![values::Code::lit(b"97164")]);
}

#[test]
fn medicare_units_are_checked_against_the_mue_when_one_is_loaded() {
    let mut edits: Value = serde_json::from_str(include_str!("../../../data/edits.json")).unwrap();
    edits["mue"] = json!([{ "code": "97530", "value": 2, "adjudication_indicator": 3 }]);
    let rules = Rules::from_json(
        include_str!("../../../data/catalogue.json"),
        include_str!("../../../data/payers.json"),
        &edits.to_string(),
    )
    .unwrap();
    let three = vec![svc("1", "97530", "10:00", "10:40")];
    let lines = run_with(&event("medicare", three.clone()), &rules);
    let f = flag(&lines[0], FlagCode::UnitsOverLimit).expect("over the MUE");
    assert!(f.message.contains("MUE"), "{}", f.message);
    // A commercial payer is not checked against CMS's MUEs.
    let lines = run_with(&event("commercial", three), &rules);
    assert!(flag(&lines[0], FlagCode::UnitsOverLimit).is_none());
    // The built-in data types no MUE: CMS's table in force does.
    assert!(Rules::builtin().edits.mue.is_empty());
}

#[test]
fn cms_s_2026_q2_mues_apply_from_their_effective_date() {
    // 97530: MUE 6 (MAI 3) in CMS's Q2 2026 table; 7 units is 98+ minutes.
    let mut ev = event("medicare", vec![svc("1", "97530", "10:00", "11:45")]);
    ev["encounter"]["date_of_service"] = json!("2026-04-01");
    for s in ev["encounter"]["services"].as_array_mut().unwrap() {
        s["start"] = json!("2026-04-01T10:00:00Z");
        s["end"] = json!("2026-04-01T11:45:00Z");
    }
    if let Some(p) = ev["encounter"]["plan_of_care"].as_object_mut() {
        p.insert("certified_from".into(), json!("2026-03-20"));
        p.insert("certified_to".into(), json!("2026-06-17"));
    }
    let lines = run(&ev);
    assert_eq!(lines[0].units, 7);
    let f = flag(&lines[0], FlagCode::UnitsOverLimit).expect("over CMS's MUE of 6");
    assert!(
        f.message.contains('6') && f.message.contains("MUE"),
        "{}",
        f.message
    );
    // Before 2026-04-01 no MUE table is in force: not checked.
    let lines = run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "11:45")],
    ));
    assert_eq!(lines[0].units, 7);
    assert!(flag(&lines[0], FlagCode::UnitsOverLimit).is_none());
}

#[test]
fn who_may_furnish_and_what_the_payer_pays() {
    // An assistant's evaluation.
    let mut ev = event("medicare", vec![minutes_svc("1", "97161", 30)]);
    ev["encounter"]["provider"]["credential"] = json!("assistant");
    let lines = run(&ev);
    let f = flag(&lines[0], FlagCode::AssistantNotAllowed).expect("flagged");
    assert!(f.message.contains("230.1"));
    // Medicare does not pay 97014: bill G0283.
    let lines = run(&event("medicare", vec![minutes_svc("1", "97014", 15)]));
    let f = flag(&lines[0], FlagCode::NotRecognizedByPayer).expect("flagged");
    assert_eq!(f.related_codes, vec![values::Code::lit(b"G0283")]);
    assert_eq!(lines[0].status, Status::NeedsReview);
    let lines = run(&event("commercial", vec![minutes_svc("1", "97014", 15)]));
    assert!(flag(&lines[0], FlagCode::NotRecognizedByPayer).is_none());
    // A PT evaluation under an OT provider.
    let mut ev = event("medicare", vec![minutes_svc("1", "97161", 30)]);
    ev["encounter"]["provider"]["discipline"] = json!("OT");
    assert!(flag(&run(&ev)[0], FlagCode::DisciplineMismatch).is_some());
    // A clinician's GO on a PT visit: flagged, and the line carries GP only.
    let mut s = svc("1", "97110", "10:00", "10:30");
    s["modifiers"] = json!(["GO"]);
    let l = &run(&event("medicare", vec![s]))[0];
    assert!(flag(l, FlagCode::DisciplineMismatch).is_some());
    assert_eq!(l.modifiers, vec!["GP"]);
}

#[test]
fn medicare_plans_of_care_are_recertified_every_90_days() {
    // Certified from 2025-11-01: day 91 is 2026-01-31; the visit is 2026-03-02.
    let mut ev = event("medicare", vec![svc("1", "97110", "10:00", "10:30")]);
    ev["encounter"]["plan_of_care"]["certified_from"] = json!("2025-11-01");
    let lines = run(&ev);
    let f = flag(&lines[0], FlagCode::RecertificationDue).expect("flagged");
    assert_eq!(f.severity, Severity::Error);
    ev["encounter"]["plan_of_care"]["certified_from"] = json!("2025-12-02");
    assert!(
        flag(&run(&ev)[0], FlagCode::RecertificationDue).is_none(),
        "day 90"
    );
    ev["encounter"]["plan_of_care"]["certified_from"] = json!("2025-12-01");
    assert!(
        flag(&run(&ev)[0], FlagCode::RecertificationDue).is_some(),
        "day 91"
    );
    ev["encounter"]["payer"]["plan"] = json!("commercial");
    assert!(flag(&run(&ev)[0], FlagCode::RecertificationDue).is_none());
}

#[test]
fn a_line_carries_at_most_four_modifiers() {
    let mut s = svc("1", "97110", "10:00", "10:30");
    s["assistant_minutes"] = json!(30);
    s["modifiers"] = json!(["KX", "AT", "GA", "59"]);
    let l = &run(&event("medicare", vec![s]))[0];
    assert_eq!(l.modifiers, vec!["GP", "CQ", "59", "KX"]);
    let f = flag(l, FlagCode::TooManyModifiers).expect("flagged");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("AT, GA"), "{}", f.message);
}

#[test]
fn a_therapy_department_s_codes_are_known() {
    for code in [
        "92507", "92508", "92521", "92522", "92523", "92524", "92526", "92610", "97124", "97150",
        "G0283", "97012", "97014", "97113", "97533", "97542", "97750", "97755", "97760", "97761",
        "97763",
    ] {
        let lines = run(&event("medicare", vec![minutes_svc("1", code, 30)]));
        assert!(flag(&lines[0], FlagCode::UnknownCode).is_none(), "{code}");
    }
}

/// Output is bounded by the input limits: the largest event the decoder
/// accepts (100 services, 100 diagnoses, 100 modifiers a service, ids of
/// 128 characters) yields claim lines far below the broker's 1 MiB.
#[test]
fn the_largest_accepted_event_has_small_claim_lines() {
    let codes: Vec<&str> = Rules::builtin()
        .catalogue
        .codes()
        .iter()
        .map(|c| c.code.as_str())
        .chain(["Z0001", "Z0002"])
        .collect();
    let modifiers: Vec<String> = (0..100).map(|i| format!("{:02}", i % 100)).collect();
    let services: Vec<Value> = (0..100)
        .map(|i| {
            let mut s = svc(
                &format!("{i:0>128}"),
                codes[i % codes.len()],
                "10:00",
                "10:45",
            );
            s["modifiers"] = json!(modifiers);
            s["assistant_minutes"] = json!(20);
            s
        })
        .collect();
    let mut ev = event("medicare", services);
    ev["event_id"] = json!("e".repeat(128));
    ev["encounter"]["encounter_id"] = json!("E".repeat(64));
    ev["encounter"]["patient"]["id"] = json!("P".repeat(128));
    ev["encounter"]["payer"]["id"] = json!("Y".repeat(128));
    ev["encounter"]["diagnoses"] = json!(vec!["S72.001D"; 100]);
    let bytes = ev.to_string();
    assert!(bytes.len() < crate::codec::MAX_EVENT_BYTES);
    let lines = run(&ev);
    let largest = lines.iter().map(|l| l.to_json().len()).max().unwrap();
    assert!(largest < 256 * 1024, "a claim line of {largest} bytes");
}
