//! Settling the batches sent, one after another in the order sent: every
//! claim line acknowledged (those that were not are sent again, with
//! backoff), the outbox row removed, the dead letters settled
//! ([`super::dead_letter`]), then the batch's offsets stored. A batch that
//! shares an encounter with one not yet settled is sent after that settle
//! ([`super::send_order`]).

use super::batch::{Pending, Pipeline, Sent, Settled};
use super::outbox_message;
use super::retry::{Step, Stopped};

use crate::kafka::{EventConsumer, Producer};
use crate::store::{self, OutboxEntry};

impl Pipeline {
    /// Settles the batches sent, one after another in the order sent,
    /// until the publisher is done or a settle gives up (the service is
    /// stopping): then what is left is redelivered.
    pub(super) async fn settle_in_order(
        &self,
        consumer: &EventConsumer,
        mut sent: tokio::sync::mpsc::Receiver<Sent>,
        settled: &tokio::sync::watch::Sender<Settled>,
        pending: &Pending,
    ) -> Result<(), Stopped> {
        while let Some(batch) = sent.recv().await {
            if batch.settle(self, consumer).await.is_err() {
                settled.send_modify(|s| s.failed = true);
                sent.close();
                return Err(Stopped);
            }
            settled.send_modify(|s| s.batches += 1);
            pending.settled(&self.health.progress);
        }
        Ok(())
    }
}

impl Sent {
    /// Settles the batch, then stores its offsets.
    pub(super) async fn settle(
        self,
        p: &Pipeline,
        consumer: &EventConsumer,
    ) -> Result<(), Stopped> {
        let Sent {
            mut messages,
            outbox,
            outbox_acks,
        } = self;
        let mut failed = Vec::new();
        for (e, ack) in outbox.iter().zip(outbox_acks) {
            if !ack.acknowledged().await {
                failed.push(e.clone());
            }
        }
        if !failed.is_empty() {
            let failed = &failed;
            p.retry
                .run(Step::PublishOutbox, || {
                    Box::pin(send_outbox(&p.producer, failed))
                })
                .await?;
        }
        if !outbox.is_empty() {
            let ids: Vec<i64> = outbox.iter().map(|e| e.id).collect();
            let ids = &ids;
            p.retry
                .run(Step::MarkPublished, || {
                    Box::pin(store::mark_published(&p.db, ids))
                })
                .await?;
            p.in_flight.remove(ids);
            for e in &outbox {
                p.metrics.line_published(e.status.as_str());
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            for s in messages.iter().filter(|s| s.dead.is_none()) {
                if let Some(ts) = s.message.timestamp_ms {
                    p.metrics
                        .processing_latency((now_ms - ts).max(0) as f64 / 1000.0);
                }
            }
        }
        p.dead_letters.settle(&p.retry, &mut messages).await?;
        consumer.store_offsets(messages.iter().map(|s| &s.message));
        p.health.progress.progressed();
        Ok(())
    }
}

/// Sends outbox entries and waits for every acknowledgement.
async fn send_outbox(producer: &Producer, entries: &[OutboxEntry]) -> anyhow::Result<()> {
    producer
        .publish_all(entries.iter().map(outbox_message).collect())
        .await
}
