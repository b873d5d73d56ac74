//! Kafka in and out (rdkafka). rdkafka types stop here: the rest of the code
//! sees [`Incoming`] and plain results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;

use crate::config::RunConfig;
use crate::metrics::Metrics;

/// One consumed message, owned.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl Incoming {
    pub fn from_message(m: &BorrowedMessage<'_>) -> Incoming {
        Incoming {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            timestamp_ms: m.timestamp().to_millis(),
        }
    }
}

/// Consumer callbacks: commit stored offsets before partitions are taken
/// away, track the assignment for /readyz, and export lag from statistics.
pub struct ConsumerCtx {
    pub assigned: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

impl ClientContext for ConsumerCtx {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            // Batches run inside the poll loop, so all stored offsets are final here.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(error = %e, "commit on partition revoke failed"),
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let n = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.assigned.store(n > 0, Ordering::Relaxed);
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked");
                self.metrics.consumer_lag.reset();
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

pub type EventConsumer = StreamConsumer<ConsumerCtx>;

fn base_config(cfg: &RunConfig) -> anyhow::Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers);
    for (prop, var, value) in crate::config::kafka_properties_from_env() {
        if value.is_empty() {
            anyhow::bail!("{var} is set but empty");
        }
        c.set(prop, value);
    }
    Ok(c)
}

/// The consumer: at-least-once, offsets stored by hand after the work is
/// durable and committed by librdkafka on a timer.
pub fn create_consumer(cfg: &RunConfig, ctx: ConsumerCtx) -> anyhow::Result<EventConsumer> {
    let mut c = base_config(cfg)?;
    for (k, v) in [
        ("group.id", cfg.group_id.as_str()),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", "5000"),
    ] {
        // Users may override the tuning ones through KAFKA_*; never the
        // offset handling that at-least-once depends on.
        if c.get(k).is_none() || matches!(k, "enable.auto.offset.store" | "group.id") {
            c.set(k, v);
        }
    }
    c.create_with_context(ctx).map_err(config_error)
}

/// The producer: idempotent, so retries never duplicate or reorder.
pub fn create_producer(cfg: &RunConfig) -> anyhow::Result<FutureProducer> {
    let mut c = base_config(cfg)?;
    c.set("enable.idempotence", "true");
    if c.get("linger.ms").is_none() {
        c.set("linger.ms", "5");
    }
    if c.get("message.max.bytes").is_none() {
        // Room for an oversized input to be dead-lettered unchanged.
        c.set("message.max.bytes", "8388608");
    }
    c.create().map_err(config_error)
}

/// One line naming the setting, never its value (it may be a secret).
fn config_error(e: KafkaError) -> anyhow::Error {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let desc = if value.is_empty() {
                desc
            } else {
                desc.replace(&value, "<redacted>")
            };
            let var = if key == "bootstrap.servers" {
                "KAFKA_BOOTSTRAP_SERVERS".to_owned()
            } else {
                format!("KAFKA_{}", key.to_ascii_uppercase().replace('.', "_"))
            };
            anyhow::anyhow!("invalid Kafka setting {var} ({key}): {desc}")
        }
        other => anyhow::anyhow!("invalid Kafka configuration: {other}"),
    }
}

/// Creates the topics that are missing (demo and tests).
pub async fn create_topics(
    cfg: &RunConfig,
    topics: &[&str],
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(cfg)?
        .create()
        .context("invalid Kafka admin configuration")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .context("Failed to create topics")?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => anyhow::bail!("Failed to create topic {t}: {e}"),
        }
    }
    Ok(())
}

/// A message to publish.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: Option<OwnedHeaders>,
}

pub use rdkafka::producer::future_producer::DeliveryFuture;

/// Hands one message to the producer, waiting while its queue is full.
/// `None` if the producer refused it (the caller sends it again later).
pub async fn enqueue(producer: &FutureProducer, m: Outgoing<'_>) -> Option<DeliveryFuture> {
    let mut record = FutureRecord::to(m.topic).payload(m.payload);
    if let Some(k) = m.key {
        record = record.key(k);
    }
    if let Some(h) = m.headers {
        record = record.headers(h);
    }
    loop {
        match producer.send_result(record) {
            Ok(fut) => return Some(fut),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => {
                tracing::warn!(error = %e, "the producer refused a message");
                return None;
            }
        }
    }
}

/// Waits for one delivery: true when the broker acknowledged it.
pub async fn acknowledged(ack: Option<DeliveryFuture>) -> bool {
    match ack {
        Some(fut) => match fut.await {
            Ok(Ok(_)) => true,
            Ok(Err((e, _))) => {
                tracing::warn!(error = %e, "the broker did not acknowledge a message");
                false
            }
            Err(_) => false,
        },
        None => false,
    }
}

/// Sends all messages, then waits for every acknowledgement; fails if any
/// was not acknowledged (the caller sends the set again).
pub async fn publish_all(
    producer: &FutureProducer,
    messages: Vec<Outgoing<'_>>,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(messages.len());
    for m in messages {
        pending.push(enqueue(producer, m).await);
    }
    let mut failed = 0;
    for ack in pending {
        if !acknowledged(ack).await {
            failed += 1;
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} message(s) were not acknowledged by the broker");
    }
    Ok(())
}

pub fn dlq_headers(reason: &str, message: &str, source: &Incoming) -> OwnedHeaders {
    let partition = source.partition.to_string();
    let offset = source.offset.to_string();
    OwnedHeaders::new()
        .insert(Header {
            key: "error.reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "error.message",
            value: Some(message),
        })
        .insert(Header {
            key: "source.topic",
            value: Some(source.topic.as_str()),
        })
        .insert(Header {
            key: "source.partition",
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: "source.offset",
            value: Some(offset.as_str()),
        })
}

pub fn producer_queue_len(producer: &FutureProducer) -> i32 {
    producer.in_flight_count()
}
