//! Dead letters in Postgres: the original bytes of those whose value the
//! broker would not take (`dead_letter_payloads`; they may be PHI: the
//! table has claim_lines' protections), and the replays `claimline dlq
//! replay` has done (`dead_letter_replays`), so none is replayed twice.

use anyhow::Context;

use super::{on_conn, Db, Source};

/// A dead letter's original key and value, and where it came from.
pub(crate) struct KeptValue<'a> {
    pub source: &'a Source,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
}

/// A message on the dead-letter topic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DlqPosition<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Keeps the original bytes of dead letters whose value the broker would
/// not take.
pub(crate) async fn keep_values(db: &Db, messages: &[KeptValue<'_>]) -> anyhow::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    on_conn!(db, |c| {
        sqlx::query(
        "INSERT INTO dead_letter_payloads (source_topic, source_partition, source_offset, key, value)
         SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::bytea[], $5::bytea[])
         ON CONFLICT DO NOTHING",
    )
    .bind(messages.iter().map(|m| m.source.topic.as_str()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.source.partition).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.source.offset).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.key).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.value).collect::<Vec<_>>())
    .execute(&mut *c)
    .await
    .context("Failed to keep dead-letter values")
    });
    Ok(())
}

/// The value kept for the dead letter of `source`, if there is one.
pub(crate) async fn kept_value(db: &Db, source: &Source) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(on_conn!(db, |c| sqlx::query_scalar(
        "SELECT value FROM dead_letter_payloads
         WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
    )
    .bind(&source.topic)
    .bind(source.partition)
    .bind(source.offset)
    .fetch_optional(&mut *c)
    .await
    .context("Failed to read a kept dead-letter value")))
}

/// Whether an earlier run replayed this dead letter.
pub(crate) async fn replayed_before(db: &Db, at: DlqPosition<'_>) -> anyhow::Result<bool> {
    Ok(on_conn!(db, |c| sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM dead_letter_replays
                        WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3)",
    )
    .bind(at.topic)
    .bind(at.partition)
    .bind(at.offset)
    .fetch_one(&mut *c)
    .await
    .context(
        "Failed to read dead_letter_replays (run claimline migrate?)"
    )))
}

/// Records the replay; false if an earlier (or concurrent) run did.
pub(crate) async fn claim_replay(
    db: &Db,
    at: DlqPosition<'_>,
    reason: &str,
) -> anyhow::Result<bool> {
    let done = on_conn!(db, |c| sqlx::query(
        "INSERT INTO dead_letter_replays (dlq_topic, dlq_partition, dlq_offset, reason)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(at.topic)
    .bind(at.partition)
    .bind(at.offset)
    .bind(reason)
    .execute(&mut *c)
    .await
    .context("Failed to record a replay (run claimline migrate?)"));
    Ok(done.rows_affected() == 1)
}

/// Drops a replay record again (the broker refused the message).
pub(crate) async fn unclaim_replay(db: &Db, at: DlqPosition<'_>) -> anyhow::Result<()> {
    on_conn!(db, |c| {
        sqlx::query(
        "DELETE FROM dead_letter_replays WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3",
    )
    .bind(at.topic)
    .bind(at.partition)
    .bind(at.offset)
    .execute(&mut *c)
    .await
    .context("Failed to drop a replay record")
    });
    Ok(())
}
