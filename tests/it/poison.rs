//! Hostile but plausible input: no message stops the pipeline. Each poison
//! message is dead-lettered with its reason within seconds, every good one
//! around it is processed, and the service stays ready throughout.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{event, TestEnv};

const T: Duration = Duration::from_secs(60);

fn poison() -> Vec<(&'static str, Value, &'static str)> {
    let mut out = Vec::new();
    let mut e = event("nul\u{0}id", "finalized", "ENC-P1", 1);
    e["encounter"]["services"][0]["line_id"] = json!("x");
    out.push(("NUL in event_id", e, "schema_violation"));
    let mut e = event("p-nul-line", "finalized", "ENC-P2", 1);
    e["encounter"]["services"][0]["line_id"] = json!("l\u{0}1");
    out.push(("NUL in a line_id", e, "schema_violation"));
    let mut e = event("p-year-0", "finalized", "ENC-P3", 1);
    e["encounter"]["date_of_service"] = json!("0000-03-02");
    out.push(("year 0000", e, "schema_violation"));
    let mut e = event("p-version", "finalized", "ENC-P4", 1);
    e["encounter"]["version"] = json!(2_147_483_648u64);
    out.push(("version over int4", e, "schema_violation"));
    let mut e = event("p-services", "finalized", "ENC-P5", 1);
    let one = e["encounter"]["services"][0].clone();
    e["encounter"]["services"] = Value::Array(
        (0..1000)
            .map(|i| {
                let mut s = one.clone();
                s["line_id"] = json!(i.to_string());
                s
            })
            .collect(),
    );
    out.push(("1000 services", e, "schema_violation"));
    // Conflicts with what came before it (contract section 1): an event id
    // reused for another encounter, and a version claimed by a second event.
    out.push((
        "event id reused",
        event("good-0-0", "finalized", "ENC-ELSEWHERE", 1),
        "event_id_conflict",
    ));
    out.push((
        "version claimed twice",
        event("second-claim", "amended", "ENC-G00", 1),
        "version_conflict",
    ));
    // Decodes fine; the test database refuses it (a CHECK constraint).
    out.push((
        "refused by Postgres",
        event("refused-by-storage", "finalized", "ENC-P6", 1),
        "rejected_by_storage",
    ));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_corpus_is_dead_lettered_and_every_good_event_flows() {
    let env = TestEnv::new("poison", 1).await;
    let svc = env.service();
    svc.wait_ready(T).await;
    // A refusal Postgres makes only for this event, as a real data error
    // would (SQLSTATE 23514); decoding cannot know it.
    sqlx::query(
        "ALTER TABLE encounter_events ADD CONSTRAINT test_poison \
         CHECK (event_id <> 'refused-by-storage')",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let poison = poison();
    let mut messages = Vec::new();
    let mut good = 0;
    for (i, (_, bad, _)) in poison.iter().enumerate() {
        for j in 0..3 {
            let id = format!("good-{i}-{j}");
            messages.push((
                Some(format!("ENC-G{i}{j}")),
                event(&id, "finalized", &format!("ENC-G{i}{j}"), 1)
                    .to_string()
                    .into_bytes(),
            ));
            good += 1;
        }
        messages.push((Some(format!("ENC-P{i}")), bad.to_string().into_bytes()));
    }
    env.send(&messages).await;

    env.wait_count(
        "SELECT count(*) FROM encounter_events WHERE event_id LIKE 'good-%'",
        good,
        T,
    )
    .await;
    env.wait_count("SELECT count(*) FROM dead_letters", poison.len() as i64, T)
        .await;
    let dead = env.read(&env.dlq, poison.len(), T).await;
    assert_eq!(dead.len(), poison.len());
    for (d, (name, bad, reason)) in dead.iter().zip(&poison) {
        assert_eq!(d.header("error.reason"), Some(*reason), "{name}");
        assert_eq!(
            d.value,
            bad.to_string().into_bytes(),
            "{name}: value unchanged"
        );
        let message = d.header("error.message").unwrap();
        assert!(message.len() <= 512, "{name}: {message}");
        assert!(!message.contains("PAT-77812"), "{name}: {message}");
    }
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM dead_letters ORDER BY source_offset")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let expected: Vec<&str> = poison.iter().map(|p| p.2).collect();
    assert_eq!(reasons, expected);
    // Every good event's lines were published, and the service is ready.
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE event_id LIKE 'good-%'")
            .await,
        env.count("SELECT count(*) FROM claim_lines").await
    );
    assert_eq!(svc.get("/readyz").await.map(|r| r.0), Some(200));
    env.send_events(&[event("after", "finalized", "ENC-AFTER", 1)])
        .await;
    env.wait_count(
        "SELECT count(*) FROM encounter_events WHERE event_id = 'after'",
        1,
        T,
    )
    .await;
    let log = svc.log();
    assert!(
        !log.contains("refused-by-storage"),
        "an event value in the log:\n{log}"
    );
}

/// A dead letter whose original value the broker will not take goes out
/// with its headers and an empty value, and the bytes stay in Postgres
/// (contract section 2); nothing after it waits.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_too_large_to_forward_keeps_its_value_in_postgres() {
    let env = TestEnv::new("dlqbig", 1).await;
    // The producer takes at most 1 MiB, as many brokers do.
    let svc = env.service_with(&env.db_url, &[("KAFKA_MESSAGE_MAX_BYTES", "1048576")]);
    svc.wait_ready(T).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)).into_bytes();
    env.send(&[
        (Some("k-big".to_string()), big.clone()),
        (
            Some("ENC-AFTER".to_string()),
            event("after-big", "finalized", "ENC-AFTER", 1)
                .to_string()
                .into_bytes(),
        ),
    ])
    .await;
    env.wait_count("SELECT count(*) FROM encounter_events", 1, T)
        .await;
    let dead = env.read(&env.dlq, 1, T).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("error.reason"), Some("too_large"));
    assert_eq!(dead[0].header("error.value_stored"), Some("postgres"));
    assert!(dead[0].value.is_empty());
    assert_eq!(dead[0].key.as_deref(), Some("k-big"));
    let kept: Vec<u8> = sqlx::query_scalar("SELECT value FROM dead_letter_payloads")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(kept, big);
    env.wait_count("SELECT count(*) FROM dead_letters", 1, T)
        .await;
}

/// CLAIMLINE_MAX_MESSAGE_BYTES sets the input limit (contract section 2).
#[tokio::test(flavor = "multi_thread")]
async fn the_input_size_limit_is_a_setting() {
    let env = TestEnv::new("maxbytes", 1).await;
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_MAX_MESSAGE_BYTES", "4000")]);
    svc.wait_ready(T).await;
    let small = event("fits", "finalized", "ENC-FITS", 1);
    let mut padded = event("padded", "finalized", "ENC-PADDED", 1);
    padded["pad"] = json!("x".repeat(4000));
    assert!(small.to_string().len() <= 4000);
    env.send_events(&[padded, small]).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 1, T)
        .await;
    env.wait_count(
        "SELECT count(*) FROM dead_letters WHERE reason = 'too_large'",
        1,
        T,
    )
    .await;
    assert_eq!(
        env.count("SELECT count(*) FROM encounter_events WHERE event_id = 'fits'")
            .await,
        1
    );
}
