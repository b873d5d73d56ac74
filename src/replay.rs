//! `claimline dlq replay`: sends dead letters back to the input topic once
//! the sender has fixed what made them fail (or claimline's rules have), at
//! most once each. The dead-letter topic is read from the beginning; each
//! replayed dead letter is recorded in `dead_letter_replays` before it is
//! sent (and the record dropped again if the broker refuses it), so two runs
//! at once never send the same one twice. A value kept in Postgres
//! (`error.value_stored: postgres`) is sent from there.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::config::DatabaseArgs;
use crate::kafka::consumer::{IdleClock, Record, TopicReader};
use crate::kafka::{KafkaArgs, Outgoing, Producer};

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Dead-letter topic to read.
    #[arg(long, env = "CLAIMLINE_DLQ_TOPIC", default_value = "encounters.dlq")]
    pub dlq_topic: String,
    /// Input topic to send the dead letters back to.
    #[arg(long, env = "CLAIMLINE_INPUT_TOPIC", default_value = "encounters")]
    pub input_topic: String,
    /// Only dead letters with this error.reason (e.g. schema_violation).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only dead letters written at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Print what would be replayed; send and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop reading the dead-letter topic after this many seconds without
    /// a message (at least 15 s for the first one).
    #[arg(long, default_value_t = 5)]
    pub idle_secs: u64,
}

/// What one run did, by reason.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Dead letters that matched the filters, by reason.
    pub matched: BTreeMap<String, u64>,
    /// Of those, sent (or, in a dry run, that would be).
    pub replayed: u64,
    /// Of those, replayed by an earlier run and skipped.
    pub already: u64,
}

pub async fn replay(args: &ReplayArgs) -> anyhow::Result<Summary> {
    let pool = crate::store::connect(&args.database.database_url, 2).await?;
    let reader = TopicReader::create(&args.kafka, &args.dlq_topic)?;
    let producer = Producer::create_plain(&args.kafka)?;
    let mut clock = IdleClock::new(Duration::from_secs(args.idle_secs));
    let mut summary = Summary::default();
    while !clock.expired() {
        let Some(m) = tokio::task::block_in_place(|| reader.poll(Duration::from_millis(200)))
        else {
            continue;
        };
        clock.message();
        let reason = m.header("error.reason").unwrap_or("unknown").to_owned();
        if args.reason.as_ref().is_some_and(|r| *r != reason)
            || args
                .since
                .is_some_and(|t| m.timestamp_ms.is_none_or(|ms| ms < t.timestamp_millis()))
        {
            continue;
        }
        *summary.matched.entry(reason.clone()).or_default() += 1;
        if args.dry_run {
            if replayed_before(&pool, &args.dlq_topic, &m).await? {
                summary.already += 1;
            } else {
                summary.replayed += 1;
            }
            continue;
        }
        if !claim(&pool, &args.dlq_topic, &m, &reason).await? {
            summary.already += 1;
            continue;
        }
        let sent = async {
            let value = original_value(&pool, &m).await?;
            let ack = producer
                .enqueue(Outgoing {
                    topic: &args.input_topic,
                    key: m.key.as_deref(),
                    payload: &value,
                    headers: Vec::new(),
                })
                .await;
            if !ack.acknowledged().await {
                anyhow::bail!("the broker did not acknowledge a replayed message");
            }
            Ok(())
        }
        .await;
        if let Err(e) = sent {
            unclaim(&pool, &args.dlq_topic, &m).await?;
            return Err(e);
        }
        summary.replayed += 1;
    }
    Ok(summary)
}

async fn replayed_before(pool: &PgPool, topic: &str, m: &Record) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM dead_letter_replays
                        WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3)",
    )
    .bind(topic)
    .bind(m.partition)
    .bind(m.offset)
    .fetch_one(pool)
    .await
    .context("Failed to read dead_letter_replays (run claimline migrate?)")
}

/// Records the replay; false if an earlier (or concurrent) run did.
async fn claim(pool: &PgPool, topic: &str, m: &Record, reason: &str) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO dead_letter_replays (dlq_topic, dlq_partition, dlq_offset, reason)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(topic)
    .bind(m.partition)
    .bind(m.offset)
    .bind(reason)
    .execute(pool)
    .await
    .context("Failed to record a replay (run claimline migrate?)")?;
    Ok(done.rows_affected() == 1)
}

async fn unclaim(pool: &PgPool, topic: &str, m: &Record) -> anyhow::Result<()> {
    sqlx::query(
        "DELETE FROM dead_letter_replays WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3",
    )
    .bind(topic)
    .bind(m.partition)
    .bind(m.offset)
    .execute(pool)
    .await
    .context("Failed to drop a replay record")?;
    Ok(())
}

/// The dead letter's original value: its own, or the one kept in Postgres.
async fn original_value(pool: &PgPool, m: &Record) -> anyhow::Result<Vec<u8>> {
    if m.header("error.value_stored") != Some("postgres") {
        return Ok(m.payload.clone());
    }
    let (topic, partition, offset) = (
        m.header("source.topic").unwrap_or_default(),
        m.header("source.partition")
            .and_then(|p| p.parse::<i32>().ok())
            .unwrap_or(-1),
        m.header("source.offset")
            .and_then(|o| o.parse::<i64>().ok())
            .unwrap_or(-1),
    );
    sqlx::query_scalar(
        "SELECT value FROM dead_letter_payloads
         WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
    )
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .fetch_optional(pool)
    .await
    .context("Failed to read a kept dead-letter value")?
    .context("a dead letter's value is marked as kept in Postgres but is not there")
}
