//! Dead letters, in one place: a message of a batch that is bad (it broke
//! the contract, conflicts with what was processed, or Postgres refused
//! it) carries its [`Letter`] from the moment the batch is sent until the
//! broker acknowledged it. One the broker will not take (too large) goes
//! out with its headers and an empty value, its bytes kept in Postgres
//! (contract section 2). Each is counted and logged once, by reason code
//! and position, never by value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::plan::{self, Rejection};
use super::retry::{Retry, Step, Stopped};
use crate::kafka::{self, Ack, Delivery, Incoming, Outgoing, Producer};
use crate::metrics::Metrics;
use crate::store::{self, dead_letters::KeptValue};

/// A message of a written batch, and its dead letter if it is one.
pub(super) struct Settling {
    pub message: Incoming,
    pub dead: Option<Letter>,
}

/// A dead letter on its way to the dead-letter topic.
pub(super) struct Letter {
    why: Rejection,
    /// The first send's acknowledgement, until awaited.
    ack: Option<Ack>,
    delivered: AtomicBool,
    /// Sent with an empty value, the original kept in Postgres.
    stripped: AtomicBool,
}

/// The dead-letter topic and what sending to it needs.
pub(super) struct DeadLetters {
    pub topic: Arc<str>,
    pub producer: Producer,
    pub db: store::Db,
    pub metrics: Arc<Metrics>,
}

impl DeadLetters {
    /// The original key and value, unchanged, with the contract's headers;
    /// `stripped`: an empty value instead.
    fn message<'a>(&'a self, m: &'a Incoming, why: &Rejection, stripped: bool) -> Outgoing<'a> {
        let headers = kafka::dead_letter::headers(why.reason_code(), &why.to_string(), m, stripped);
        Outgoing {
            topic: &self.topic,
            key: m.key.as_deref(),
            payload: if stripped { &[] } else { &m.payload },
            headers,
        }
    }

    /// Hands `m`'s dead letter to the producer.
    pub(super) async fn send(&self, m: &Incoming, why: Rejection) -> Letter {
        let ack = self.producer.enqueue(self.message(m, &why, false)).await;
        Letter {
            why,
            ack: Some(ack),
            delivered: AtomicBool::new(false),
            stripped: AtomicBool::new(false),
        }
    }

    /// Waits until every dead letter of `batch` is acknowledged, sending
    /// again (with backoff) those that were not; then counts and logs each.
    pub(super) async fn settle(
        &self,
        retry: &Retry,
        batch: &mut [Settling],
    ) -> Result<(), Stopped> {
        for s in batch.iter_mut() {
            if let Some(l) = s.dead.as_mut() {
                if let Some(ack) = l.ack.take() {
                    l.record(ack.delivered().await);
                }
            }
        }
        let failed: Vec<(&Incoming, &Letter)> = batch
            .iter()
            .filter_map(|s| s.dead.as_ref().map(|l| (&s.message, l)))
            .filter(|(_, l)| !l.delivered.load(Ordering::Relaxed))
            .collect();
        if !failed.is_empty() {
            let failed = &failed;
            retry
                .run(Step::PublishDlq, || Box::pin(self.resend(failed)))
                .await?;
        }
        for s in batch.iter() {
            if let Some(l) = &s.dead {
                let m = &s.message;
                self.metrics.dead_lettered(l.why.reason_code());
                tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, reason = l.why.reason_code(), error = %l.why, "dead-lettered a bad event");
            }
        }
        Ok(())
    }

    /// Sends the dead letters not yet delivered again, the stripped ones
    /// with their value kept in Postgres first.
    async fn resend(&self, letters: &[(&Incoming, &Letter)]) -> anyhow::Result<()> {
        let pending: Vec<&(&Incoming, &Letter)> = letters
            .iter()
            .filter(|(_, l)| !l.delivered.load(Ordering::Relaxed))
            .collect();
        let sources: Vec<(store::Source, &Incoming)> = pending
            .iter()
            .filter(|(_, l)| l.stripped.load(Ordering::Relaxed))
            .map(|(m, _)| (plan::source(m), *m))
            .collect();
        let kept: Vec<KeptValue> = sources
            .iter()
            .map(|(source, m)| KeptValue {
                source,
                key: m.key.as_deref(),
                value: &m.payload,
            })
            .collect();
        store::dead_letters::keep_values(&self.db, &kept).await?;
        let mut acks = Vec::with_capacity(pending.len());
        for (m, l) in &pending {
            let out = self.message(m, &l.why, l.stripped.load(Ordering::Relaxed));
            acks.push((*l, self.producer.enqueue(out).await));
        }
        let mut failed = 0;
        for (l, ack) in acks {
            if !l.record(ack.delivered().await) {
                failed += 1;
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} dead letter(s) were not acknowledged by the broker");
        }
        Ok(())
    }
}

impl Letter {
    /// Notes how a send fared; true when delivered.
    fn record(&self, d: Delivery) -> bool {
        match d {
            Delivery::Acked => self.delivered.store(true, Ordering::Relaxed),
            Delivery::Failed => {}
            Delivery::TooLarge => self.stripped.store(true, Ordering::Relaxed),
        }
        d == Delivery::Acked
    }
}
