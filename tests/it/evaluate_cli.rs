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
