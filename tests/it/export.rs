//! `claimline export` over lines the service produced from real events
//! (Postgres and the broker): the billable lines in claim-key order, the
//! void, 0-unit, held and out-of-range lines left out, and the review queue.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{event, TestEnv};

const T: Duration = Duration::from_secs(60);

/// `ev` moved to another date of service (its documented times too).
fn on_date(mut ev: Value, date: &str) -> Value {
    ev["encounter"]["date_of_service"] = json!(date);
    for s in ev["encounter"]["services"].as_array_mut().unwrap() {
        for k in ["start", "end"] {
            let t = s[k].as_str().unwrap().replace("2026-03-02", date);
            s[k] = json!(t);
        }
    }
    ev
}

fn export(db_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .arg("export")
        .args(args)
        .env("DATABASE_URL", db_url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The CSV as (header, rows of column name -> value).
fn parse(csv_text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[0], "claim_no");
    r.records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_the_billable_lines_in_claim_key_order_and_the_review_queue() {
    let env = TestEnv::new("export", 1).await;
    let svc = env.service();
    svc.wait_ready(T).await;

    let a = event("x-a", "finalized", "ENC-A", 1);
    // The same patient with another payer: another claim.
    let mut d = event("x-d", "finalized", "ENC-D", 1);
    d["encounter"]["patient"]["id"] = json!("PAT-ENC-A");
    d["encounter"]["payer"] = json!({"id": "ACME-HEALTH", "plan": "commercial"});
    // Amended: version 1's lines are void, version 2's are in force.
    let b1 = event("x-b1", "finalized", "ENC-B", 1);
    let mut b2 = event("x-b2", "amended", "ENC-B", 2);
    b2["encounter"]["services"][1]["end"] = json!("2026-03-02T14:55:00Z");
    b2["encounter"]["services"][1]["minutes"] = json!(31);
    // Voided: nothing in force.
    let c1 = event("x-c1", "finalized", "ENC-C", 1);
    let c2 = event("x-c2", "voided", "ENC-C", 1);
    // A third service of 5 minutes: its line has 0 units.
    let mut z = event("x-z", "finalized", "ENC-Z", 1);
    z["encounter"]["services"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "line_id": "3", "code": "97112", "one_on_one": true,
            "start": "2026-03-02T14:47:00Z", "end": "2026-03-02T14:52:00Z",
            "activities": ["balance"]
        }));
    // Held: no diagnosis.
    let mut r = event("x-r", "finalized", "ENC-R", 1);
    r["encounter"]["diagnoses"] = json!([]);
    // Outside the range.
    let out = on_date(event("x-out", "finalized", "ENC-OUT", 1), "2026-03-20");
    env.send_events(&[a, d, b1, b2, c1, c2, z, r, out]).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 9, T)
        .await;

    // What the service produced, so the exclusions below are real ones.
    let zero: i64 = env
        .count("SELECT count(*) FROM claim_lines WHERE encounter_id = 'ENC-Z' AND units = 0 AND status = 'validated'")
        .await;
    assert_eq!(zero, 1, "the 5-minute line is validated with 0 units");
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'void'")
            .await,
        4,
        "ENC-B v1 and ENC-C lines are void"
    );

    let (code, csv_text, err) =
        export(&env.db_url, &["--from", "2026-03-01", "--to", "2026-03-10"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("8 billable line(s)"), "{err}");
    // Read in pages of 3 (keyset pages): the same file.
    let (code, paged, err) = export(
        &env.db_url,
        &[
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-10",
            "--page-size",
            "3",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(paged, csv_text);
    let rows = parse(&csv_text);
    let ids: Vec<&str> = rows.iter().map(|r| r["claim_line_id"].as_str()).collect();
    let claims: Vec<&str> = rows.iter().map(|r| r["claim_no"].as_str()).collect();
    let z: Vec<String> = sqlx::query_scalar(
        "SELECT claim_line_id FROM claim_lines WHERE encounter_id = 'ENC-Z' AND units > 0 ORDER BY line_no",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(z.len(), 2);
    assert_eq!(
        ids,
        [
            "ENC-D:1:1",
            "ENC-D:1:2", // PAT-ENC-A, ACME-HEALTH
            "ENC-A:1:1",
            "ENC-A:1:2", // PAT-ENC-A, MEDICARE-B
            "ENC-B:2:1",
            "ENC-B:2:2", // PAT-ENC-B: version 2 only
            &z[0],
            &z[1], // PAT-ENC-Z: not its 0-unit line
        ],
        "{csv_text}"
    );
    assert_eq!(claims, ["1", "1", "2", "2", "3", "3", "4", "4"]);
    for row in &rows {
        let (units, modifiers, cents, dx): (i32, Vec<String>, Option<i64>, Vec<String>) =
            sqlx::query_as(
                "SELECT units, modifiers, expected_payment_cents, diagnoses FROM claim_lines
                 WHERE claim_line_id = $1 AND status = 'validated'",
            )
            .bind(&row["claim_line_id"])
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert!(units > 0);
        assert_eq!(row["units"], units.to_string());
        assert_eq!(row["status"], "validated");
        assert_eq!(row["held_by"], "");
        let exported: Vec<&str> = (1..=4)
            .map(|i| row[&format!("modifier_{i}")].as_str())
            .filter(|m| !m.is_empty())
            .collect();
        assert_eq!(exported, modifiers, "billing order as stored");
        assert_eq!(
            row["expected_payment"],
            cents
                .map(|c| format!("{}.{:02}", c / 100, c % 100))
                .unwrap_or_default()
        );
        assert_eq!(row["diagnoses"], dx.join(";"));
    }
    assert_eq!(rows[2]["patient_id"], "PAT-ENC-A");
    assert_eq!(rows[2]["payer_id"], "MEDICARE-B");
    assert_eq!(rows[2]["modifier_1"], "GP");
    assert_eq!(rows[2]["diagnoses"], "S72.001D;R26.81");
    assert_eq!(rows[2]["date_of_service"], "2026-03-02");

    // The review queue instead, to a file.
    let dir = std::env::temp_dir().join(format!("claimline-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("queue.csv");
    let (code, stdout, err) = export(
        &env.db_url,
        &[
            "--from",
            "2026-03-02",
            "--status",
            "needs_review",
            "--output",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "PHI: the owner's only"
    );
    let held = parse(&std::fs::read_to_string(&path).unwrap());
    let ids: Vec<&str> = held.iter().map(|r| r["claim_line_id"].as_str()).collect();
    assert_eq!(ids, ["ENC-R:1:1", "ENC-R:1:2"]);
    for row in &held {
        assert_eq!(row["status"], "needs_review");
        assert!(row["held_by"].split(';').any(|f| f == "MISSING_DIAGNOSIS"));
        assert_eq!(row["claim_no"], "1");
    }

    // An empty range: the header alone.
    let (code, csv_text, err) = export(&env.db_url, &["--from", "2025-01-01"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(csv_text.lines().count(), 1);
    assert!(parse(&csv_text).is_empty());
}

#[test]
fn bad_arguments_are_refused_clearly() {
    // Nothing listens there: the arguments are refused before any connection.
    let url = "postgres://claimline@127.0.0.1:1/none";
    let (code, _, err) = export(url, &["--from", "2026-03-05", "--to", "2026-03-01"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--to 2026-03-01 is before --from 2026-03-05"),
        "{err}"
    );
    let (code, _, err) = export(url, &["--from", "2026-02-30"]);
    assert_eq!(code, 2, "clap's usage error");
    assert!(
        err.contains("\"2026-02-30\" is not a date: expected YYYY-MM-DD"),
        "{err}"
    );
    let (code, _, err) = export(url, &["--from", "2026-03-01", "--status", "void"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("validated") && err.contains("needs_review"),
        "{err}"
    );
}
