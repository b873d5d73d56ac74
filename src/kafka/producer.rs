//! The producer: idempotent, so librdkafka's retries never duplicate or
//! reorder. Messages are enqueued in order and their acknowledgements
//! awaited later, so a batch's sends overlap the next batch's work.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::DeliveryFuture;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::watch;

use super::config::config_error;
use super::{KafkaArgs, Outgoing};

/// The service's producer (cheap to clone: one librdkafka handle).
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer<ProducerCtx>,
    fatal: Arc<watch::Sender<bool>>,
}

/// Notices a fatal error (for an idempotent producer, one after which
/// ordering or exactly-once delivery can no longer be kept): the service
/// must stop and restart rather than go on.
#[derive(Default)]
pub struct ProducerCtx {
    fatal: Arc<watch::Sender<bool>>,
}

impl ClientContext for ProducerCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            tracing::error!(error = %error, reason, "fatal producer error");
            self.fatal.send_replace(true);
        } else {
            tracing::warn!(error = %error, reason, "producer error");
        }
    }
}

/// A message handed to the producer; await [`Ack::delivered`].
pub struct Ack(Result<DeliveryFuture, Delivery>);

/// How a message fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The broker acknowledged it.
    Acked,
    /// Not delivered this time (broker down, timeout): send it again.
    Failed,
    /// Larger than the producer or the broker takes: sending it again
    /// cannot succeed.
    TooLarge,
}

fn delivery_error(e: &KafkaError) -> Delivery {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge,
        ) => Delivery::TooLarge,
        _ => Delivery::Failed,
    }
}

impl Producer {
    /// The service's producer: room for an oversized input to be
    /// dead-lettered unchanged.
    pub fn create(args: &KafkaArgs) -> anyhow::Result<Self> {
        let mut c = args.client_config()?;
        c.set("enable.idempotence", "true");
        if c.get("linger.ms").is_none() {
            c.set("linger.ms", "5");
        }
        if c.get("message.max.bytes").is_none() {
            c.set("message.max.bytes", "8388608");
        }
        Producer::with(c)
    }

    fn with(c: rdkafka::config::ClientConfig) -> anyhow::Result<Self> {
        let ctx = ProducerCtx::default();
        let fatal = ctx.fatal.clone();
        Ok(Producer {
            inner: c.create_with_context(ctx).map_err(config_error)?,
            fatal,
        })
    }

    /// Resolves when the producer hit a fatal error.
    pub async fn fatal(&self) {
        let mut rx = self.fatal.subscribe();
        let _ = rx.wait_for(|f| *f).await;
    }

    pub fn is_fatal(&self) -> bool {
        *self.fatal.borrow()
    }

    /// The `send` tool's producer: the same configuration, librdkafka's
    /// defaults otherwise.
    pub fn create_plain(args: &KafkaArgs) -> anyhow::Result<Self> {
        let mut c = args.client_config()?;
        c.set("enable.idempotence", "true");
        Producer::with(c)
    }

    /// Hands one message to the producer, waiting while its queue is full.
    /// A refused message gives an [`Ack`] that is never acknowledged (the
    /// caller sends it again later).
    pub async fn enqueue(&self, m: Outgoing<'_>) -> Ack {
        let mut record = FutureRecord::to(m.topic).payload(m.payload);
        if let Some(k) = m.key {
            record = record.key(k);
        }
        if !m.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(m.headers.len());
            for (key, value) in &m.headers {
                h = h.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
            record = record.headers(h);
        }
        loop {
            match self.inner.send_result(record) {
                Ok(fut) => return Ack(Ok(fut)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "the producer refused a message");
                    return Ack(Err(delivery_error(&e)));
                }
            }
        }
    }

    /// Sends all messages, then waits for every acknowledgement; fails if
    /// any was not acknowledged (the caller sends the set again).
    pub async fn publish_all(&self, messages: Vec<Outgoing<'_>>) -> anyhow::Result<()> {
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            pending.push(self.enqueue(m).await);
        }
        let mut failed = 0;
        for ack in pending {
            if !ack.acknowledged().await {
                failed += 1;
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} message(s) were not acknowledged by the broker");
        }
        Ok(())
    }

    /// Waits up to `limit` for every queued message to be delivered.
    pub fn flush(&self, limit: Duration) {
        if let Err(e) = self.inner.flush(limit) {
            tracing::warn!(error = %e, "producer flush incomplete");
        }
    }

    /// Messages queued and not yet acknowledged.
    pub fn queue_len(&self) -> i32 {
        self.inner.in_flight_count()
    }

    /// Whether the cluster answers a metadata request within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let producer = self.inner.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok())
            .await
            .unwrap_or(false)
    }
}

impl Ack {
    /// How the message fared.
    pub async fn delivered(self) -> Delivery {
        match self.0 {
            Ok(fut) => match fut.await {
                Ok(Ok(_)) => Delivery::Acked,
                Ok(Err((e, _))) => {
                    tracing::warn!(error = %e, "the broker did not acknowledge a message");
                    delivery_error(&e)
                }
                Err(_) => Delivery::Failed,
            },
            Err(d) => d,
        }
    }

    /// True when the broker acknowledged the message.
    pub async fn acknowledged(self) -> bool {
        self.delivered().await == Delivery::Acked
    }
}

/// Creates the topics that are missing (demo and tests).
pub async fn create_topics(
    args: &KafkaArgs,
    topics: &[&str],
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = args
        .client_config()?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_fatal_error_marks_the_producer_fatal() {
        let ctx = ProducerCtx::default();
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "broker down",
        );
        assert!(!*ctx.fatal.borrow());
        ctx.error(KafkaError::Global(RDKafkaErrorCode::Fatal), "fenced");
        assert!(*ctx.fatal.borrow());
    }
}
