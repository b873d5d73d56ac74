//! The batch loop and the [`Pipeline`] it runs on: gather a batch, plan
//! and write it in one transaction, hand its messages to the producer, and
//! settle the batch before it (settle.rs) while this one is
//! written.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::dead_letter::DeadLetters;
use super::dead_letter::Settling;
use super::plan::Topics;
use super::plan::{self, Item, Message, Plan, Rejection};
use super::retry::Retry;
use super::retry::{Step, Stopped};
use super::rules_watch::CurrentRules;
use super::sweep::InFlight;
use crate::config::RunConfig;
use crate::domain::ledger::Outcome;
use crate::domain::ClaimLine;
use crate::http::Health;
use crate::kafka::Producer;
use crate::kafka::{EventConsumer, Incoming};
use crate::metrics::Metrics;
use crate::store::{self, OutboxEntry};
use std::sync::Arc;
use tokio::sync::watch;

/// What every part of the running pipeline shares.
pub(super) struct Pipeline {
    pub(super) cfg: RunConfig,
    /// This instance, as the owner of the outbox rows it writes.
    pub(super) owner: store::Owner,
    pub(super) in_flight: InFlight,
    /// The claim-line topics, shared by every outbox entry.
    pub(super) topics: Topics,
    /// The rule book in force (built-in data and imported CMS tables).
    pub(super) rules: Arc<CurrentRules>,
    pub(super) db: store::Db,
    pub(super) producer: Producer,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) stop: watch::Receiver<bool>,
    /// How every step of the pipeline is retried.
    pub(super) retry: Retry,
    pub(super) dead_letters: DeadLetters,
}

/// What one committed transaction produced.
struct Written {
    outbox: Vec<OutboxEntry>,
    outcomes: Vec<(Outcome, u64)>,
    /// One verdict per message of the part written, in order.
    verdicts: Vec<plan::Verdict>,
}

/// A committed batch whose messages are not yet handed to the producer.
struct WrittenBatch {
    messages: Vec<Message>,
    outbox: Vec<OutboxEntry>,
}

/// How the batch loop ended once the service was stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// Every batch taken was settled: its offsets are stored.
    Drained,
    /// A batch was left unsettled (redelivered to whoever takes the
    /// partitions).
    Abandoned,
}

/// A written batch whose messages were handed to the producer.
pub(super) struct Sent {
    /// One record per message, in order, with its dead letter if it is one.
    pub messages: Vec<Settling>,
    pub outbox: Vec<OutboxEntry>,
    pub outbox_acks: Vec<crate::kafka::Ack>,
}

impl Pipeline {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The batch loop, until the service stops.
    pub(super) async fn consume(&self, consumer: &EventConsumer) -> Ended {
        let mut stop = self.stop.clone();
        let linger = Duration::from_millis(self.cfg.batch_linger_ms);
        // The previous batch: committed, its messages sent, acks pending.
        // Its acknowledgements are awaited while the next batch is written.
        let mut in_flight: Option<Sent> = None;
        let progress = &self.health.progress;
        loop {
            if in_flight.is_none() {
                progress.idle();
            }
            let first = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                m = consumer.recv() => Some(m),
                // Nothing new: settle the batch in flight rather than wait.
                _ = tokio::time::sleep(linger), if in_flight.is_some() => None,
            };
            let first = match first {
                Some(Ok(m)) => {
                    progress.work_arrived();
                    m
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                None => {
                    let prev = in_flight.take().expect("guarded by the select");
                    if prev.settle(self, consumer).await.is_err() {
                        return Ended::Abandoned;
                    }
                    continue;
                }
            };
            let batch = self.fill_batch(consumer, first, linger).await;
            let span = batch_span(&batch);
            // This batch is written while the one before waits for its
            // acknowledgements; that one is settled (anything not
            // acknowledged sent again) before this one's messages are
            // enqueued, so a void never overtakes the line it cancels.
            let written = self.write(batch).instrument(span.clone()).await;
            if let Some(prev) = in_flight.take() {
                if prev
                    .settle(self, consumer)
                    .instrument(span.clone())
                    .await
                    .is_err()
                {
                    return Ended::Abandoned;
                }
            }
            match written {
                Ok(w) => in_flight = Some(self.send(w).instrument(span).await),
                // Stopping with the batch unwritten: redelivered later.
                Err(Stopped) => return Ended::Abandoned,
            }
            if self.stopping() {
                break;
            }
        }
        match in_flight.take() {
            Some(prev) => match prev.settle(self, consumer).await {
                Ok(()) => Ended::Drained,
                Err(Stopped) => Ended::Abandoned,
            },
            None => Ended::Drained,
        }
    }

    async fn fill_batch(
        &self,
        consumer: &EventConsumer,
        first: Incoming,
        linger: Duration,
    ) -> Vec<Incoming> {
        let max = self.cfg.batch_size as usize;
        let max_bytes = usize::try_from(self.cfg.batch_max_bytes).unwrap_or(usize::MAX);
        let mut bytes = first.payload.len();
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max && bytes < max_bytes {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => {
                    bytes += m.payload.len();
                    batch.push(m);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        self.metrics.batch_consumed(batch.len());
        batch
    }

    /// The batch decoded, planned and written (retried until it holds).
    async fn write(&self, batch: Vec<Incoming>) -> Result<WrittenBatch, Stopped> {
        // Decoding and planning are CPU work: done in place of a blocking
        // thread, so the runtime's other tasks (HTTP probes, acks, the
        // outbox keeper) keep their worker threads.
        let max = usize::try_from(self.cfg.max_message_bytes).unwrap_or(usize::MAX);
        let mut messages = tokio::task::block_in_place(|| plan::decode_all(batch, max));
        let write_started = Instant::now();
        let (outbox, outcomes) = self.write_isolating(&mut messages).await?;
        self.metrics
            .batch_written(write_started.elapsed().as_secs_f64());
        for (outcome, n) in outcomes {
            self.metrics.events(outcome.as_str(), n);
        }
        Ok(WrittenBatch { messages, outbox })
    }

    /// Hands a written batch's messages to the producer: its claim lines
    /// (in outbox order), then its dead letters.
    async fn send(&self, w: WrittenBatch) -> Sent {
        let WrittenBatch { messages, outbox } = w;
        let mut outbox_acks = Vec::with_capacity(outbox.len());
        for e in &outbox {
            outbox_acks.push(self.producer.enqueue(super::outbox_message(e)).await);
        }
        let mut settling = Vec::with_capacity(messages.len());
        for Message { incoming, item } in messages {
            let dead = match item {
                Item::Bad(why) => Some(self.dead_letters.send(&incoming, why).await),
                Item::Good(_) => None,
            };
            settling.push(Settling {
                message: incoming,
                dead,
            });
        }
        Sent {
            messages: settling,
            outbox,
            outbox_acks,
        }
    }

    /// Writes the batch; transient errors are retried, and when Postgres
    /// refuses the batch's content the batch is split in halves, in order,
    /// until the message that causes it is alone: it becomes a dead letter
    /// and the rest is written.
    async fn write_isolating(
        &self,
        messages: &mut [Message],
    ) -> Result<(Vec<OutboxEntry>, Vec<(Outcome, u64)>), Stopped> {
        let mut outbox = Vec::new();
        let mut outcomes: BTreeMap<&'static str, (Outcome, u64)> = BTreeMap::new();
        let mut pending = std::collections::VecDeque::new();
        pending.push_back(0..messages.len());
        while let Some(range) = pending.pop_front() {
            let written = {
                let part = &messages[range.clone()];
                self.retry
                    .run(Step::WriteBatch, || {
                        Box::pin(async move {
                            match self.write_batch(part).await {
                                Ok(done) => Ok(Ok(done)),
                                Err(e) => match store::refused_by_content(&e) {
                                    Some(sqlstate) => Ok(Err(sqlstate)),
                                    None => Err(e),
                                },
                            }
                        })
                    })
                    .await?
            };
            match written {
                Ok(done) => {
                    outbox.extend(done.outbox);
                    for (outcome, n) in done.outcomes {
                        outcomes.entry(outcome.as_str()).or_insert((outcome, 0)).1 += n;
                    }
                    for (m, verdict) in messages[range.clone()].iter_mut().zip(done.verdicts) {
                        if let plan::Verdict::Conflict(why) = verdict {
                            m.item = Item::Bad(why);
                        }
                    }
                }
                Err(sqlstate) => {
                    let good: Vec<usize> = range
                        .clone()
                        .filter(|&i| matches!(messages[i].item, Item::Good(_)))
                        .collect();
                    tracing::warn!(
                        sqlstate = %sqlstate,
                        messages = range.len(),
                        "Postgres refused part of a batch; isolating the message"
                    );
                    match good.as_slice() {
                        [] => {
                            // Only dead letters, and Postgres refuses even
                            // those: they still go to the dead-letter topic.
                            tracing::error!(sqlstate = %sqlstate, "dead-letter rows refused; not recorded in Postgres");
                        }
                        [one] => {
                            messages[*one].item = Item::Bad(Rejection::Storage { sqlstate });
                            pending.push_front(range);
                        }
                        _ => {
                            let mid = good[good.len() / 2];
                            pending.push_front(mid..range.end);
                            pending.push_front(range.start..mid);
                        }
                    }
                }
            }
        }
        Ok((outbox, outcomes.into_values().collect()))
    }

    /// One transaction for the whole batch: lock and load its encounters,
    /// plan, write, commit.
    async fn write_batch(&self, messages: &[Message]) -> anyhow::Result<Written> {
        let keys = plan::keys(messages);
        let (mut tx, mut ledger) = self.db.begin_batch(&keys, decode_stored).await?;
        // Unpublished lines of these encounters (and of the others on their
        // days, whose lines a later visit may reissue) go out before this
        // batch's voids and replacements (contract section 2).
        let mut outbox = tx
            .claim_outbox(&self.owner, &self.in_flight.snapshot())
            .await?;
        // Tables imported since the last batch apply from this one on, so
        // no instance reissues a day under older rules than another used.
        self.rules
            .refresh_to(tx.rules_fingerprint(), &self.db, &self.metrics)
            .await?;
        let rules = self.rules.get();
        let Plan {
            write: mut w,
            outcomes,
            verdicts,
        } = tokio::task::block_in_place(|| plan::plan(messages, &mut ledger, &rules, &self.topics));
        tx.commit(&mut w, &self.owner).await?;
        outbox.append(&mut w.outbox);
        self.in_flight.add(&outbox);
        // Count billing metrics only once the transaction holds.
        self.count_billing(&w.new_lines);
        Ok(Written {
            outbox,
            outcomes,
            verdicts,
        })
    }

    /// One metric update per label set and batch.
    fn count_billing(&self, lines: &[ClaimLine]) {
        let mut units: BTreeMap<&str, u64> = BTreeMap::new();
        let mut flags: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for l in lines {
            // A code outside the catalogue is `other`: a sender must not be
            // able to grow a series per invented code.
            let code = match crate::domain::Rules::builtin().catalogue.get_code(&l.code) {
                Some(_) => l.code.as_str(),
                None => "other",
            };
            *units.entry(code).or_default() += u64::from(l.units);
            for f in &l.flags {
                *flags
                    .entry((f.code.as_str(), f.severity.as_str()))
                    .or_default() += 1;
            }
        }
        for (code, n) in units {
            self.metrics.units_billed(code, n);
        }
        for ((code, severity), n) in flags {
            self.metrics.flags_raised(code, severity, n);
        }
    }
}

fn batch_span(batch: &[Incoming]) -> tracing::Span {
    let first = &batch[0];
    let last_offset = batch
        .iter()
        .filter(|m| m.partition == first.partition)
        .map(|m| m.offset)
        .max()
        .unwrap_or(first.offset);
    tracing::info_span!("batch", topic = %first.topic, partition = first.partition, first_offset = first.offset, last_offset, size = batch.len())
}

/// A stored payload decoded again (for the day's re-evaluation); one that
/// no longer decodes (a rule of the decoder tightened since) leaves that
/// encounter's lines as they are.
pub(crate) fn decode_stored(bytes: &[u8]) -> Option<crate::domain::Encounter> {
    crate::codec::decode(bytes).ok()
}
