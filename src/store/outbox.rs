//! The outbox: the messages of committed batches not yet acknowledged,
//! rebuilt from the stored claim lines, and their removal once they are.
//! Each row has an owner, the instance that publishes it while it renews
//! its lease; a lapsed row is claimed by whichever instance sweeps first,
//! never while an older row of the same encounters waits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnection;

use super::{on_conn, Db};
use sqlx::Row;

use super::load::OutboxRow;
use super::owner_lock::OWNER_LOCK_SPACE;
use super::OutboxEntry;
use crate::domain::{ClaimLine, Status};

/// Who publishes a row: this instance, for as long as its lease holds.
#[derive(Debug, Clone)]
pub struct Owner {
    pub id: Arc<str>,
    pub lease: Duration,
}

impl Owner {
    fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }
}

/// Another instance holds a live lease on an unpublished row of the
/// batch's encounters: its lines must go out before this batch's voids and
/// replacements, so the batch waits (a transient error, retried).
#[derive(Debug, thiserror::Error)]
#[error("another instance is still publishing lines of these encounters")]
pub struct OwnedElsewhere;

/// In the batch transaction (its encounters locked): which of the
/// unpublished rows of its encounters, as the load read and locked them,
/// this batch must publish first. Rows this instance has in flight are left
/// alone (already in the producer, ahead); rows whose lease lapsed, or that
/// are this instance's but not in flight (an ambiguous COMMIT: committed,
/// though the client saw an error), are claimed and returned in order; a
/// live row of another instance is [`OwnedElsewhere`].
pub(super) async fn claim_rows(
    conn: &mut PgConnection,
    rows: &[OutboxRow],
    owner: &Owner,
    in_flight: &[i64],
) -> anyhow::Result<Vec<OutboxEntry>> {
    let mut claim = Vec::new();
    for r in rows {
        if in_flight.contains(&r.id) {
            continue;
        }
        if r.live && r.owner != *owner.id {
            return Err(OwnedElsewhere.into());
        }
        claim.push(r.id);
    }
    take(conn, &claim, owner).await
}

/// Claims up to `limit` rows whose lease lapsed or whose owner is gone (its
/// owner lock free), and that no older row of the same encounters
/// precedes, and returns their messages in order.
pub(crate) async fn claim_lapsed(
    db: &Db,
    owner: &Owner,
    limit: i64,
) -> anyhow::Result<Vec<OutboxEntry>> {
    Ok(on_conn!(db, |c| {
        let mut tx = sqlx::Connection::begin(&mut *c)
            .await
            .context("Failed to begin a transaction")?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM claim_line_outbox o
             WHERE (lease_until < now()
                    OR (owner_locked
                        AND pg_try_advisory_xact_lock($2, hashtext(split_part(owner, '/', 1)))))
               AND NOT EXISTS (SELECT 1 FROM claim_line_outbox p
                               WHERE p.id < o.id AND p.encounter_ids && o.encounter_ids)
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .bind(OWNER_LOCK_SPACE)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to read the outbox")?;
        if ids.is_empty() {
            tx.rollback().await.context("Failed to end a transaction")?;
            return Ok(Vec::new());
        }
        let entries = take(&mut tx, &ids, owner).await?;
        tx.commit().await.context("Failed to claim outbox rows")?;
        Ok::<_, anyhow::Error>(entries)
    }))
}

/// Extends the lease of this instance's rows in flight.
pub(crate) async fn renew(db: &Db, owner: &Owner, ids: &[i64]) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    on_conn!(db, |c| sqlx::query(
        "UPDATE claim_line_outbox SET lease_until = now() + make_interval(secs => $3)
         WHERE id = ANY($1) AND owner = $2",
    )
    .bind(ids)
    .bind(&*owner.id)
    .bind(owner.lease_secs())
    .execute(&mut *c)
    .await
    .context("Failed to renew outbox leases"));
    Ok(())
}

/// Unpublished rows and the age of the oldest, in seconds.
pub(crate) async fn backlog(db: &Db) -> anyhow::Result<(i64, f64)> {
    let row = on_conn!(db, |c| sqlx::query(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
         FROM claim_line_outbox",
    )
    .fetch_one(&mut *c)
    .await
    .context("Failed to read the outbox"));
    Ok((row.get(0), row.get(1)))
}

/// Makes `ids` this instance's, with a fresh lease, and rebuilds their
/// messages.
async fn take(
    conn: &mut PgConnection,
    ids: &[i64],
    owner: &Owner,
) -> anyhow::Result<Vec<OutboxEntry>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "UPDATE claim_line_outbox SET owner = $2, lease_until = now() + make_interval(secs => $3),
                owner_locked = true
         WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(&*owner.id)
    .bind(owner.lease_secs())
    .execute(&mut *conn)
    .await
    .context("Failed to claim outbox rows")?;
    messages(conn, ids).await
}

/// The messages of outbox rows `ids`, in publishing order, rebuilt from
/// the stored claim lines.
async fn messages(conn: &mut PgConnection, ids: &[i64]) -> anyhow::Result<Vec<OutboxEntry>> {
    let rows = sqlx::query(
        "SELECT o.id, u.status, u.topic, to_jsonb(c), c.voided_by_event_id
         FROM claim_line_outbox o,
              unnest(o.claim_line_ids, o.statuses, o.topics) WITH ORDINALITY AS u(claim_line_id, status, topic, n)
              JOIN claim_lines c USING (claim_line_id)
         WHERE o.id = ANY($1)
         ORDER BY o.id, u.n",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to read the outbox")?;
    rows.into_iter()
        .map(|r| {
            let status: Status =
                serde_json::from_value(serde_json::Value::String(r.get::<String, _>(1)))
                    .context("bad outbox status")?;
            let mut line: ClaimLine = serde_json::from_value(r.get::<serde_json::Value, _>(3))
                .context("A stored claim line does not decode")?;
            if status == Status::Void {
                let by: Option<String> = r.get(4);
                let by: Arc<str> = by.map_or_else(|| line.event_id.clone(), Arc::from);
                line = line.voided(&by);
            } else {
                // The row may have been voided since; this message is the original.
                line.status = status;
            }
            Ok(OutboxEntry {
                id: r.get(0),
                claim_line_id: line.claim_line_id.clone(),
                key: line.encounter_id.clone(),
                payload: line.to_json(),
                status,
                topic: r.get::<String, _>(2).into(),
            })
        })
        .collect()
}

/// Removes the outbox rows whose messages were all acknowledged.
pub(crate) async fn mark_published(db: &Db, ids: &[i64]) -> anyhow::Result<()> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    on_conn!(db, |c| sqlx::query(
        "DELETE FROM claim_line_outbox WHERE id = ANY($1)"
    )
    .bind(&ids)
    .execute(&mut *c)
    .await
    .context("Failed to mark outbox entries published"));
    Ok(())
}
