//! Postgres (sqlx): connection, migrations, and the rows a batch writes.
//!
//! - [`batch`]: the batch transaction (lock, load the ledger, write, commit);
//! - [`copy`]: claim lines by COPY;
//! - [`outbox`]: what was committed and not yet acknowledged;
//! - [`rules`]: imported CMS tables.

mod batch;
mod copy;
mod outbox;
pub mod rules;

pub use batch::{begin_batch, commit_batch, load_payloads};
pub use outbox::{
    backlog, claim_for_encounters, claim_lapsed, mark_published, renew, OwnedElsewhere, Owner,
};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseUrl;
use crate::domain::ledger::Outcome;
use crate::domain::{ClaimLine, Status};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(url: &DatabaseUrl, pool_size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url.check()?)
        .await
        .context("Failed to connect to Postgres (DATABASE_URL)")
}

/// A pool that connects on first use, so the service can start while
/// Postgres is still down and report not-ready instead of exiting. Every
/// session gets a statement and a lock timeout of `timeout` and an
/// idle-in-transaction timeout of twice that, so a half-open connection or
/// a lock held elsewhere fails a step (retried) instead of wedging it.
pub fn connect_lazy(
    url: &DatabaseUrl,
    pool_size: u32,
    timeout: Duration,
) -> anyhow::Result<PgPool> {
    let ms = |d: Duration| d.as_millis().to_string();
    let options = PgConnectOptions::from_str(url.check()?)
        // Its error could quote the URL: not chained.
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid Postgres URL"))?
        .options([
            ("statement_timeout", ms(timeout)),
            ("lock_timeout", ms(timeout)),
            ("idle_in_transaction_session_timeout", ms(2 * timeout)),
        ]);
    Ok(PgPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options))
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("Failed to run database migrations")
}

/// The migrations this build knows that the database has not applied
/// (successfully), by version; empty when the schema is current. Errs only
/// when the database cannot be asked.
pub async fn missing_migrations(pool: &PgPool) -> anyhow::Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .context("Failed to read the migration history")?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .context("Failed to read the migration history")?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

/// The SQLSTATE of a Postgres error that the batch's *content* caused and
/// that no retry will cure: data exceptions (class 22: NUL in text, a value
/// out of range, bad encoding), integrity violations (23) and program
/// limits (54: a row or value too large). `None` for everything else,
/// which is transient (connection, timeout, serialization, shutdown) or
/// our own bug, and is retried.
pub fn refused_by_content(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        let db = cause.downcast_ref::<sqlx::Error>()?.as_database_error()?;
        let code = db.code()?;
        matches!(code.get(..2), Some("22" | "23" | "54")).then(|| code.into_owned())
    })
}

/// Keeps the original bytes of dead letters whose value the broker would
/// not take (they may be PHI: the table has claim_lines' protections).
pub async fn keep_dead_letter_values(
    pool: &PgPool,
    messages: &[&crate::kafka::Incoming],
) -> anyhow::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO dead_letter_payloads (source_topic, source_partition, source_offset, key, value)
         SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::bytea[], $5::bytea[])
         ON CONFLICT DO NOTHING",
    )
    .bind(messages.iter().map(|m| m.topic.as_str()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.partition).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.offset).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.key.as_deref()).collect::<Vec<_>>())
    .bind(messages.iter().map(|m| m.payload.as_slice()).collect::<Vec<_>>())
    .execute(pool)
    .await
    .context("Failed to keep dead-letter values")?;
    Ok(())
}

pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// What a batch's ledger must be loaded for. No `Debug`: it holds patient ids.
pub struct Keys<'a> {
    /// Sorted, unique: the lock order.
    pub encounters: Vec<&'a str>,
    pub events: Vec<&'a str>,
    /// (patient, calendar year of the date of service), sorted, unique:
    /// the year-to-date therapy amounts to lock and load.
    pub patient_years: Vec<(&'a str, i32)>,
    /// (patient, NPI, payer, date of service, encounter): the days for the
    /// units, with the encounters of the batch's events on each.
    pub days: Vec<(&'a str, &'a str, &'a str, chrono::NaiveDate, &'a str)>,
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

/// A processed event's original bytes (PHI: `encounter_payloads` has
/// claim_lines' protections), for reprocessing and the day's re-evaluation.
pub struct PayloadRow {
    pub event_id: Arc<str>,
    pub encounter_id: Arc<str>,
    pub version: u32,
    pub date_of_service: chrono::NaiveDate,
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for PayloadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayloadRow({} bytes)", self.payload.len())
    }
}

/// Everything one batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct BatchWrite {
    pub events: Vec<EventRow>,
    pub payloads: Vec<PayloadRow>,
    pub new_lines: Vec<ClaimLine>,
    /// (claim_line_id, voiding event_id)
    pub voids: Vec<(String, Arc<str>)>,
    /// In publishing order; ids are assigned on insert.
    pub outbox: Vec<OutboxEntry>,
    pub dead_letters: Vec<DeadLetterRow>,
}
