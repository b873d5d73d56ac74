//! `claimline evaluate` as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

fn evaluate(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
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
    assert_eq!(out.lines().count(), 4, "two good events, two lines each");
    assert!(err.contains("line 2: invalid JSON"), "{err}");
    assert!(err.contains("line 4: encounter.provider.npi"), "{err}");
    assert!(!err.contains("PAT-77812"), "no PHI on stderr: {err}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, err) = evaluate(&["no/such/file.jsonl"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("cannot open no/such/file.jsonl"), "{err}");
}

/// A visit on `dos` with 97530 then 97116, 25 minutes each.
fn pair_on(event_id: &str, encounter: &str, payer: &str, dos: &str) -> String {
    let mut ev: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/hip-fracture.json")).unwrap();
    ev["event_id"] = event_id.into();
    ev["encounter"]["encounter_id"] = encounter.into();
    ev["encounter"]["date_of_service"] = dos.into();
    ev["encounter"]["payer"]["id"] = payer.into();
    ev["encounter"]["plan_of_care"]["certified_from"] = dos.into();
    ev["encounter"]["plan_of_care"]["certified_through"] = "2026-12-31".into();
    ev["encounter"]["services"] = serde_json::json!([
        { "line_id": "1", "code": "97530", "one_on_one": true, "activities": ["stairs"],
          "start": format!("{dos}T09:00:00Z"), "end": format!("{dos}T09:25:00Z") },
        { "line_id": "2", "code": "97116", "one_on_one": true, "activities": ["gait"],
          "start": format!("{dos}T09:30:00Z"), "end": format!("{dos}T09:55:00Z") }
    ]);
    ev.to_string() + "\n"
}

fn lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rules_dir_judges_each_date_by_the_cms_tables_in_force() {
    let input = pair_on("e1", "ENC-1", "MEDICARE-B", "2026-09-30")
        + &pair_on("e2", "ENC-2", "MEDICARE-B", "2026-10-01");
    let (code, out, err) = evaluate(&["--rules", "tests/fixtures/cms", "-"], input.as_bytes());
    assert_eq!(code, 0, "{err}");
    let got = lines(&out);
    let ncci = |l: &serde_json::Value| {
        l["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "NCCI_PTP")
    };
    assert_eq!(
        got[1]["rules_version"],
        "claimline-rules-2026.11.2+ptp.2026Q3+pfs.2026A"
    );
    assert!(!ncci(&got[1]), "Q3: no 97530/97116 edit");
    assert_eq!(
        got[3]["rules_version"],
        "claimline-rules-2026.11.2+ptp.2026Q4+mue.2026Q4+pfs.2026A"
    );
    assert!(ncci(&got[3]), "Q4: the edit applies");

    // Without --rules: the built-in tables for both dates.
    let (_, out, _) = evaluate(&["-"], input.as_bytes());
    let got = lines(&out);
    assert!(got
        .iter()
        .all(|l| l["rules_version"] == "claimline-rules-2026.11.2"));
    assert!(!ncci(&got[3]));

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
