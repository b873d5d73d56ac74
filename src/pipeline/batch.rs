//! The batch loop and the [`Pipeline`] it runs on: gather a batch, decode
//! it, have it written (write.rs; the next batch's write may overlap it,
//! order.rs), hand its messages to the producer, and settle the batches
//! sent, in order (settle.rs).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use super::dead_letter::DeadLetters;
use super::dead_letter::Settling;
use super::order::{Ahead, Order, Touches};
use super::plan::Topics;
use super::plan::{self, Item, Message};
use super::retry::Retry;
use super::retry::Stopped;
use super::rules_watch::CurrentRules;
use super::send_order::Unsettled;
use super::sweep::InFlight;
use crate::config::RunConfig;
use crate::http::Health;
use crate::kafka::Producer;
use crate::kafka::{EventConsumer, Incoming};
use crate::metrics::Metrics;
use crate::store::{self, OutboxEntry};

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

/// A committed batch whose messages are not yet handed to the producer.
pub(super) struct WrittenBatch {
    pub messages: Vec<Message>,
    pub outbox: Vec<OutboxEntry>,
}

/// A batch being written, on a task of its own, holding one of the
/// CLAIMLINE_BATCHES_IN_FLIGHT places until the publisher takes it.
struct Writing {
    task: tokio::task::JoinHandle<Result<WrittenBatch, Stopped>>,
    span: tracing::Span,
    _permit: tokio::sync::OwnedSemaphorePermit,
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

/// How far the settler got: the number of batches settled, in the order
/// they were sent, or that it gave up.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Settled {
    pub batches: u64,
    pub failed: bool,
}

/// A written batch whose messages were handed to the producer.
pub(super) struct Sent {
    /// One record per message, in order, with its dead letter if it is one.
    pub messages: Vec<Settling>,
    pub outbox: Vec<OutboxEntry>,
    pub outbox_acks: Vec<crate::kafka::Ack>,
}

impl Pipeline {
    /// The batch loop, until the service stops: a reader that gathers
    /// batches and has each written on a task of its own (up to
    /// CLAIMLINE_BATCHES_IN_FLIGHT at once, in order where they meet:
    /// [`super::order`]), and a publisher that sends them in arrival order
    /// while the batches sent are settled in that order. None waits for
    /// another's round trips.
    pub(super) async fn consume(self: &Arc<Self>, consumer: &EventConsumer) -> Ended {
        let depth = self.cfg.batches_in_flight.max(1) as usize;
        let (tx, rx) = tokio::sync::mpsc::channel(depth);
        let pending = Pending::default();
        let (_, ended) = tokio::join!(
            self.read(consumer, tx, depth, &pending),
            self.publish(consumer, rx, &pending)
        );
        ended
    }

    /// Gathers batches and starts their writes, until the service stops
    /// (or the publisher gave up).
    async fn read(
        self: &Arc<Self>,
        consumer: &EventConsumer,
        tx: tokio::sync::mpsc::Sender<Writing>,
        depth: usize,
        pending: &Pending,
    ) {
        let mut stop = self.stop.clone();
        let linger = Duration::from_millis(self.cfg.batch_linger_ms);
        let permits = Arc::new(tokio::sync::Semaphore::new(depth));
        // The batches that may still be writing, for the order of the next.
        let mut ahead: Vec<Ahead> = Vec::new();
        let progress = &self.health.progress;
        loop {
            let permit = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tx.closed() => break,
                p = permits.clone().acquire_owned() => p.expect("never closed"),
            };
            let first = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tx.closed() => break,
                m = consumer.recv() => m,
            };
            let first = match first {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            pending.arrived(progress);
            let batch = self.fill_batch(consumer, first, linger).await;
            let span = batch_span(&batch);
            // Decoding is CPU work: done in place of a blocking thread, so
            // the runtime's other tasks (HTTP probes, acks, the outbox
            // keeper) keep their worker threads.
            let max = usize::try_from(self.cfg.max_message_bytes).unwrap_or(usize::MAX);
            let messages = tokio::task::block_in_place(|| plan::decode_all(batch, max));
            ahead.retain(|a| !a.finished());
            let (order, next) = Order::after(&ahead, touches(&messages));
            ahead.push(next);
            let task = tokio::spawn(self.clone().write(messages, order).instrument(span.clone()));
            let w = Writing {
                task,
                span,
                _permit: permit,
            };
            if tx.send(w).await.is_err() {
                break;
            }
        }
    }

    /// Takes the written batches in arrival order and hands their messages
    /// to the producer, while the settler ([`Pipeline::settle_in_order`])
    /// settles the batches sent, in the same order. A batch that shares an
    /// encounter (a message key) with a batch not yet settled waits for
    /// that settle first: anything not acknowledged there is sent again
    /// before this batch's messages, so a void never overtakes the line it
    /// cancels. Other batches go out at once, without waiting on the
    /// acknowledgements of the batches before.
    async fn publish(
        &self,
        consumer: &EventConsumer,
        rx: tokio::sync::mpsc::Receiver<Writing>,
        pending: &Pending,
    ) -> Ended {
        let depth = self.cfg.batches_in_flight.max(1) as usize;
        let (sent_tx, sent_rx) = tokio::sync::mpsc::channel(depth);
        let settled = watch::Sender::new(Settled::default());
        let (sent, all_settled) = tokio::join!(
            self.send_in_order(rx, sent_tx, settled.subscribe()),
            self.settle_in_order(consumer, sent_rx, &settled, pending)
        );
        match (sent, all_settled) {
            (Ok(()), Ok(())) => Ended::Drained,
            _ => Ended::Abandoned,
        }
    }

    async fn send_in_order(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<Writing>,
        sent_tx: tokio::sync::mpsc::Sender<Sent>,
        mut settled: watch::Receiver<Settled>,
    ) -> Result<(), Stopped> {
        let mut unsettled = Unsettled::default();
        loop {
            let next = tokio::select! {
                w = rx.recv() => w,
                // A settle gave up: nothing more goes out.
                _ = settled.wait_for(|s| s.failed) => return Err(abandon(rx).await),
            };
            // The reader stopped (the service is stopping): what it started
            // was published.
            let Some(Writing {
                task,
                span,
                _permit,
            }) = next
            else {
                break;
            };
            let written = task.await;
            // Written: the reader may start another while this one is sent.
            drop(_permit);
            let w = match written {
                Ok(Ok(w)) => w,
                // Stopping with the batch unwritten: redelivered later.
                Ok(Err(Stopped)) => return Err(abandon(rx).await),
                Err(e) => {
                    tracing::error!(error = %e, "a batch's write ended without a result");
                    return Err(abandon(rx).await);
                }
            };
            let keys: HashSet<Arc<str>> = w.outbox.iter().map(|e| e.key.clone()).collect();
            let after = unsettled.follows(settled.borrow().batches, &keys);
            let state = settled
                .wait_for(|s| s.failed || s.batches >= after)
                .await
                .map(|s| *s);
            if !matches!(state, Ok(s) if !s.failed) {
                return Err(abandon(rx).await);
            }
            let sent = self.send(w).instrument(span).await;
            unsettled.sent(keys);
            if sent_tx.send(sent).await.is_err() {
                return Err(abandon(rx).await);
            }
        }
        Ok(())
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
}

/// The batches gathered and not yet settled, for the health's progress:
/// work waits from the first one's arrival; with none left, the service is
/// idle. One lock, so an arrival and the last settle cannot cross.
#[derive(Default)]
pub(super) struct Pending(Mutex<usize>);

impl Pending {
    fn arrived(&self, progress: &crate::http::Progress) {
        let mut n = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        progress.work_arrived();
    }

    pub(super) fn settled(&self, progress: &crate::http::Progress) {
        let mut n = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            progress.idle();
        }
    }
}

/// Work was abandoned: the batches still being written end first (none
/// outlives the loop); what they committed and did not send is the outbox
/// sweep's.
async fn abandon(mut rx: tokio::sync::mpsc::Receiver<Writing>) -> Stopped {
    rx.close();
    while let Some(w) = rx.recv().await {
        let _ = w.task.await;
    }
    Stopped
}

/// What a batch's events touch, for the order of batches written at once:
/// their encounters and patient-years (the locks they take) and event ids.
fn touches(messages: &[Message]) -> Touches {
    use chrono::Datelike;
    fn hash(v: impl Hash) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }
    let mut t = Touches::default();
    for m in messages {
        let Item::Good(e) = &m.item else { continue };
        t.keys.insert(hash(('e', &*e.encounter_id)));
        t.keys
            .insert(hash(('p', e.patient_id.as_str(), e.date_of_service.year())));
        t.events.insert(hash(&*e.event_id));
    }
    t
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
