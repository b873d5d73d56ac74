//! Co-treatment through the service: a PT encounter is processed and
//! published `validated` by one instance; an OT encounter of the same
//! patient, payer and date over the same minutes arrives on another
//! partition, handled by the other instance. The PT lines are voided and
//! reissued with CO_TREATMENT, the OT lines carry it too, nothing doubled.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

use crate::service::wait_split;
use crate::support::{bootstrap, event, metric, TestEnv};

const T: Duration = Duration::from_secs(60);

/// Sends `ev` to `partition` of the input topic, keyed by its encounter.
async fn send_to(env: &TestEnv, partition: i32, ev: &serde_json::Value) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let key = ev["encounter"]["encounter_id"].as_str().unwrap().to_owned();
    let value = ev.to_string();
    producer
        .send(
            FutureRecord::to(&env.input)
                .partition(partition)
                .key(&key)
                .payload(&value),
            T,
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn co_treatment_across_instances_voids_and_reissues_the_first_providers_lines() {
    let env = TestEnv::new("cotreat", 2).await;
    let a = env.service();
    let b = env.service();
    a.wait_ready(T).await;
    b.wait_ready(T).await;
    // One partition each, so the two encounters go to two instances.
    wait_split(&a, &b, 2).await;

    // PT, 97530 14:00-14:24 and 97110 14:24-14:47 (the example): validated.
    let mut pt = event("e-pt", "finalized", "ENC-PT", 1);
    pt["encounter"]["patient"]["id"] = "PAT-CO".into();
    send_to(&env, 0, &pt).await;
    let first = env.read(&env.output, 2, T).await;
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|l| l.json()["status"] == "validated"));

    // OT, another NPI, 97530 14:10-14:40: the same clock minutes.
    let mut ot = event("e-ot", "finalized", "ENC-OT", 1);
    ot["encounter"]["patient"]["id"] = "PAT-CO".into();
    ot["encounter"]["provider"]["npi"] = "9876543213".into();
    ot["encounter"]["provider"]["discipline"] = "OT".into();
    ot["encounter"]["services"] = json!([{
        "line_id": "1", "code": "97530", "activities": ["tub transfer"],
        "start": "2026-03-02T14:10:00Z", "end": "2026-03-02T14:40:00Z"
    }]);
    send_to(&env, 1, &ot).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 2, T)
        .await;

    // Each instance processed one of the two events.
    let processed = |s: String| {
        metric(
            &s,
            "claimline_events_processed_total{outcome=\"processed\"}",
        )
        .unwrap_or(0.0)
    };
    let (pa, pb) = (
        processed(a.get("/metrics").await.unwrap().1),
        processed(b.get("/metrics").await.unwrap().1),
    );
    assert_eq!((pa, pb), (1.0, 1.0), "one event per instance");

    // The topic: the two validated PT lines, then their voids.
    let out = env.read(&env.output, 4, T).await;
    let out: Vec<serde_json::Value> = out.iter().map(|m| m.json()).collect();
    let seq: Vec<(String, String)> = out
        .iter()
        .map(|v| {
            (
                v["claim_line_id"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seq,
        [
            ("ENC-PT:1:1".to_owned(), "validated".to_owned()),
            ("ENC-PT:1:2".to_owned(), "validated".to_owned()),
            ("ENC-PT:1:1".to_owned(), "void".to_owned()),
            ("ENC-PT:1:2".to_owned(), "void".to_owned()),
        ]
    );
    assert!(
        out[2..].iter().all(|v| v["event_id"] == "e-ot"),
        "voided by the OT event"
    );

    // Held: the OT line and the PT lines reissued above every used number.
    let held = env.read(&env.review, 3, T).await;
    let held: Vec<serde_json::Value> = held.iter().map(|m| m.json()).collect();
    let ids: HashSet<&str> = held
        .iter()
        .map(|v| v["claim_line_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        HashSet::from(["ENC-OT:1:1", "ENC-PT:1:3", "ENC-PT:1:4"])
    );
    for v in &held {
        assert_eq!(v["status"], "needs_review");
        let co: Vec<&serde_json::Value> = v["flags"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "CO_TREATMENT")
            .collect();
        assert!(!co.is_empty(), "{v}");
        let other = if v["encounter_id"] == "ENC-PT" {
            "(OT, "
        } else {
            "(PT, "
        };
        assert!(co.iter().all(|f| f["severity"] == "error"
            && f["message"].as_str().unwrap().contains(other)
            && !f["message"].as_str().unwrap().contains("PAT-CO")));
    }
    // Each line kept its minutes: PT 24 + 23, OT 30.
    let minutes: i64 = held.iter().map(|v| v["minutes"].as_i64().unwrap()).sum();
    assert_eq!(minutes, 24 + 23 + 30);
    // Nothing more on either topic, nothing doubled in Postgres.
    assert_eq!(
        env.read(&env.review, 4, Duration::from_secs(3)).await.len(),
        3
    );
    assert_eq!(
        env.read(&env.output, 5, Duration::from_secs(3)).await.len(),
        4
    );
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status <> 'void'")
            .await,
        3
    );
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'void'")
            .await,
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'needs_review' AND flags @> '[{\"code\":\"CO_TREATMENT\"}]'").await,
        3
    );
    env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
        .await;
}

/// The lock that serialises co-treatment across instances is the
/// patient-year advisory lock (coarser than (patient, payer, date), which
/// it covers): while another transaction holds the patient's year, as an
/// instance's batch for the first provider would, the second provider's
/// encounter waits for it, then sees the first's lines.
#[tokio::test(flavor = "multi_thread")]
async fn the_second_providers_batch_waits_for_the_patient_year_lock() {
    let env = TestEnv::new("cotreat-lock", 1).await;
    let svc = env.service();
    svc.wait_ready(T).await;
    let mut pt = event("e-pt", "finalized", "ENC-PT", 1);
    pt["encounter"]["patient"]["id"] = "PAT-LOCK".into();
    env.send_events(&[pt]).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 1, T)
        .await;

    let mut other = env.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('PAT-LOCK'), 2026)")
        .execute(&mut *other)
        .await
        .unwrap();
    let mut ot = event("e-ot", "finalized", "ENC-OT", 1);
    ot["encounter"]["patient"]["id"] = "PAT-LOCK".into();
    ot["encounter"]["provider"]["npi"] = "9876543213".into();
    ot["encounter"]["provider"]["discipline"] = "OT".into();
    env.send_events(&[ot]).await;
    // The service's batch is waiting on that advisory lock.
    env.wait_until_count(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
        1,
        T,
    )
    .await;
    assert_eq!(env.count("SELECT count(*) FROM encounter_events").await, 1);
    other.rollback().await.unwrap();
    env.wait_count("SELECT count(*) FROM encounter_events", 2, T)
        .await;
    // Both providers' lines (the same services, the same minutes) are held.
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'needs_review' AND flags @> '[{\"code\":\"CO_TREATMENT\"}]'").await,
        4
    );
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'void'")
            .await,
        2
    );
}
