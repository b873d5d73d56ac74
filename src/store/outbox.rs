//! The outbox: the messages of committed batches not yet acknowledged,
//! rebuilt from the stored claim lines, and their removal once they are.

use std::sync::Arc;

use anyhow::Context;
use sqlx::postgres::PgPool;
use sqlx::Row;

use super::OutboxEntry;
use crate::domain::{ClaimLine, Status};

/// The messages of the oldest `batches` unacknowledged outbox rows, in
/// publishing order, rebuilt from the stored claim lines.
pub async fn unpublished(pool: &PgPool, batches: i64) -> anyhow::Result<Vec<OutboxEntry>> {
    let rows = sqlx::query(
        "SELECT o.id, u.status, u.topic, to_jsonb(c), c.voided_by_event_id
         FROM (SELECT * FROM claim_line_outbox ORDER BY id LIMIT $1) AS o,
              unnest(o.claim_line_ids, o.statuses, o.topics) WITH ORDINALITY AS u(claim_line_id, status, topic, n)
              JOIN claim_lines c USING (claim_line_id)
         ORDER BY o.id, u.n",
    )
    .bind(batches)
    .fetch_all(pool)
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
pub async fn mark_published(pool: &PgPool, ids: &[i64]) -> anyhow::Result<()> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM claim_line_outbox WHERE id = ANY($1)")
        .bind(&ids)
        .execute(pool)
        .await
        .context("Failed to mark outbox entries published")?;
    Ok(())
}
