//! Settling a written batch: every message acknowledged (those that were
//! not are sent again, with backoff), the outbox row removed, then the
//! batch's offsets stored.

use super::batch::Sent;
use super::plan::{self, Item};
use super::retry::{Step, Stopped};
use super::{outbox_message, Pipeline};
use std::sync::Mutex;

use crate::kafka::{Delivery, EventConsumer, Incoming};
use crate::store::dead_letters::KeptValue;
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
            for (m, item) in batch.iter().zip(&items) {
                if let (Item::Good(_), Some(ts)) = (item, m.timestamp_ms) {
                    self.metrics
                        .processing_latency((now_ms - ts).max(0) as f64 / 1000.0);
                }
            }
        }
        let mut failed = Vec::new();
        let stripped = Mutex::new(Vec::new());
        for (&i, ack) in dead.iter().zip(dead_acks) {
            match ack.delivered().await {
                Delivery::Acked => {}
                Delivery::Failed => failed.push(i),
                Delivery::TooLarge => {
                    failed.push(i);
                    if let Ok(mut s) = stripped.lock() {
                        s.push(i);
                    }
                }
            }
        }
        if !failed.is_empty() {
            let (failed, batch, items, stripped) = (&failed, &batch, &items, &stripped);
            self.retry
                .run(Step::PublishDlq, || {
                    Box::pin(self.resend_dead_letters(failed, batch, items, stripped))
                })
                .await?;
        }
        for &i in &dead {
            if let Item::Bad(e) = &items[i] {
                let m = &batch[i];
                self.metrics.dead_lettered(e.reason_code());
                tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, reason = e.reason_code(), error = %e, "dead-lettered a bad event");
            }
        }
        consumer.store_offsets(&batch);
        self.health.progress.progressed();
        Ok(())
    }

    /// Sends the dead letters `indexes` of `batch` again. One the broker
    /// will not take (too large) goes out with its headers and an empty
    /// value, its bytes kept in Postgres (contract section 2); `stripped`
    /// remembers which, across tries.
    async fn resend_dead_letters(
        &self,
        indexes: &[usize],
        batch: &[Incoming],
        items: &[Item],
        stripped: &Mutex<Vec<usize>>,
    ) -> anyhow::Result<()> {
        let strip_now = |i: usize| stripped.lock().map(|s| s.contains(&i)).unwrap_or(false);
        let to_store: Vec<(store::Source, &Incoming)> = indexes
            .iter()
            .filter(|&&i| strip_now(i))
            .map(|&i| (plan::source(&batch[i]), &batch[i]))
            .collect();
        let kept: Vec<KeptValue> = to_store
            .iter()
            .map(|(source, m)| KeptValue {
                source,
                key: m.key.as_deref(),
                value: &m.payload,
            })
            .collect();
        store::dead_letters::keep_values(&self.db, &kept).await?;
        let mut acks = Vec::with_capacity(indexes.len());
        for &i in indexes {
            if let Item::Bad(e) = &items[i] {
                let m = self.dead_letter_message(&batch[i], e, strip_now(i));
                acks.push((i, self.producer.enqueue(m).await));
            }
        }
        let mut failed = 0;
        for (i, ack) in acks {
            match ack.delivered().await {
                Delivery::Acked => {}
                Delivery::Failed => failed += 1,
                Delivery::TooLarge => {
                    failed += 1;
                    if let Ok(mut s) = stripped.lock() {
                        if !s.contains(&i) {
                            s.push(i);
                        }
                    }
                }
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} dead letter(s) were not acknowledged by the broker");
        }
        Ok(())
    }

    /// Sends outbox entries and waits for every acknowledgement.
    async fn send_outbox(&self, entries: &[OutboxEntry]) -> anyhow::Result<()> {
        self.producer
            .publish_all(entries.iter().map(outbox_message).collect())
            .await
    }
}
