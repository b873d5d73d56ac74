//! Settling a written batch: every claim line acknowledged (those that
//! were not are sent again, with backoff), the outbox row removed, the
//! dead letters settled ([`super::dead_letter`]), then the batch's offsets
//! stored.

use super::batch::Sent;
use super::retry::{Step, Stopped};
use super::{outbox_message, Pipeline};

use crate::kafka::EventConsumer;
use crate::store::{self, OutboxEntry};

impl Pipeline {
    pub(super) async fn settle(&self, consumer: &EventConsumer, sent: Sent) -> Result<(), Stopped> {
        let Sent {
            mut messages,
            outbox,
            outbox_acks,
        } = sent;
        let mut failed = Vec::new();
        for (e, ack) in outbox.iter().zip(outbox_acks) {
            if !ack.acknowledged().await {
                failed.push(e.clone());
            }
        }
        if !failed.is_empty() {
            let failed = &failed;
            self.retry
                .run(Step::PublishOutbox, || Box::pin(self.send_outbox(failed)))
                .await?;
        }
        if !outbox.is_empty() {
            let ids: Vec<i64> = outbox.iter().map(|e| e.id).collect();
            let ids = &ids;
            self.retry
                .run(Step::MarkPublished, || {
                    Box::pin(store::mark_published(&self.db, ids))
                })
                .await?;
            self.in_flight.remove(ids);
            for e in &outbox {
                self.metrics.line_published(e.status.as_str());
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            for s in messages.iter().filter(|s| s.dead.is_none()) {
                if let Some(ts) = s.message.timestamp_ms {
                    self.metrics
                        .processing_latency((now_ms - ts).max(0) as f64 / 1000.0);
                }
            }
        }
        self.dead_letters.settle(&self.retry, &mut messages).await?;
        consumer.store_offsets(messages.iter().map(|s| &s.message));
        self.health.progress.progressed();
        Ok(())
    }

    /// Sends outbox entries and waits for every acknowledgement.
    async fn send_outbox(&self, entries: &[OutboxEntry]) -> anyhow::Result<()> {
        self.producer
            .publish_all(entries.iter().map(outbox_message).collect())
            .await
    }
}
