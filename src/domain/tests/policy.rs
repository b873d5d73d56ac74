//! Payer policy files: their checks (each problem named with its path) and
//! the merge over the built-in policies.

use super::*;
use crate::domain::policy::{PolicyError, PolicyFile};

fn parse(text: &str) -> Result<PolicyFile, PolicyError> {
    PolicyFile::parse("acme.json", text, &Rules::builtin().catalogue)
}

fn problems(text: &str) -> Vec<String> {
    parse(text).expect_err("the file must be refused").problems
}

fn merged(text: &str) -> Rules {
    parse(text).unwrap().apply(Rules::builtin()).unwrap()
}

fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

#[test]
fn each_problem_is_named_with_its_path() {
    let p =
        problems(r#"{"payers": {"ACME": {"extends": "commercial", "unit_methd": "per_code"}}}"#);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("payers.ACME.unit_methd: unknown field"),
        "{p:?}"
    );

    let p = problems(r#"{"plans": {"commercial": {"unit_method": "per_minute"}}}"#);
    assert!(
        p[0].starts_with(r#"plans.commercial.unit_method: unknown unit method "per_minute""#),
        "{p:?}"
    );

    let p = problems(r#"{"plans": {"other": {"daily_unit_limits": {"97530": "four"}}}}"#);
    assert!(
        p[0].starts_with("plans.other.daily_unit_limits.97530: a limit must be a whole number"),
        "{p:?}"
    );
    assert!(p[0].ends_with(r#"not "four""#), "{p:?}");
    let p = problems(r#"{"plans": {"other": {"daily_unit_limits": {"97530": 2.5}}}}"#);
    assert!(p[0].contains("a limit must be a whole number"), "{p:?}");

    let p = problems(
        r#"{"payers": {"ACME": {"extends": "commercial", "ptp": [
            {"column1": "97164", "modifier_indicator": 1},
            {"column1": "97164", "column2": "97164", "modifier_indicator": 1},
            ["97164", "97530"]
        ]}}}"#,
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("payers.ACME.ptp[0]: a PTP pair is two codes: column2 must be"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("payers.ACME.ptp[1]: a PTP pair is two different codes"),
        "{p:?}"
    );
    assert!(
        p[2].starts_with("payers.ACME.ptp[2]: a PTP pair is an object"),
        "{p:?}"
    );

    let p = problems(r#"{"plans": {"tricare": {}}, "payer": {}}"#);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter()
            .any(|m| m.starts_with("plans.tricare: unknown plan")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|m| m.starts_with("payer: unknown field")),
        "{p:?}"
    );

    let p = problems(r#"{"payers": {"NEW": {"mppr": true}}}"#);
    assert!(
        p[0].starts_with("payers.NEW: a new payer needs extends"),
        "{p:?}"
    );

    let p = problems(
        r#"{"plans": {"commercial": {"mppr": "yes", "assistant_payment_percent": 120,
            "recertification_days": -1, "not_recognized": {"97014": "G02"},
            "daily_unit_limits": {"9753O": 2}}}}"#,
    );
    assert_eq!(p.len(), 5, "{p:?}");
    assert!(p
        .iter()
        .any(|m| m.starts_with("plans.commercial.mppr: must be true or false")));
    assert!(p
        .iter()
        .any(|m| m.starts_with("plans.commercial.daily_unit_limits.9753O:")));
    assert!(p
        .iter()
        .any(|m| m.starts_with("plans.commercial.not_recognized.97014:")));

    let e = parse("{not json").unwrap_err();
    assert!(e.problems[0].starts_with("not valid JSON"), "{e}");
    assert!(e.to_string().starts_with("payer policy acme.json: "), "{e}");
}

#[test]
fn a_payer_of_the_file_starts_from_its_plan_and_overrides_the_fields_it_gives() {
    let rules = merged(
        r#"{"_comment": "ACME's 2026 contract",
            "payers": {"ACME": {"extends": "commercial",
                "daily_unit_limits": {"97530": 2, "97110": 3},
                "ptp": [{"column1": "97140", "column2": "97110", "modifier_indicator": 0,
                         "effective": "2026-01-01", "deleted": null, "source": "ACME policy 12"}]}}}"#,
    );
    let acme = rules.policies.for_payer("ACME", Plan::Commercial);
    assert_eq!(acme.daily_unit_limit(code("97530")), Some(2));
    assert_eq!(acme.daily_unit_limit(code("97110")), Some(3));
    assert_eq!(
        acme.ptp.len(),
        1,
        "the file's ptp replaces the plan's whole"
    );
    assert_eq!(acme.ptp[0].modifier_indicator, 0);
    // The rest is the commercial plan's.
    assert_eq!(acme.unit_method, UnitMethod::PerCode);
    assert!(!acme.assistant_modifiers);
    // Other payers are untouched.
    let other = rules.policies.for_payer("AETNA-PPO", Plan::Commercial);
    assert_eq!(other.daily_unit_limit(code("97530")), Some(4));
    assert_eq!(other.ptp.len(), 2);
}

#[test]
fn a_plan_of_the_file_keeps_the_built_in_fields_it_does_not_give() {
    let rules = merged(r#"{"plans": {"medicare": {"assistant_payment_percent": 80}}}"#);
    let m = rules.policies.for_payer("MEDICARE-B", Plan::Medicare);
    let builtin = Rules::builtin()
        .policies
        .for_payer("MEDICARE-B", Plan::Medicare);
    assert_eq!(m.assistant_payment_percent, 80);
    assert_eq!(m.unit_method, builtin.unit_method);
    assert_eq!(m.kx_threshold, builtin.kx_threshold);
    assert_eq!(m.not_recognized, builtin.not_recognized);
}

#[test]
fn the_file_covers_every_field_of_a_payer_policy() {
    let rules = merged(
        r#"{"payers": {"X": {
            "unit_method": "cms_total_time", "daily_unit_limits": {"97110": 1}, "mppr": true,
            "assistant_payment_percent": 70, "require_plan_of_care": true, "mue": true,
            "assistant_modifiers": true, "slp_assistants": false,
            "not_recognized": {"97014": "G0283"}, "recertification_days": 60,
            "kx_threshold": true, "ncci": false,
            "ptp": [{"column1": "97164", "column2": "97530", "modifier_indicator": 1}],
            "pfs_bundled": true}},
           "therapy_thresholds": [{"year": 2026, "kx_cents": 100000, "review_cents": 200000}]}"#,
    );
    let x = rules.policies.for_payer("X", Plan::Other);
    // Exhaustive: a field added to PayerPolicy stops this compiling until
    // the policy file's checks (policy/check.rs FIELDS) and this test take it.
    let crate::domain::rules::PayerPolicy {
        unit_method: _,
        daily_unit_limits: _,
        mppr: _,
        assistant_payment_percent: _,
        require_plan_of_care: _,
        mue: _,
        assistant_modifiers: _,
        slp_assistants: _,
        not_recognized: _,
        recertification_days: _,
        kx_threshold: _,
        ncci: _,
        ptp: _,
        pfs_bundled: _,
    } = x;
    assert_eq!(x.unit_method, UnitMethod::CmsTotalTime);
    assert_eq!(x.daily_unit_limit(code("97110")), Some(1));
    assert!(x.mppr && x.require_plan_of_care && x.mue && x.assistant_modifiers);
    assert_eq!(x.assistant_payment_percent, 70);
    assert!(!x.slp_assistants && !x.ncci);
    assert_eq!(x.not_recognized.get(&code("97014")), Some(&code("G0283")));
    assert_eq!(x.recertification_days, Some(60));
    assert!(x.kx_threshold && x.pfs_bundled);
    assert_eq!(x.ptp.len(), 1);
    let t = rules.policies.therapy_threshold(2026).unwrap();
    assert_eq!((t.kx_cents, t.review_cents), (100_000, 200_000));
    assert!(
        rules.policies.therapy_threshold(2025).is_some(),
        "other years kept"
    );
}

#[test]
fn the_version_names_the_file_by_its_content() {
    let a = merged(r#"{"plans": {"commercial": {"daily_unit_limits": {"97530": 3}}}}"#);
    let b = merged(r#"{"plans": {"commercial": {"daily_unit_limits": {"97530": 2}}}}"#);
    assert!(
        a.version.starts_with(&format!("{RULES_VERSION}+policy.")),
        "{}",
        a.version
    );
    assert_eq!(a.version.len(), RULES_VERSION.len() + "+policy.".len() + 12);
    assert_ne!(a.version, b.version);
    assert_eq!(
        a.version,
        merged(r#"{"plans": {"commercial": {"daily_unit_limits": {"97530": 3}}}}"#).version
    );
}

#[test]
fn a_policy_changes_what_a_line_says() {
    let ev = event("commercial", vec![svc("1", "97530", "10:00", "10:53")]);
    let builtin = run_with(&ev, rules());
    assert_eq!(builtin[0].units, 4);
    assert!(flag(&builtin[0], FlagCode::UnitsOverLimit).is_none());
    let strict = parse(r#"{"plans": {"commercial": {"daily_unit_limits": {"97530": 2}}}}"#)
        .unwrap()
        .apply(rules())
        .unwrap();
    let lines = run_with(&ev, &strict);
    assert!(flag(&lines[0], FlagCode::UnitsOverLimit).is_some());
    assert_eq!(lines[0].status, Status::NeedsReview);
    assert_eq!(*lines[0].rules_version, *strict.version);
}

#[test]
fn the_shipped_example_is_a_valid_policy_file() {
    let rules = parse(include_str!("../../../examples/payer-policy.json"))
        .unwrap()
        .apply(Rules::builtin())
        .unwrap();
    let acme = rules.policies.for_payer("ACME-HEALTH", Plan::Commercial);
    assert_eq!(acme.daily_unit_limit(code("97530")), Some(3));
    assert!(acme.require_plan_of_care);
    let mcd = rules.policies.for_payer("STATE-MCD", Plan::Medicaid);
    assert_eq!(mcd.recertification_days, Some(60));
    assert_eq!(mcd.unit_method, UnitMethod::CmsTotalTime, "from extends");
}

#[test]
fn the_built_in_policies_pass_the_checks_of_a_policy_file() {
    // Every field data/payers.json uses is one a policy file may give, so
    // a field added to the built-in data is refused by no file.
    let builtin = include_str!("../../../data/payers.json");
    let rules = parse(builtin).unwrap().apply(Rules::builtin()).unwrap();
    for plan in [
        Plan::Medicare,
        Plan::Medicaid,
        Plan::Commercial,
        Plan::Other,
    ] {
        let (a, b) = (
            rules.policies.for_payer("any", plan),
            Rules::builtin().policies.for_payer("any", plan),
        );
        assert_eq!(
            (
                a.unit_method,
                a.mue,
                a.ptp.len(),
                a.daily_unit_limit(code("97530"))
            ),
            (
                b.unit_method,
                b.mue,
                b.ptp.len(),
                b.daily_unit_limit(code("97530"))
            )
        );
    }
}
