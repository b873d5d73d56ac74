//! A half-open Postgres (the fault proxy keeps every socket open and
//! forwards nothing), SIGTERM while it lasts, and a killed instance's
//! outbox. Every time bound is a liveness bound with a margin of 3x or
//! more over what the service promises.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::fault::FaultProxy;
use crate::support::{event, host_port, stream, TestEnv};

const T: Duration = Duration::from_secs(60);

/// CLAIMLINE_DB_STATEMENT_TIMEOUT_SECS in these tests: the client-side
/// deadline is one second more.
const STATEMENT_SECS: u64 = 2;
const DEADLINE: Duration = Duration::from_secs(STATEMENT_SECS + 1);

fn settings(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut s = vec![
        ("CLAIMLINE_DB_STATEMENT_TIMEOUT_SECS", "2"),
        ("CLAIMLINE_BATCH_SIZE", "20"),
    ];
    s.extend_from_slice(extra);
    s
}

/// Every claim line on the output topic exactly once: (messages, distinct
/// ids), read until `expected` messages and then on while more keep coming
/// within 3 s (a duplicate after them), rather than for a fixed time that a
/// loaded machine may not finish the read in.
async fn published(env: &TestEnv, expected: usize) -> (usize, usize) {
    let msgs = env
        .read_until(&env.output, T, Duration::from_secs(3), |read| {
            read.len() >= expected
        })
        .await;
    let ids: HashSet<String> = msgs
        .iter()
        .map(|m| m.json()["claim_line_id"].as_str().unwrap().to_owned())
        .collect();
    (msgs.len(), ids.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_open_postgres_past_the_deadline_then_healed_resumes_with_nothing_lost_or_doubled() {
    let env = TestEnv::new("halfopen", 1).await;
    let proxy = FaultProxy::start(&host_port(&env.db_url)).await;
    let svc = env.service_with(
        &proxy.url(&env.db_url),
        &settings(&[
            ("CLAIMLINE_STALL_TIMEOUT_SECS", "2"),
            // The batch loop polls no message while Postgres is gone.
            ("KAFKA_MAX_POLL_INTERVAL_MS", "60000"),
        ]),
    );
    svc.wait_ready(T).await;
    env.send_events(&stream(500, "a")).await;
    // Cut while batches are being written: a statement is in flight.
    env.wait_until_count("SELECT count(*) FROM encounter_events", 40, T)
        .await;
    proxy.stall();
    let stalled_at = Instant::now();
    // Sent after the cut, so work waits even if the first 500 were all
    // written before it (a fast machine): 600 events in all.
    env.send_events(&stream(100, "b")).await;
    let body = svc
        .wait_status("/readyz", 503, 3 * DEADLINE + Duration::from_secs(3))
        .await;
    assert!(body.contains("not ready"), "{body}");
    // Half-open for well past the deadline.
    tokio::time::sleep((3 * DEADLINE).saturating_sub(stalled_at.elapsed())).await;
    let during = env.count("SELECT count(*) FROM encounter_events").await;
    assert!(during < 600, "the stall stopped the stream ({during})");
    assert_eq!(
        svc.get("/readyz").await.map(|r| r.0),
        Some(503),
        "not ready while stalled"
    );
    proxy.heal();
    let healed = Instant::now();

    // Resumes (promised: within the deadline + 5 s) on new connections.
    // A liveness bound: over 7x the promise (the deadline + 5 s), since a
    // full parallel test run on 2 cores once took longer than 3x.
    let resume_bound = Duration::from_secs(60);
    loop {
        let n = env.count("SELECT count(*) FROM encounter_events").await;
        if n > during {
            break;
        }
        assert!(
            healed.elapsed() < resume_bound,
            "no progress {resume_bound:?} after healing ({n} events):\n{}",
            svc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.wait_count("SELECT count(*) FROM encounter_events", 600, T)
        .await;
    svc.wait_ready(T).await;
    env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
        .await;
    // The abandoned transaction's session (its advisory locks) is gone:
    // the server ends it at the idle-in-transaction bound.
    env.wait_count(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND state LIKE 'idle in transaction%'",
        0,
        Duration::from_secs(3 * STATEMENT_SECS + 3),
    )
    .await;
    assert_eq!(env.count("SELECT count(*) FROM claim_lines").await, 1200);
    let (messages, distinct) = published(&env, 1200).await;
    assert_eq!(
        (messages, distinct),
        (1200, 1200),
        "nothing lost or doubled"
    );
    let log = svc.log();
    assert!(
        log.contains("step failed; retrying"),
        "the stuck step was retried:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_postgres_is_half_open_exits_non_zero_within_the_shutdown_bound() {
    let env = TestEnv::new("halfterm", 1).await;
    let proxy = FaultProxy::start(&host_port(&env.db_url)).await;
    let mut svc = env.service_with(
        &proxy.url(&env.db_url),
        &settings(&[("CLAIMLINE_SHUTDOWN_TIMEOUT_SECS", "3")]),
    );
    svc.wait_ready(T).await;
    env.send_events(&stream(400, "a")).await;
    env.wait_until_count("SELECT count(*) FROM encounter_events", 40, T)
        .await;
    proxy.stall();
    // Events sent after the stall are certainly work the service cannot
    // finish (the first 400 may all be written before it on a fast machine).
    env.send_events(&stream(200, "b")).await;
    // A batch is stuck in Postgres (readiness says so), then SIGTERM.
    svc.wait_status("/readyz", 503, 3 * DEADLINE + Duration::from_secs(3))
        .await;
    let asked = Instant::now();
    let code = svc.terminate(3 * Duration::from_secs(3) + Duration::from_secs(2));
    let took = asked.elapsed();
    assert!(
        matches!(code, Some(c) if c != 0),
        "abandoned work exits non-zero, within the bound ({code:?} after {took:?}):\n{}",
        svc.log()
    );
    let log = svc.log();
    assert!(log.contains("abandoned"), "says it abandoned work:\n{log}");
    assert!(!log.contains("PAT-"), "no patient id in the log");
    // What it abandoned is redelivered: at-least-once, as after a crash
    // (`killed_mid_stream_and_restarted_loses_nothing_and_duplicates_nothing`).
    assert!(env.count("SELECT count(*) FROM encounter_events").await < 600);
}

/// The instance id an instance logged as its outbox owner.
fn instance_of(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("\"outbox owner\""))
        .expect("the outbox owner is logged");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["instance"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_instances_outbox_rows_are_taken_over_well_before_the_lease() {
    let env = TestEnv::new("takeover", 2).await;
    // An hour's lease: only the owner lock can explain a takeover in time.
    let lease = [("CLAIMLINE_OUTBOX_LEASE_SECS", "3600")];
    let mut a = env.service_with(&env.db_url, &settings(&lease));
    let b = env.service_with(&env.db_url, &settings(&lease));
    a.wait_ready(T).await;
    b.wait_ready(T).await;
    env.send_events(&[event("k1", "finalized", "ENC-K", 1)])
        .await;
    env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
        .await;
    env.wait_count("SELECT count(*) FROM claim_lines", 2, T)
        .await;
    let first = env.read(&env.output, 2, T).await;
    assert_eq!(first.len(), 2);

    // As if `a` had committed these lines again and died before the acks:
    // a row it owns, its lease an hour away.
    let owner = instance_of(&a.log());
    sqlx::query(
        "INSERT INTO claim_line_outbox (claim_line_ids, statuses, topics, encounter_ids, owner,
                                        lease_until, owner_locked)
         SELECT array_agg(claim_line_id ORDER BY line_no), array_agg('validated'::text),
                array_agg($1::text), '{ENC-K}', $2, now() + interval '1 hour', true
         FROM claim_lines WHERE encounter_id = 'ENC-K'",
    )
    .bind(&env.output)
    .bind(&owner)
    .execute(&env.pool)
    .await
    .unwrap();
    // While `a` lives, nobody takes its row (each sweep runs every 2 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM claim_line_outbox").await,
        1,
        "a live owner's row is left to it"
    );

    a.kill();
    let killed = Instant::now();
    // The survivor publishes it once the dead session's lock is free: a
    // sweep (2 s) away, not the lease (an hour).
    env.wait_count(
        "SELECT count(*) FROM claim_line_outbox",
        0,
        Duration::from_secs(20),
    )
    .await;
    assert!(killed.elapsed() < Duration::from_secs(20));
    let all = env.read(&env.output, 4, T).await;
    assert_eq!(all.len(), 4, "the row's two lines published again");
    assert_eq!(all[2].json(), first[0].json());
    assert_eq!(all[3].json(), first[1].json());
    let log = b.log();
    assert!(
        log.contains("whose writer is gone"),
        "the survivor took the row over:\n{log}"
    );
}
