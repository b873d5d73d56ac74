//! Static group membership (`CLAIMLINE_INSTANCE_ID`) against the real
//! Tansu 0.6.0: a restarted member takes its partitions back without a
//! rebalance; two live processes with one id never both consume.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::service::{last_assignment, wait_split};
use crate::support::{stream, Service, TestEnv};

const T: Duration = Duration::from_secs(60);

fn member(env: &TestEnv, id: &str) -> Service {
    env.service_with(
        &env.db_url,
        &[
            ("CLAIMLINE_INSTANCE_ID", id),
            // Long enough that a restart comes back within it.
            ("KAFKA_SESSION_TIMEOUT_MS", "45000"),
            ("KAFKA_MAX_POLL_INTERVAL_MS", "60000"),
            ("CLAIMLINE_SHUTDOWN_TIMEOUT_SECS", "2"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_static_member_takes_its_partitions_back_without_a_rebalance() {
    let env = TestEnv::new("static", 4).await;
    let mut a = member(&env, "member-a");
    let b = member(&env, "member-b");
    a.wait_ready(T).await;
    b.wait_ready(T).await;
    wait_split(&a, &b, 4).await;
    env.send_events(&stream(200, "s1")).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 200, T)
        .await;

    // SIGKILL, then the same id again: back within the session timeout.
    let b_log_before = b.log().len();
    a.kill();
    let restarted = Instant::now();
    let a2 = member(&env, "member-a");
    a2.wait_ready(T).await;
    let deadline = Instant::now() + T;
    while last_assignment(&a2.log()) == 0 {
        assert!(Instant::now() < deadline, "no partitions:\n{}", a2.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = restarted.elapsed();
    // Measured about 6 s on Tansu 0.6.0 (a dynamic member: about 30 s and
    // a rebalance of every member); 30 s is a liveness bound, 3x the 10 s
    // target.
    assert!(back < Duration::from_secs(30), "took {back:?}");
    env.send_events(&stream(200, "s2")).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 400, T)
        .await;
    // The other member kept its partitions throughout: no rebalance.
    let b_after = b.log()[b_log_before..].to_owned();
    assert!(
        !b_after.contains("partitions revoked") && !b_after.contains("partitions assigned"),
        "member-b was rebalanced:\n{b_after}"
    );
    assert_eq!(last_assignment(&b.log()) + last_assignment(&a2.log()), 4);
    assert_eq!(env.count("SELECT count(*) FROM claim_lines").await, 800);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_live_processes_with_one_instance_id_never_both_consume() {
    let env = TestEnv::new("static-dup", 2).await;
    let a = member(&env, "member-x");
    a.wait_ready(T).await;
    // Tansu would give the second process the same partitions; the
    // instance lock keeps it out: it waits (shutdown timeout + 10 s), then
    // refuses to start.
    let mut dup = member(&env, "member-x");
    let deadline = Instant::now() + T;
    while !dup
        .log()
        .contains("another live instance holds CLAIMLINE_INSTANCE_ID")
    {
        assert!(Instant::now() < deadline, "no refusal:\n{}", dup.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!dup.log().contains("partitions assigned"), "{}", dup.log());
    let code = dup.terminate(Duration::from_secs(10));
    assert!(matches!(code, Some(c) if c != 0), "{code:?}");
    // The first one still works.
    env.send_events(&stream(50, "x")).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 50, T)
        .await;
    a.wait_ready(T).await;
}

#[test]
fn the_instance_id_is_set_once_and_checked() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_claimline"));
        cmd.arg("run")
            .env("DATABASE_URL", "postgres://claimline@127.0.0.1:1/none")
            .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
            .env("CLAIMLINE_METRICS_ADDR", "127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&[
        ("CLAIMLINE_INSTANCE_ID", "claimline-0"),
        ("KAFKA_GROUP_INSTANCE_ID", "claimline-0"),
    ]);
    assert!(!ok);
    assert!(
        err.contains("CLAIMLINE_INSTANCE_ID and KAFKA_GROUP_INSTANCE_ID are both set"),
        "{err}"
    );
    let (ok, err) = run(&[("CLAIMLINE_INSTANCE_ID", "pod 0")]);
    assert!(!ok);
    assert!(err.contains("must be 1-249 characters"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_whose_id_another_process_took_stops_and_exits_non_zero() {
    let env = TestEnv::new("lostid", 1).await;
    let mut a = member(&env, "member-lost");
    a.wait_ready(T).await;
    // Its lock's session ends (a database failover, a network cut) and,
    // before it reconnects, another process takes the id's lock.
    let key = format!("claimline-instance\u{1f}{}\u{1f}member-lost", env.group);
    let mut other = sqlx::PgConnection::connect(&env.db_url).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        // With a timeout, pg_terminate_backend waits until that session is
        // gone (and its lock free): without one it only signals it, and a
        // busy machine may not have ended it before the lock is asked for.
        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND objid = (hashtextextended($1, 0) & 4294967295)::oid",
    )
    .bind(&key)
    .fetch_one(&mut other)
    .await
    .unwrap();
    assert_eq!(ended, 1, "the instance lock's session");
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(&key)
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(taken, "the instance lock, once its session is gone");
    // The watcher looks every 5 s; the shutdown bound is 2 s.
    let code = a.wait_exit(Duration::from_secs(40));
    let log = a.log();
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}:\n{log}");
    assert!(
        log.contains("another live instance took this CLAIMLINE_INSTANCE_ID"),
        "{log}"
    );
}
