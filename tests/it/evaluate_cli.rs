//! `claimline evaluate` as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

pub(crate) fn evaluate(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .arg("evaluate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn evaluates_the_shipped_examples_in_input_order() {
    let (code, out, err) = evaluate(&["examples/encounters.jsonl"], b"");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["claim_line_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        &ids[..3],
        ["ENC-000101:1:1", "ENC-000101:1:2", "ENC-000102:1:1"]
    );
    assert_eq!(lines[0]["code"], "97530");
    assert_eq!(lines[0]["units"], 2);
    assert!(lines.iter().any(|l| l["status"] == "needs_review"));
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_the_rest_still_run() {
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/encounters.jsonl"
    ))
    .unwrap();
    let first = good.lines().next().unwrap();
    let input = format!(
        "{first}\n{{oops\n\n{}\n{first}\n",
        first.replace("1234567893", "1234567890")
    );
    let (code, out, err) = evaluate(&["-"], input.as_bytes());
    assert_ne!(code, 0);
    // Replayed as the service would: the last line redelivers the first
    // event, a duplicate that publishes nothing.
    assert_eq!(out.lines().count(), 2, "one good event, two lines");
    assert!(err.contains("line 2: invalid JSON"), "{err}");
    assert!(err.contains("line 4: encounter.provider.npi"), "{err}");
    assert!(err.contains("line 5: duplicate event"), "{err}");
    assert!(!err.contains("PAT-77812"), "no PHI on stderr: {err}");
    // Each event alone: the redelivery is judged again.
    let (code, out, _) = evaluate(&["--per-event", "-"], input.as_bytes());
    assert_ne!(code, 0);
    assert_eq!(out.lines().count(), 4, "two good events, two lines each");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, err) = evaluate(&["no/such/file.jsonl"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("cannot open no/such/file.jsonl"), "{err}");
}

/// A visit on `dos` with 97530 then 97116, 25 minutes each.
fn pair_on(event_id: &str, encounter: &str, payer: &str, dos: &str) -> String {
    visit_on(
        event_id,
        encounter,
        payer,
        dos,
        serde_json::json!([
            { "line_id": "1", "code": "97530", "one_on_one": true, "activities": ["stairs"],
              "start": format!("{dos}T09:00:00Z"), "end": format!("{dos}T09:25:00Z") },
            { "line_id": "2", "code": "97116", "one_on_one": true, "activities": ["gait"],
              "start": format!("{dos}T09:30:00Z"), "end": format!("{dos}T09:55:00Z") }
        ]),
    )
}

/// A Medicare visit on `dos` (the hip-fracture example) with `services`.
fn visit_on(
    event_id: &str,
    encounter: &str,
    payer: &str,
    dos: &str,
    services: serde_json::Value,
) -> String {
    let mut ev: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/hip-fracture.json")).unwrap();
    ev["event_id"] = event_id.into();
    ev["encounter"]["encounter_id"] = encounter.into();
    ev["encounter"]["date_of_service"] = dos.into();
    ev["encounter"]["payer"]["id"] = payer.into();
    ev["encounter"]["plan_of_care"]["certified_from"] = dos.into();
    ev["encounter"]["plan_of_care"]["certified_through"] = "2026-12-31".into();
    ev["encounter"]["services"] = services;
    ev.to_string() + "\n"
}

/// Each event's encounter as a patient of its own: visits of one patient,
/// provider and payer on one date are one day (tested on their own).
fn own_patients(input: &str) -> String {
    input
        .lines()
        .map(|l| {
            let mut ev: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = format!("PAT-{}", ev["encounter"]["encounter_id"].as_str().unwrap());
            ev["encounter"]["patient"]["id"] = id.into();
            ev.to_string() + "\n"
        })
        .collect()
}

/// 97530 for 25 minutes (2 units) and 97150, group therapy, 30 minutes.
fn group_pair_on(event_id: &str, encounter: &str, dos: &str) -> String {
    visit_on(
        event_id,
        encounter,
        "MEDICARE-B",
        dos,
        serde_json::json!([
            { "line_id": "1", "code": "97530", "one_on_one": true, "activities": ["stairs"],
              "start": format!("{dos}T09:00:00Z"), "end": format!("{dos}T09:25:00Z") },
            { "line_id": "2", "code": "97150", "minutes": 30, "activities": ["group balance class"] }
        ]),
    )
}

/// 97530 for 15 minutes: one unit, paid in full.
fn one_unit_on(event_id: &str, encounter: &str, dos: &str) -> String {
    visit_on(
        event_id,
        encounter,
        "MEDICARE-B",
        dos,
        serde_json::json!([
            { "line_id": "1", "code": "97530", "one_on_one": true, "activities": ["stairs"],
              "start": format!("{dos}T09:00:00Z"), "end": format!("{dos}T09:15:00Z") }
        ]),
    )
}

pub(crate) fn lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The codes of `line`'s flags named `flag`, each with its related codes.
pub(crate) fn flagged(line: &serde_json::Value, flag: &str) -> Vec<serde_json::Value> {
    line["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == flag)
        .map(|f| f["related_codes"].clone())
        .collect()
}

#[test]
fn rules_dir_judges_each_date_by_the_cms_tables_in_force() {
    // tests/fixtures/cms: CMS's RVU25D and RVU26C rows, the 2026 Q2 MUE
    // rows and the v32.3 (2026 Q4) PTP rows (derived), imported over the
    // shipped tables from each file's own date.
    let input = group_pair_on("e1", "ENC-1", "2026-09-30")
        + &group_pair_on("e2", "ENC-2", "2026-10-01")
        + &one_unit_on("e3", "ENC-3", "2025-11-01")
        + &one_unit_on("e4", "ENC-4", "2026-03-02")
        + &visit_on(
            "e5",
            "ENC-5",
            "MEDICARE-B",
            "2026-10-01",
            serde_json::json!([
                { "line_id": "1", "code": "97163", "minutes": 45, "activities": ["evaluation"] },
                { "line_id": "2", "code": "97161", "minutes": 30, "activities": ["evaluation"] }
            ]),
        );
    let input = own_patients(&input);
    let (code, out, err) = evaluate(&["--rules", "tests/fixtures/cms", "-"], input.as_bytes());
    assert_eq!(code, 0, "{err}");
    let got = lines(&out);
    let ids: Vec<&str> = got
        .iter()
        .map(|l| l["claim_line_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "ENC-1:1:1",
            "ENC-1:1:2",
            "ENC-2:1:1",
            "ENC-2:1:2",
            "ENC-3:1:1",
            "ENC-4:1:1",
            "ENC-5:1:1",
            "ENC-5:1:2"
        ]
    );
    // The shipped PTP subset on 2026-09-30; the imported Q4 table on 10-01.
    let q3 = "claimline-rules-2026.12.2+ptp.2026Q4-subset+mue.2026Q2+pfs.2026C";
    let q4 = "claimline-rules-2026.12.2+ptp.2026Q4+mue.2026Q2+pfs.2026C";
    assert!(got[..2].iter().all(|l| l["rules_version"] == q3), "{out}");
    assert!(got[2..4].iter().all(|l| l["rules_version"] == q4), "{out}");

    // 2026-09-30: the shipped PTP rows, which cover pairs of 8 codes, not
    // 97150: the pair is not checked, and both lines say so.
    assert_eq!(
        (&got[0]["code"], &got[1]["code"]),
        (&"97530".into(), &"97150".into())
    );
    assert_eq!(
        flagged(&got[0], "NCCI_NOT_CHECKED"),
        [serde_json::json!(["97150"])]
    );
    assert_eq!(
        flagged(&got[1], "NCCI_NOT_CHECKED"),
        [serde_json::json!(["97530"])]
    );
    // 2026-10-01: the imported Q4 table covers every pair; it has no
    // 97530/97150 edit.
    for l in &got[2..4] {
        assert!(flagged(l, "NCCI_NOT_CHECKED").is_empty(), "{l}");
        assert!(flagged(l, "NCCI_PTP").is_empty(), "{l}");
        assert_eq!(l["status"], "validated");
    }
    // A CMS edit in force in Q4 2026: 97163 (column 1) with 97161,
    // modifier indicator 0.
    assert_eq!(got[7]["code"], "97161");
    assert_eq!(flagged(&got[7], "NCCI_PTP"), [serde_json::json!(["97163"])]);
    assert_eq!(got[7]["status"], "needs_review");
    assert!(flagged(&got[6], "NCCI_PTP").is_empty());

    // Prices by year, one full unit of 97530: RVU25D (work 0.44, PE 0.62,
    // MP 0.01) x 32.3465 = $34.61; RVU26C (0.44, 0.60, 0.01) x 33.4009 =
    // $35.07.
    assert_eq!(
        got[4]["rules_version"],
        "claimline-rules-2026.12.2+ptp.2026Q4-subset+pfs.2025D"
    );
    assert_eq!(got[4]["expected_payment_cents"], 3461);
    assert_eq!(
        got[5]["rules_version"],
        "claimline-rules-2026.12.2+ptp.2026Q4-subset+pfs.2026C"
    );
    assert_eq!(got[5]["expected_payment_cents"], 3507);
    // Two units and a group unit (multiple procedure payment reduction: the
    // second 97530 unit and 97150 lose half their PE): $35.07 + $25.05,
    // and (0.29 + 0.12 + 0.01) x 33.4009 = $14.03.
    assert_eq!(
        (
            &got[2]["expected_payment_cents"],
            &got[3]["expected_payment_cents"]
        ),
        (&6012.into(), &1403.into())
    );

    // Without --rules: the shipped tables. The same rows priced 2025 and
    // 2026, but on 2026-10-01 too the shipped PTP rows, so 97530/97150 is
    // not checked on either date.
    let (code, out, err) = evaluate(&["-"], input.as_bytes());
    assert_eq!(code, 0, "{err}");
    let shipped = lines(&out);
    assert_eq!(
        shipped[5]["rules_version"],
        "claimline-rules-2026.12.2+ptp.2026Q4-subset+pfs.2026C"
    );
    for l in &shipped[..4] {
        assert_eq!(flagged(l, "NCCI_NOT_CHECKED").len(), 1, "{l}");
    }
    assert_eq!(
        (
            &shipped[4]["expected_payment_cents"],
            &shipped[5]["expected_payment_cents"]
        ),
        (&3461.into(), &3507.into())
    );
    assert_eq!(
        flagged(&shipped[7], "NCCI_PTP"),
        [serde_json::json!(["97163"])]
    );

    let (code, _, err) = evaluate(&["--rules", "tests/it", "-"], input.as_bytes());
    assert_eq!(code, 2);
    assert!(err.contains("no CMS table files in tests/it"), "{err}");
}

#[test]
fn kx_accumulates_over_the_input() {
    // One patient, a visit a day (another payer id each, so not one day):
    // about $90 a visit, so the threshold ($2,480) is passed around the
    // 28th visit; every line after the crossing carries KX.
    let input: String = (0..40)
        .map(|i| {
            pair_on(
                &format!("e{i}"),
                &format!("ENC-{i}"),
                &format!("MCR-{i}"),
                "2026-06-01",
            )
        })
        .collect();
    let (code, out, err) = evaluate(&["-"], input.as_bytes());
    assert_eq!(code, 0, "{err}");
    let got = lines(&out);
    let kx: Vec<bool> = got
        .iter()
        .map(|l| l["modifiers"].as_array().unwrap().iter().any(|m| m == "KX"))
        .collect();
    let first = kx.iter().position(|k| *k).expect("KX once past $2,480");
    assert!(kx[first..].iter().all(|k| *k), "every later line");
    let before: i64 = got[..first]
        .iter()
        .map(|l| l["expected_payment_cents"].as_i64().unwrap())
        .sum();
    let with_first = before + got[first]["expected_payment_cents"].as_i64().unwrap();
    assert!(
        before <= 248_000 && with_first > 248_000,
        "{before} {with_first}"
    );
}

#[test]
fn a_file_that_starts_with_a_byte_order_mark_evaluates_as_without_it() {
    let plain = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/encounters.jsonl"
    ))
    .unwrap();
    let mut marked = b"\xEF\xBB\xBF".to_vec();
    marked.extend(&plain);
    let (code, with_mark, err) = evaluate(&["-"], &marked);
    assert_eq!(code, 0, "{err}");
    let (_, without, _) = evaluate(&["-"], &plain);
    assert!(!with_mark.is_empty());
    assert_eq!(with_mark, without);
}
