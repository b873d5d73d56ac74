//! Postgres: migrations, the per-batch transaction, and the outbox.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use crate::domain::ledger::{Ledger, Outcome};
use crate::domain::{decimal, wire::date::to_bytes as date_bytes, ClaimLine, Flag, Status};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .context("Failed to connect to Postgres (DATABASE_URL)")
}

/// A pool that connects on first use, so the service can start while
/// Postgres is still down and report not-ready instead of exiting.
pub fn connect_lazy(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("DATABASE_URL must be a postgres:// or postgresql:// URL");
    }
    PgPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(url)
        .context("DATABASE_URL is not a valid Postgres URL")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("Failed to run database migrations")
}

pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// Where an event came from on the broker.
#[derive(Debug, Clone)]
pub struct Source {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One decoded event's row in `encounter_events`.
#[derive(Debug)]
pub struct EventRow {
    pub event_id: Arc<str>,
    pub encounter_id: Arc<str>,
    pub version: u32,
    pub event_type: &'static str,
    pub outcome: Outcome,
    pub lines_produced: usize,
    pub lines_voided: usize,
    pub occurred_at: DateTime<Utc>,
    pub source: Source,
}

#[derive(Debug)]
pub struct DeadLetterRow {
    pub source: Source,
    pub reason: &'static str,
    pub message: String,
}

/// A message for a claim-line topic; `id` is its batch's outbox row. Key
/// and payload live only in memory: the database holds the line itself.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: i64,
    pub claim_line_id: String,
    pub status: Status,
    pub topic: Arc<str>,
    pub key: Arc<str>,
    pub payload: String,
}

/// Everything one batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct BatchWrite {
    pub events: Vec<EventRow>,
    pub new_lines: Vec<ClaimLine>,
    /// (claim_line_id, voiding event_id)
    pub voids: Vec<(String, Arc<str>)>,
    /// In publishing order; ids are assigned on insert.
    pub outbox: Vec<OutboxEntry>,
    pub dead_letters: Vec<DeadLetterRow>,
}

/// Opens the batch transaction and locks the batch's encounters (in a fixed
/// order, so two instances cannot deadlock), then loads what the ledger
/// needs. The lock is what makes the idempotency check and the writes one
/// atomic step even during a rebalance.
pub async fn begin_batch(
    pool: &PgPool,
    encounter_ids: &[&str],
    event_ids: &[&str],
) -> anyhow::Result<(Transaction<'static, Postgres>, Ledger)> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to begin a transaction")?;
    let mut ledger = Ledger::default();
    if encounter_ids.is_empty() {
        return Ok((tx, ledger));
    }
    // Transaction-scoped advisory locks, taken in sorted id order so two
    // instances cannot deadlock; a hash collision only serialises more.
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(k)) FROM
           (SELECT hashtextextended(id, 0) AS k FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n) AS keys",
    )
    .bind(encounter_ids)
    .execute(&mut *tx)
    .await
    .context("Failed to lock encounters")?;
    let rows = sqlx::query(
        // One index probe per encounter, whatever the table's statistics say.
        "SELECT u.id, v.version FROM unnest($1::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT encounter_version AS version FROM encounter_events e
                             WHERE e.encounter_id = u.id ORDER BY encounter_version DESC LIMIT 1) AS v",
    )
    .bind(encounter_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to read encounter versions")?;
    for row in rows {
        let version: i32 = row.get(1);
        let id: String = row.get(0);
        ledger.versions.insert(id.into(), version as u32);
    }
    let seen = sqlx::query("SELECT event_id FROM encounter_events WHERE event_id = ANY($1)")
        .bind(event_ids)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to look up processed events")?;
    ledger.seen = seen
        .into_iter()
        .map(|r| r.get::<String, _>(0).into())
        .collect();
    let active = sqlx::query(
        // The lines in force are those of the encounter's newest event, if
        // it produced lines: their ids follow from its version and count,
        // so no index on claim_lines beyond the primary key is needed.
        "SELECT to_jsonb(c) FROM unnest($1::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT encounter_version, lines_produced FROM encounter_events e
                             WHERE e.encounter_id = u.id AND e.outcome <> 'stale'
                             ORDER BY encounter_version DESC LIMIT 1) AS v
         CROSS JOIN LATERAL generate_series(1, v.lines_produced) AS n
         JOIN claim_lines c ON c.claim_line_id = u.id || ':' || v.encounter_version || ':' || n
         WHERE c.status <> 'void'
         ORDER BY u.id, n",
    )
    .bind(encounter_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to load the lines in force")?;
    for row in active {
        let value: serde_json::Value = row.get(0);
        let line: ClaimLine =
            serde_json::from_value(value).context("A stored claim line does not decode")?;
        ledger
            .active
            .entry(line.encounter_id.clone())
            .or_default()
            .push(line);
    }
    Ok((tx, ledger))
}

/// Writes the batch with one bulk statement per table and commits. The
/// batch's outbox entries get the id of their outbox row.
pub async fn commit_batch(
    mut tx: Transaction<'static, Postgres>,
    batch: &mut BatchWrite,
) -> anyhow::Result<()> {
    if !batch.new_lines.is_empty() {
        copy_claim_lines(&mut tx, &batch.new_lines).await?;
    }
    if !batch.voids.is_empty() {
        let (ids, events): (Vec<&str>, Vec<&str>) =
            batch.voids.iter().map(|(a, b)| (a.as_str(), &**b)).unzip();
        sqlx::query(
            "UPDATE claim_lines c SET status = 'void', voided_by_event_id = v.event_id, updated_at = now()
             FROM unnest($1::text[], $2::text[]) AS v(claim_line_id, event_id)
             WHERE c.claim_line_id = v.claim_line_id",
        )
        .bind(&ids)
        .bind(&events)
        .execute(&mut *tx)
        .await
        .context("Failed to void claim lines")?;
    }
    if !batch.events.is_empty() {
        let e = &batch.events;
        sqlx::query(
            "INSERT INTO encounter_events (event_id, encounter_id, encounter_version, event_type, outcome,
                lines_produced, lines_voided, occurred_at, source_topic, source_partition, source_offset)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int4[],
                $7::int4[], $8::timestamptz[], $9::text[], $10::int4[], $11::int8[])",
        )
        .bind(e.iter().map(|r| &*r.event_id).collect::<Vec<_>>())
        .bind(e.iter().map(|r| &*r.encounter_id).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.version as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.event_type).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.lines_produced as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.lines_voided as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.partition).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.offset).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record events")?;
    }
    if !batch.dead_letters.is_empty() {
        let d = &batch.dead_letters;
        sqlx::query(
            "INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, message)
             SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(d.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.source.partition).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.source.offset).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.reason).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record dead letters")?;
    }
    let outbox = &mut batch.outbox;
    if !outbox.is_empty() {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO claim_line_outbox (claim_line_ids, statuses, topics) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(outbox.iter().map(|o| o.claim_line_id.as_str()).collect::<Vec<_>>())
        .bind(outbox.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
        .bind(outbox.iter().map(|o| &*o.topic).collect::<Vec<_>>())
        .fetch_one(&mut *tx)
        .await
        .context("Failed to write the outbox")?;
        for entry in outbox.iter_mut() {
            entry.id = id;
        }
    }
    tx.commit().await.context("Failed to commit the batch")?;
    Ok(())
}

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

/// The claim lines' columns, in COPY order.
const CLAIM_LINE_COLUMNS: &str = "claim_line_id, encounter_id, encounter_version, event_id, date_of_service, \
    patient_id, provider_npi, payer_id, line_no, code, units, minutes, modifiers, unit_method, status, \
    flags, diagnoses, expected_payment_cents, rules_version";

/// Bulk-inserts claim lines with COPY (text format), the fastest path.
async fn copy_claim_lines(
    tx: &mut Transaction<'static, Postgres>,
    lines: &[ClaimLine],
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut buf = String::with_capacity(lines.len() * 1024);
    for l in lines {
        copy_row(&mut buf, l)?;
    }
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY claim_lines ({CLAIM_LINE_COLUMNS}) FROM STDIN"
        ))
        .await
        .context("Failed to start COPY into claim_lines")?;
    let bytes = buf.len();
    copy.send(buf.into_bytes())
        .await
        .context("Failed to send claim lines")?;
    copy.finish()
        .await
        .context("Failed to insert claim lines")?;
    tracing::debug!(
        rows = lines.len(),
        bytes,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "COPY claim_lines"
    );
    Ok(())
}

fn copy_row(out: &mut String, l: &ClaimLine) -> anyhow::Result<()> {
    let field = |out: &mut String, v: &str| {
        copy_escape(out, v);
        out.push('\t');
    };
    let number = |out: &mut String, n: u32| {
        out.push_str(decimal(u64::from(n), &mut [0; 20]));
        out.push('\t');
    };
    field(out, &l.claim_line_id);
    field(out, &l.encounter_id);
    number(out, l.encounter_version);
    field(out, &l.event_id);
    field(out, std::str::from_utf8(&date_bytes(l.date_of_service))?);
    field(out, &l.patient_id);
    field(out, l.provider_npi.as_str());
    field(out, &l.payer_id);
    number(out, l.line_no);
    field(out, l.code.as_str());
    number(out, l.units);
    number(out, l.minutes);
    array_literal(out, l.modifiers.iter().map(|m| m.as_str()));
    field(out, l.unit_method.as_str());
    field(out, l.status.as_str());
    let mut flags = Vec::with_capacity(2 + 256 * l.flags.len());
    Flag::write_json_array(&l.flags, &mut flags);
    field(out, std::str::from_utf8(&flags)?);
    array_literal(out, l.diagnoses.iter().map(|d| d.as_str()));
    match l.expected_payment_cents {
        Some(c) => {
            if c < 0 {
                out.push('-');
            }
            out.push_str(decimal(c.unsigned_abs(), &mut [0; 20]));
            out.push('\t');
        }
        None => out.push_str("\\N\t"),
    }
    copy_escape(out, &l.rules_version);
    out.push('\n');
    Ok(())
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_escape(out: &mut String, v: &str) {
    if !v.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A Postgres array literal with every element quoted, as a COPY field.
fn array_literal<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    let mut literal = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '\\' || c == '"' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    copy_escape(out, &literal);
    out.push('\t');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_and_array_escaping() {
        let mut s = String::new();
        copy_escape(&mut s, "a\tb\\c\nd");
        assert_eq!(s, "a\\tb\\\\c\\nd");
        let literal = |items: &[&str]| {
            let mut out = String::new();
            array_literal(&mut out, items.iter().copied());
            out
        };
        assert_eq!(literal(&[]), "{}\t");
        // Array quoting, then COPY's own escaping of the backslashes.
        assert_eq!(
            literal(&["GP", "a\"b", "c\\d"]),
            "{\"GP\",\"a\\\\\"b\",\"c\\\\\\\\d\"}\t"
        );
    }
}
