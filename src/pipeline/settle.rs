//! Settling a written batch: every message acknowledged (those that were
//! not are sent again, with backoff), the outbox row removed, then the
//! batch's offsets stored. Also the start-up drain of what a crash left.

use super::batch::Sent;
use super::plan::Item;
use super::retry::{Step, Stopped};
use super::{outbox_message, Pipeline};
use crate::kafka::EventConsumer;
use crate::store::{self, OutboxEntry};

impl Pipeline {
    pub(super) async fn settle(&self, consumer: &EventConsumer, sent: Sent) -> Result<(), Stopped> {
        let Sent {
            batch,
            items,
            outbox,
            outbox_acks,
            dead,
            dead_acks,
        } = sent;
        let mut failed = Vec::new();
        for (e, ack) in outbox.iter().zip(outbox_acks) {
            if !ack.acknowledged().await {
                failed.push(e.clone());
            }
        }
        if !failed.is_empty() {
            let failed = &failed;
            self.mark(Step::PublishOutbox.dependency(), false);
            self.retry(Step::PublishOutbox, || Box::pin(self.send_outbox(failed)))
                .await?;
        }
        if !outbox.is_empty() {
            let ids: Vec<i64> = outbox.iter().map(|e| e.id).collect();
            let ids = &ids;
            self.retry(Step::MarkPublished, || {
                Box::pin(store::mark_published(&self.pool, ids))
            })
            .await?;
            self.in_flight.remove(ids);
            for e in &outbox {
                self.metrics
                    .claim_lines_published
                    .with_label_values(&[e.status.as_str()])
                    .inc();
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            for (m, item) in batch.iter().zip(&items) {
                if let (Item::Good(_), Some(ts)) = (item, m.timestamp_ms) {
                    self.metrics
                        .processing_latency
                        .observe((now_ms - ts).max(0) as f64 / 1000.0);
                }
            }
        }
        let mut failed = Vec::new();
        for (&i, ack) in dead.iter().zip(dead_acks) {
            if !ack.acknowledged().await {
                failed.push(i);
            }
        }
        if !failed.is_empty() {
            let (failed, batch, items) = (&failed, &batch, &items);
            self.retry(Step::PublishDlq, || {
                Box::pin(async move {
                    let messages = failed
                        .iter()
                        .filter_map(|&i| match &items[i] {
                            Item::Bad(e) => Some(self.dead_letter_message(&batch[i], e)),
                            Item::Good(_) => None,
                        })
                        .collect();
                    self.producer.publish_all(messages).await
                })
            })
            .await?;
        }
        for &i in &dead {
            if let Item::Bad(e) = &items[i] {
                let m = &batch[i];
                self.metrics
                    .events_dead_lettered
                    .with_label_values(&[e.reason_code()])
                    .inc();
                tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, reason = e.reason_code(), error = %e, "dead-lettered a bad event");
            }
        }
        self.mark(Step::PublishOutbox.dependency(), true);
        consumer.store_offsets(&batch);
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
