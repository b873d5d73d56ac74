//! What SREs and revenue-cycle teams read: /metrics (exact counts, valid
//! for promtool, no identifiers in labels) and the reporting views.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{event, metric, TestEnv};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_views_count_exactly_what_was_processed() {
    let env = TestEnv::new("metrics", 1).await;
    let svc = env.service();
    svc.wait_ready(T).await;
    let good1 = event("m1", "finalized", "ENC-M1", 1);
    let good2 = event("m2", "finalized", "ENC-M2", 1);
    let mut held = event("m3", "finalized", "ENC-M3", 1);
    held["encounter"]["diagnoses"] = json!([]);
    let mut wrong = event("m4", "finalized", "ENC-M4", 1);
    wrong["encounter"]["provider"]["discipline"] = json!("RN");
    let mut messages: Vec<(Option<String>, Vec<u8>)> = [&good1, &good2, &held, &wrong, &good1]
        .iter()
        .map(|e| {
            (
                Some(e["encounter"]["encounter_id"].as_str().unwrap().to_owned()),
                e.to_string().into_bytes(),
            )
        })
        .collect();
    messages.insert(2, (None, b"not json".to_vec()));
    env.send(&messages).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 3, T)
        .await;
    env.wait_count("SELECT count(*) FROM dead_letters", 2, T)
        .await;
    env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
        .await;

    // Counters move after the broker's acks; wait for the last of them.
    svc.wait_metric(
        "claimline_events_dead_lettered_total{reason=\"invalid_json\"}",
        |v| v == 1.0,
        T,
    )
    .await;
    let scrape = svc
        .wait_metric(
            "claimline_events_processed_total{outcome=\"duplicate\"}",
            |v| v == 1.0,
            T,
        )
        .await;
    let expect = [
        ("claimline_events_consumed_total", 6.0),
        (
            "claimline_events_processed_total{outcome=\"processed\"}",
            3.0,
        ),
        (
            "claimline_events_processed_total{outcome=\"duplicate\"}",
            1.0,
        ),
        ("claimline_events_processed_total{outcome=\"stale\"}", 0.0),
        (
            "claimline_events_dead_lettered_total{reason=\"invalid_json\"}",
            1.0,
        ),
        (
            "claimline_events_dead_lettered_total{reason=\"schema_violation\"}",
            1.0,
        ),
        (
            "claimline_events_dead_lettered_total{reason=\"too_large\"}",
            0.0,
        ),
        (
            "claimline_claim_lines_published_total{status=\"validated\"}",
            4.0,
        ),
        (
            "claimline_claim_lines_published_total{status=\"needs_review\"}",
            2.0,
        ),
        (
            "claimline_claim_lines_published_total{status=\"void\"}",
            0.0,
        ),
        ("claimline_units_billed_total{code=\"97530\"}", 6.0),
        ("claimline_units_billed_total{code=\"97110\"}", 3.0),
        (
            "claimline_flags_raised_total{flag=\"MISSING_DIAGNOSIS\",severity=\"error\"}",
            2.0,
        ),
        ("claimline_ready", 1.0),
    ];
    for (name, value) in expect {
        assert_eq!(metric(&scrape, name), Some(value), "{name}\n{scrape}");
    }
    assert!(metric(&scrape, "claimline_processing_latency_seconds_count").unwrap() >= 3.0);
    assert!(metric(&scrape, "claimline_db_batch_duration_seconds_count").unwrap() >= 1.0);
    assert!(
        scrape.contains("claimline_build_info{rules_version=\"claimline-rules-"),
        "{scrape}"
    );
    // Lag from librdkafka's statistics: caught up, so zero.
    let lag = format!(
        "claimline_consumer_lag_messages{{partition=\"0\",topic=\"{}\"}}",
        env.input
    );
    svc.wait_metric(&lag, |v| v == 0.0, T).await;
    for id in ["ENC-M", "PAT-", "1234567893", "m1"] {
        assert!(
            !scrape.contains(&format!("\"{id}")),
            "an identifier in a label: {id}"
        );
    }

    // promtool (Debian's prometheus package) accepts the exposition.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by `make test` (scripts/ensure-tools.sh)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );

    // The reporting views agree.
    let (lines, units, cents, held_lines): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT lines, units, expected_payment_cents, lines_held FROM billing_by_code_provider_day
         WHERE code = '97530' AND date_of_service = '2026-03-02' AND provider_npi = '1234567893'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((lines, units, held_lines), (3, 6, 1));
    let line_cents: i64 = env
        .count("SELECT sum(expected_payment_cents)::int8 FROM claim_lines WHERE code = '97530'")
        .await;
    assert_eq!(cents, line_cents);
    let held: Vec<(String, i64)> =
        sqlx::query_as("SELECT flag, lines FROM lines_held_by_flag ORDER BY flag")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(held, vec![("MISSING_DIAGNOSIS".to_string(), 2)]);
    let dead: Vec<(String, i64)> =
        sqlx::query_as("SELECT reason, messages FROM dead_letters_by_reason ORDER BY reason")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        dead,
        vec![
            ("invalid_json".to_string(), 1),
            ("schema_violation".to_string(), 1)
        ]
    );
    let outcomes: i64 = env
        .count("SELECT sum(events)::int8 FROM events_by_outcome_day WHERE outcome = 'processed'")
        .await;
    assert_eq!(outcomes, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn pretty_logs_for_a_terminal_and_no_patient_data_at_debug() {
    let env = TestEnv::new("logs", 1).await;
    let mut svc = env.service_with(&env.db_url, &[("CLAIMLINE_LOG_FORMAT", "pretty")]);
    svc.wait_ready(T).await;
    let mut bad = event("l2", "finalized", "ENC-L2", 1);
    bad["encounter"]["patient"]["id"] = json!(44556677);
    env.send_events(&[event("l1", "finalized", "ENC-L1", 1), bad])
        .await;
    env.wait_count("SELECT count(*) FROM dead_letters", 1, T)
        .await;
    assert_eq!(svc.terminate(Duration::from_secs(30)), Some(0));
    let log = svc.log();
    assert!(log.contains("dead-lettered a bad event"), "{log}");
    assert!(
        !log.trim_start().starts_with('{'),
        "pretty, not JSON:\n{log}"
    );
    for phi in ["PAT-ENC-L1", "1948-06-14", "1234567893", "44556677"] {
        assert!(!log.contains(phi), "{phi} in the log");
    }
}

/// An idle replica beyond the partition count is in the group with no
/// partitions: ready (contract section 5), and the busy one keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_replica_beyond_the_partitions_is_ready() {
    let env = TestEnv::new("idle", 1).await;
    let a = env.service();
    a.wait_ready(Duration::from_secs(60)).await;
    let b = env.service();
    b.wait_ready(Duration::from_secs(60)).await;
    env.send_events(&[event("idle-1", "finalized", "ENC-IDLE", 1)])
        .await;
    env.wait_count(
        "SELECT count(*) FROM encounter_events",
        1,
        Duration::from_secs(60),
    )
    .await;
    a.wait_ready(Duration::from_secs(60)).await;
    b.wait_ready(Duration::from_secs(60)).await;
}

/// CLAIMLINE_MIGRATE=false (contract section 4): the service runs no DDL;
/// with the schema behind it refuses to start and says what to run, and
/// once `claimline migrate` ran it starts.
#[tokio::test(flavor = "multi_thread")]
async fn without_migrations_the_service_refuses_a_schema_behind_it() {
    let env = TestEnv::new("nomigrate", 1).await;
    let mut svc = env.service_with(&env.db_url, &[("CLAIMLINE_MIGRATE", "false")]);
    let start = std::time::Instant::now();
    while !svc.log().contains("claimline migrate") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no refusal:\n{}",
            svc.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(svc.terminate(Duration::from_secs(10)), Some(1));
    assert_eq!(
        env.count("SELECT count(*) FROM pg_tables WHERE tablename = 'claim_lines'")
            .await,
        0,
        "no DDL ran"
    );
    env.migrate();
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_MIGRATE", "false")]);
    svc.wait_ready(Duration::from_secs(60)).await;
}

/// A lock held elsewhere (or a half-open connection) fails the step after
/// the statement/lock timeout and it is retried, instead of waiting
/// forever; once the lock is gone the event goes through.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_times_out_and_the_step_is_retried() {
    let env = TestEnv::new("locktimeout", 1).await;
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_DB_STATEMENT_TIMEOUT_SECS", "1")]);
    svc.wait_ready(Duration::from_secs(60)).await;
    let mut blocker = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE claim_lines IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    env.send_events(&[event("locked-1", "finalized", "ENC-LOCK", 1)])
        .await;
    svc.wait_metric(
        "claimline_retries_total{step=\"write_batch\"}",
        |v| v >= 1.0,
        Duration::from_secs(60),
    )
    .await;
    blocker.rollback().await.unwrap();
    env.wait_count(
        "SELECT count(*) FROM encounter_events",
        1,
        Duration::from_secs(60),
    )
    .await;
}

/// Batches are bounded by bytes as well as by count: a backlog read with a
/// one-byte budget goes one message a batch.
#[tokio::test(flavor = "multi_thread")]
async fn batches_are_bounded_by_bytes() {
    let env = TestEnv::new("batchbytes", 1).await;
    let events: Vec<_> = (0..30)
        .map(|i| event(&format!("bb-{i}"), "finalized", &format!("ENC-BB-{i}"), 1))
        .collect();
    env.send_events(&events).await;
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_BATCH_MAX_BYTES", "1")]);
    env.wait_count(
        "SELECT count(*) FROM encounter_events",
        30,
        Duration::from_secs(60),
    )
    .await;
    let scrape = svc
        .wait_metric(
            "claimline_batch_size_events_count",
            |n| n >= 30.0,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        metric(&scrape, "claimline_batch_size_events_sum"),
        Some(30.0)
    );
    assert_eq!(
        metric(&scrape, "claimline_batch_size_events_count"),
        Some(30.0)
    );
}

/// A code a sender invents does not become a metric series of its own.
#[tokio::test(flavor = "multi_thread")]
async fn invented_codes_are_counted_as_other() {
    let env = TestEnv::new("othercode", 1).await;
    let svc = env.service();
    svc.wait_ready(Duration::from_secs(60)).await;
    let mut ev = event("oc-1", "finalized", "ENC-OC", 1);
    ev["encounter"]["services"][0]["code"] = json!("Z9999");
    env.send_events(&[ev]).await;
    env.wait_count(
        "SELECT count(*) FROM encounter_events",
        1,
        Duration::from_secs(60),
    )
    .await;
    let scrape = svc
        .wait_metric(
            "claimline_units_billed_total{code=\"other\"}",
            |v| v >= 0.0,
            Duration::from_secs(30),
        )
        .await;
    assert!(!scrape.contains("Z9999"), "{scrape}");
    assert!(scrape.contains("claimline_batch_size_events_bucket{le=\"2000\"}"));
}
