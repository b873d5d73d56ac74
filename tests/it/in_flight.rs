//! Batches written at once (CLAIMLINE_BATCHES_IN_FLIGHT): consecutive
//! batches that share encounters are still applied in order.

use std::time::Duration;

use crate::support::{event, TestEnv};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn batches_in_flight_that_share_encounters_apply_every_version_in_order() {
    let env = TestEnv::new("inflight", 2).await;
    // Tiny batches, three at once: each encounter's four versions arrive
    // back to back, so consecutive batches share encounters (and patients).
    let svc = env.service_with(
        &env.db_url,
        &[
            ("CLAIMLINE_BATCH_SIZE", "5"),
            ("CLAIMLINE_BATCHES_IN_FLIGHT", "3"),
            ("CLAIMLINE_BATCH_LINGER_MS", "5"),
        ],
    );
    svc.wait_ready(T).await;
    let (encounters, versions) = (60, 4u32);
    let mut events = Vec::new();
    for e in 0..encounters {
        for v in 1..=versions {
            let kind = if v == 1 { "finalized" } else { "amended" };
            events.push(event(
                &format!("inflight-{e}-{v}"),
                kind,
                &format!("ENC-IF-{e}"),
                v,
            ));
        }
    }
    env.send_events(&events).await;
    let total = i64::from(encounters) * i64::from(versions);
    env.wait_count("SELECT count(*) FROM encounter_events", total, T)
        .await;
    // Every version was applied after the one before: none was stale (a
    // version applied after a newer one), none dead-lettered.
    assert_eq!(
        env.count("SELECT count(*) FROM encounter_events WHERE outcome <> 'processed'")
            .await,
        0
    );
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 0);
    // The lines in force are the newest version's, every older one voided.
    assert_eq!(
        env.count(&format!(
            "SELECT count(DISTINCT encounter_id) FROM claim_lines
             WHERE status <> 'void' AND encounter_version = {versions}"
        ))
        .await,
        i64::from(encounters)
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM claim_lines WHERE status <> 'void' AND encounter_version < {versions}"
        ))
        .await,
        0
    );
    // Every batch's outbox row was published and removed.
    env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
        .await;
    // Each version's lines were written once.
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT encounter_id, encounter_version FROM claim_lines
             GROUP BY 1, 2 HAVING count(DISTINCT line_no) <> count(*)) AS twice"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_service_stays_ready_after_a_backlog() {
    let env = TestEnv::new("idleready", 1).await;
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_STALL_TIMEOUT_SECS", "2")]);
    svc.wait_ready(T).await;
    env.send_events(&crate::support::stream(50, "idle")).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 50, T)
        .await;
    env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
        .await;
    // Nothing arrives for twice the stall bound: idle, not stalled.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for path in ["/readyz", "/healthz"] {
        let got = svc.get(path).await;
        assert_eq!(got.as_ref().map(|r| r.0), Some(200), "{path}: {got:?}");
    }
}
