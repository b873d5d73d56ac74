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

use crate::kafka::consumer::{IdleClock, Record, TopicReader};
use crate::kafka::dead_letter::Headers;
use crate::kafka::{KafkaArgs, Outgoing, Producer};
use crate::store::dead_letters::{self, DlqPosition};
use crate::store::{DatabaseUrl, Db, Source};

/// What to replay, and from where to where.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub database_url: DatabaseUrl,
    pub kafka: KafkaArgs,
    pub dlq_topic: String,
    pub input_topic: String,
    /// Only dead letters with this `error.reason`.
    pub reason: Option<String>,
    /// Only dead letters written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Count what would be replayed; send and record nothing.
    pub dry_run: bool,
    /// Stop after this long without a message.
    pub idle: Duration,
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

pub async fn replay(o: &ReplayOptions) -> anyhow::Result<Summary> {
    let db = Db::connect(&o.database_url, 2).await?;
    let reader = TopicReader::create(&o.kafka, &o.dlq_topic)?;
    let producer = Producer::create_plain(&o.kafka)?;
    let mut clock = IdleClock::new(o.idle);
    let mut summary = Summary::default();
    while !clock.expired() {
        let Some(m) = tokio::task::block_in_place(|| reader.poll(Duration::from_millis(200)))
        else {
            continue;
        };
        clock.message();
        let headers = Headers::read(&m);
        if o.reason.as_ref().is_some_and(|r| *r != headers.reason)
            || o.since
                .is_some_and(|t| m.timestamp_ms.is_none_or(|ms| ms < t.timestamp_millis()))
        {
            continue;
        }
        *summary.matched.entry(headers.reason.clone()).or_default() += 1;
        let at = DlqPosition {
            topic: &o.dlq_topic,
            partition: m.partition,
            offset: m.offset,
        };
        if o.dry_run {
            if dead_letters::replayed_before(&db, at).await? {
                summary.already += 1;
            } else {
                summary.replayed += 1;
            }
            continue;
        }
        if !dead_letters::claim_replay(&db, at, &headers.reason).await? {
            summary.already += 1;
            continue;
        }
        let sent = async {
            let value = original_value(&db, &m, &headers).await?;
            let ack = producer
                .enqueue(Outgoing {
                    topic: &o.input_topic,
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
            dead_letters::unclaim_replay(&db, at).await?;
            return Err(e);
        }
        summary.replayed += 1;
    }
    Ok(summary)
}

/// The dead letter's original value: its own, or the one kept in Postgres.
async fn original_value(db: &Db, m: &Record, headers: &Headers) -> anyhow::Result<Vec<u8>> {
    if !headers.value_stored {
        return Ok(m.payload.clone());
    }
    let (topic, partition, offset) = headers.source.clone();
    let source = Source {
        topic,
        partition,
        offset,
    };
    dead_letters::kept_value(db, &source)
        .await?
        .context("a dead letter's value is marked as kept in Postgres but is not there")
}
