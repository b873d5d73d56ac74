//! Settling a written batch: every claim line acknowledged (those that
//! were not are sent again, with backoff), the outbox row removed, the
//! dead letters settled ([`super::dead_letter`]), then the batch's offsets
//! stored.

use super::batch::{Pipeline, Sent};
use super::outbox_message;
use super::retry::{Step, Stopped};

use crate::kafka::{EventConsumer, Producer};
use crate::store::{self, OutboxEntry};

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
