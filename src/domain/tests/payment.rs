//! Modifiers, payment, the line fields and the rule data.

use super::*;

#[test]
fn modifiers_in_billing_order() {
    let mut s = svc("1", "97530", "10:00", "10:30");
    s["assistant_minutes"] = json!(30);
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
    // Medicare does not recognize SLP assistants.
    assert_eq!(
        flag(l, FlagCode::AssistantNotAllowed).unwrap().severity,
        Severity::Error
    );
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
    let rules = rules();
    let full = rules.catalogue.unit_payment_cents("97530").unwrap();
    let medicare = &run(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:45")],
    ))[0];
    assert_eq!(medicare.units, 3);
    let paid = medicare.expected_payment_cents.unwrap();
    assert!(paid > full && paid < 3 * full, "{paid} vs {full}");
    let rvu = rules.catalogue.get("97530").unwrap().rvu.unwrap();
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
    let full = rules().catalogue.unit_payment_cents("97530").unwrap();
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
        assert_eq!(
            l.rules_version,
            format!("{RULES_VERSION}+ptp.2026Q4-subset+pfs.2026C"),
            "the built-in data and the CMS tables shipped for 2026-03-02"
        );
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

/// A Medicare event of 2025-11-03 (CMS's 2025 GPCIs price it), 97530 for
/// `minutes`, at `npi`.
fn event_2025(minutes: u32, npi: &str) -> Value {
    let mut ev = event(
        "medicare",
        vec![json!({
            "line_id": "1", "code": "97530",
            "start": "2025-11-03T10:00:00Z",
            "end": format!("2025-11-03T10:{minutes:02}:00Z"),
            "activities": ["sit-to-stand transfers"]
        })],
    );
    ev["encounter"]["date_of_service"] = json!("2025-11-03");
    ev["encounter"]["provider"]["npi"] = json!(npi);
    ev["encounter"]["plan_of_care"]["certified_from"] = json!("2025-10-01");
    ev["encounter"]["plan_of_care"]["certified_through"] = json!("2025-12-31");
    ev
}

#[test]
fn a_known_locality_is_priced_with_its_years_gpcis() {
    use crate::domain::locality::ProviderLocalities;
    // CMS's GPCI2025.csv (tests/fixtures/cms/gpci/), over the shipped
    // tables (RVU25D for 2025).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cms/gpci/GPCI2025.csv"
    );
    let gpci = crate::cms::read_file(
        std::path::Path::new(path),
        crate::cms::Given::default(),
        Rules::builtin(),
    )
    .unwrap();
    // 1234567893 bills in Los Angeles (01182-18) by the setting; 1245319599
    // has no setting.
    let book = crate::cms::shipped::with_imported(&[gpci.table])
        .located(ProviderLocalities::parse("1234567893=01182-18").unwrap());
    let run_in = |ev: &Value| {
        let enc = decode(ev.to_string().as_bytes()).expect("valid event");
        evaluate(&enc, book.for_date(enc.date_of_service))
    };
    let rules = book.for_date("2025-11-03".parse().unwrap());
    assert!(rules.version.ends_with("+gpci.2025"), "{}", rules.version);
    let rvu = rules.catalogue.get("97530").unwrap().rvu.unwrap();
    let cf = rules.catalogue.conversion_factor;
    // PPRRVU2025_Oct.csv line 58: work 0.44, non-facility PE 0.62, MP 0.01,
    // CF 32.3465. GPCI2025.csv line 13, 01182-18: PW 1.042, PE 1.194, MP 0.69.
    assert_eq!(
        (rvu.work, rvu.pe_nonfacility, rvu.mp, cf),
        (0.44, 0.62, 0.01, 32.3465)
    );
    let la = |work: f64, pe: f64, mp: f64| {
        ((work * 1.042 + pe * 1.194 + mp * 0.69) * cf * 100.0).round() as i64
    };
    let one = &run_in(&event_2025(15, "1234567893"))[0];
    assert_eq!(one.expected_payment_cents, Some(la(0.44, 0.62, 0.01)));
    assert_eq!(one.expected_payment_cents, Some(3900), "1.20566 x 32.3465");
    // MPPR as before, on the locality's amounts: the second unit loses
    // half its practice expense.
    let two = &run_in(&event_2025(30, "1234567893"))[0];
    assert_eq!(two.units, 2);
    assert_eq!(
        two.expected_payment_cents,
        Some(la(0.44, 0.62, 0.01) + la(0.44, 0.31, 0.01))
    );
    // The event's own locality wins over the setting; Bakersfield 01112-54:
    // PW 1.017, PE 1.093, MP 0.662.
    let mut ev = event_2025(15, "1234567893");
    ev["encounter"]["provider"]["medicare_locality"] = json!("01112-54");
    let cents = ((0.44 * 1.017 + 0.62 * 1.093 + 0.01 * 0.662) * cf * 100.0).round() as i64;
    assert_eq!(run_in(&ev)[0].expected_payment_cents, Some(cents));
    // No locality known, a locality the year's file lacks, or a year
    // without GPCIs: the national amount (1.07 x 32.3465).
    let national = Some(3461);
    assert_eq!(
        run_in(&event_2025(15, "1245319599"))[0].expected_payment_cents,
        national
    );
    ev["encounter"]["provider"]["medicare_locality"] = json!("99999-99");
    assert_eq!(run_in(&ev)[0].expected_payment_cents, national);
    let l2026 = &run_in(&event(
        "medicare",
        vec![svc("1", "97530", "10:00", "10:15")],
    ))[0];
    assert_eq!(
        l2026.expected_payment_cents,
        Some(3507),
        "1.05 x 33.4009, national"
    );
    // Commercial payers: no GPCIs.
    let mut commercial = event_2025(15, "1234567893");
    commercial["encounter"]["payer"]["plan"] = json!("commercial");
    assert_eq!(run_in(&commercial)[0].expected_payment_cents, national);
}

#[test]
fn a_bad_locality_in_an_event_is_a_schema_violation_naming_the_field() {
    let mut ev = event_2025(15, "1234567893");
    ev["encounter"]["provider"]["medicare_locality"] = json!("LA-18");
    let e = decode(ev.to_string().as_bytes()).unwrap_err().to_string();
    assert!(e.contains("encounter.provider.medicare_locality"), "{e}");
    assert!(!e.contains("LA-18"), "{e}");
}
