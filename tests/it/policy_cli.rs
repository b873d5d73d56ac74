//! `--payer-policy` / `CLAIMLINE_PAYER_POLICY` as a user gives it to
//! `claimline evaluate` and `claimline run`.

use std::process::Command;

use crate::evaluate_cli::{evaluate, flagged, lines};

/// A payer policy file in a fresh temporary directory.
fn policy_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("claimline-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_payer_policy_file_changes_the_outcome_and_the_rules_version() {
    let (code, out, err) = evaluate(&["examples/encounters.jsonl"], b"");
    assert_eq!(code, 0, "{err}");
    let before = lines(&out);
    let acme = |ls: &[serde_json::Value]| {
        ls.iter()
            .find(|l| l["payer_id"] == "ACME-HEALTH" && l["code"] == "97530")
            .cloned()
            .unwrap()
    };
    let b = acme(&before);
    assert!(b["units"].as_u64().unwrap() >= 2, "{b}");
    assert!(flagged(&b, "UNITS_OVER_LIMIT").is_empty());

    let path = policy_file(
        "acme.json",
        r#"{"payers": {"ACME-HEALTH": {"extends": "commercial", "daily_unit_limits": {"97530": 1}}}}"#,
    );
    let (code, out, err) = evaluate(
        &[
            "--payer-policy",
            path.to_str().unwrap(),
            "examples/encounters.jsonl",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let after = lines(&out);
    assert_eq!(after.len(), before.len());
    let a = acme(&after);
    assert_eq!(flagged(&a, "UNITS_OVER_LIMIT").len(), 1, "{a}");
    assert_eq!(a["status"], "needs_review");
    let version = a["rules_version"].as_str().unwrap();
    let builtin = b["rules_version"].as_str().unwrap();
    assert!(version.contains("+policy."), "{version}");
    assert_ne!(version, builtin);
    // Every line names the policy; the other payers' lines are unchanged.
    for (x, y) in before.iter().zip(&after) {
        assert_eq!(y["rules_version"], version);
        if x["payer_id"] != "ACME-HEALTH" {
            let (mut x, mut y) = (x.clone(), y.clone());
            x["rules_version"] = serde_json::Value::Null;
            y["rules_version"] = serde_json::Value::Null;
            assert_eq!(x, y);
        }
    }
}

#[test]
fn a_bad_payer_policy_file_is_refused_naming_the_problem() {
    let path = policy_file(
        "bad.json",
        r#"{"payers": {"ACME-HEALTH": {"extends": "commercial", "daily_unit_limits": {"97530": "four"}}}}"#,
    );
    // The variable works as the flag does.
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args(["evaluate", "examples/encounters.jsonl"])
        .env("CLAIMLINE_PAYER_POLICY", &path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing evaluated");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("payer policy {}", path.display())),
        "{err}"
    );
    assert!(
        err.contains("payers.ACME-HEALTH.daily_unit_limits.97530: a limit must be a whole number"),
        "{err}"
    );
}

#[test]
fn the_service_refuses_to_start_with_a_bad_payer_policy_file() {
    let path = policy_file(
        "bad-run.json",
        r#"{"plans": {"commercial": {"unit_method": "per_minute"}}}"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args(["run", "--payer-policy", path.to_str().unwrap()])
        // Nothing listens there: the policy is refused before any connection.
        .env("DATABASE_URL", "postgres://claimline@127.0.0.1:1/none")
        .env("CLAIMLINE_METRICS_ADDR", "127.0.0.1:0")
        .env("CLAIMLINE_LOG_FORMAT", "pretty")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("plans.commercial.unit_method: unknown unit method")
            && err.contains("per_minute"),
        "{err}"
    );
}

/// The service judges by the policy file; `reprocess` given the same file
/// finds nothing to change, and without it would change the line.
#[tokio::test(flavor = "multi_thread")]
async fn the_service_and_reprocess_judge_by_the_same_policy_file() {
    use crate::support::{bootstrap, event, TestEnv};
    const T: std::time::Duration = std::time::Duration::from_secs(60);
    let path = policy_file(
        "service.json",
        r#"{"payers": {"ACME-HEALTH": {"extends": "commercial", "daily_unit_limits": {"97530": 1}}}}"#,
    );
    let path = path.to_str().unwrap();
    let env = TestEnv::new("policy", 1).await;
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_PAYER_POLICY", path)]);
    svc.wait_ready(T).await;
    let mut ev = event("p-1", "finalized", "ENC-P", 1);
    ev["encounter"]["payer"] = serde_json::json!({"id": "ACME-HEALTH", "plan": "commercial"});
    env.send_events(&[ev]).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 1, T)
        .await;
    let (status, version): (String, String) = sqlx::query_as(
        "SELECT status, rules_version FROM claim_lines WHERE encounter_id = 'ENC-P' AND code = '97530'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(status, "needs_review", "over the file's limit of 1 unit");
    assert!(version.contains("+policy."), "{version}");
    assert!(svc
        .log()
        .contains(&version[..version.find("+policy.").unwrap() + 20]));

    let reprocess = |policy: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claimline"));
        cmd.args(["reprocess", "--since", "2026-03-02", "--dry-run"])
            .env("DATABASE_URL", &env.db_url)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap());
        if let Some(p) = policy {
            cmd.args(["--payer-policy", p]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let same = reprocess(Some(path));
    assert!(
        same.starts_with("1 encounter(s) re-evaluated, 0 changed"),
        "{same}"
    );
    let builtin = reprocess(None);
    assert!(
        builtin.starts_with("1 encounter(s) re-evaluated, 1 changed"),
        "{builtin}"
    );

    // `rules list` with the file shows the version the line carries.
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args(["rules", "list", "--payer-policy", path])
        .env("DATABASE_URL", &env.db_url)
        .output()
        .unwrap();
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains(&format!("\t{version}\n")), "{listed}");
}
