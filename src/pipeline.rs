//! The service: consume, decode, evaluate, persist, publish, then store the
//! offset. One task, batches in arrival order, so order per partition holds.
//!
//! Each batch runs in three steps, each retried with backoff until it
//! succeeds or the service stops: (1) one Postgres transaction records the
//! events, claim lines, voids, dead letters and the outbox; (2) the outbox
//! is published and marked; (3) bad messages go to the dead-letter topic.
//! Only then are the batch's offsets stored. A crash anywhere redelivers the
//! batch: step 1 sees the events as duplicates, and unpublished outbox rows
//! are sent at start-up.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::Instrument;

use crate::config::RunConfig;
use crate::domain::ledger::Outcome;
use crate::domain::{decode, ClaimLine, Encounter, EventError, JsonWriter, Rules, Status};
use crate::http::Health;
use crate::kafka::{self, ConsumerCtx, EventConsumer, Incoming, Outgoing};
use crate::metrics::Metrics;
use crate::store::{self, BatchWrite, DeadLetterRow, EventRow, OutboxEntry, Source};

/// Runs `claimline run` until `shutdown` resolves, then drains and returns.
pub async fn run(
    cfg: RunConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let listener = tokio::net::TcpListener::bind(cfg.metrics_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on CLAIMLINE_METRICS_ADDR {}",
                cfg.metrics_addr
            )
        })?;
    let app = crate::http::router(metrics.clone(), health.clone());
    let mut http_stop = stop_rx.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await;
    });

    let pool = store::connect_lazy(&cfg.database_url, cfg.db_pool_size)?;
    let producer = kafka::create_producer(&cfg)?;
    let consumer = kafka::create_consumer(
        &cfg,
        ConsumerCtx {
            assigned: health.assigned.clone(),
            metrics: metrics.clone(),
        },
    )?;
    spawn_health_probe(
        pool.clone(),
        producer.clone(),
        health.clone(),
        metrics.clone(),
        stop_rx.clone(),
    );

    let p = Pipeline {
        output_topic: cfg.output_topic.as_str().into(),
        review_topic: cfg.review_topic.as_str().into(),
        cfg,
        rules: Rules::builtin(),
        pool,
        producer,
        metrics,
        health,
        stop: stop_rx,
    };
    if p.retry("migrate", || Box::pin(store::migrate(&p.pool)))
        .await
        .is_none()
    {
        return Ok(());
    }
    tracing::info!("migrations applied");
    if p.cfg.create_topics {
        let topics = [
            &p.cfg.input_topic,
            &p.cfg.output_topic,
            &p.cfg.review_topic,
            &p.cfg.dlq_topic,
        ];
        let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
        let (cfg, topics) = (&p.cfg, &topics);
        let created = p
            .retry("create_topics", || {
                Box::pin(kafka::create_topics(cfg, topics, cfg.topic_partitions))
            })
            .await;
        if created.is_none() {
            return Ok(());
        }
    }
    // Lines committed before a crash but never acknowledged go out first.
    if p.retry("publish_outbox", || Box::pin(p.drain_outbox()))
        .await
        .is_none()
    {
        return Ok(());
    }
    consumer
        .subscribe(&[p.cfg.input_topic.as_str()])
        .context("Failed to subscribe to the input topic")?;
    tracing::info!(topic = %p.cfg.input_topic, group = %p.cfg.group_id, "consuming");

    p.consume(&consumer).await;

    // Drain: the last batch is done (or abandoned to redelivery); commit
    // what is stored and flush the producer, within the shutdown bound.
    let limit = Duration::from_secs(p.cfg.shutdown_timeout_secs);
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(e) => tracing::info!(error = %e, "final commit had nothing to commit or failed"),
    }
    let _ = p.producer.flush(limit.min(Duration::from_secs(10)));
    consumer.unsubscribe();
    tracing::info!("stopped");
    Ok(())
}

fn spawn_health_probe(
    pool: PgPool,
    producer: FutureProducer,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            let db = tokio::time::timeout(Duration::from_secs(2), store::ping(&pool))
                .await
                .unwrap_or(false);
            health.database.store(db, Ordering::Relaxed);
            let metadata = {
                let producer = producer.clone();
                tokio::task::spawn_blocking(move || {
                    producer
                        .client()
                        .fetch_metadata(None, Duration::from_secs(2))
                        .is_ok()
                })
                .await
                .unwrap_or(false)
            };
            health.producer.store(metadata, Ordering::Relaxed);
            metrics
                .producer_queue_depth
                .set(i64::from(kafka::producer_queue_len(&producer)));
            metrics
                .db_pool_connections
                .with_label_values(&["open"])
                .set(pool.size() as i64);
            metrics
                .db_pool_connections
                .with_label_values(&["idle"])
                .set(pool.num_idle() as i64);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}

type StepFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

struct Pipeline {
    cfg: RunConfig,
    /// The claim-line topics, shared by every outbox entry.
    output_topic: Arc<str>,
    review_topic: Arc<str>,
    rules: &'static Rules,
    pool: PgPool,
    producer: FutureProducer,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: watch::Receiver<bool>,
}

/// A decoded message of a batch.
enum Item {
    Good(Box<Encounter>),
    Bad(EventError),
}

impl Pipeline {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs `step` until it succeeds (`Some`) or the service is stopping
    /// (`None`), backing off from 100 ms to 5 s between tries.
    async fn retry<'a, T, F>(&self, name: &'static str, mut step: F) -> Option<T>
    where
        F: FnMut() -> StepFuture<'a, T>,
    {
        let mut backoff = Duration::from_millis(100);
        let mut failing_since: Option<Instant> = None;
        loop {
            match step().await {
                Ok(v) => return Some(v),
                Err(e) => {
                    self.metrics.retries.with_label_values(&[name]).inc();
                    if matches!(name, "migrate" | "write_batch" | "mark_published") {
                        self.health.database.store(false, Ordering::Relaxed);
                    } else if matches!(name, "publish_outbox" | "publish_dlq") {
                        self.health.producer.store(false, Ordering::Relaxed);
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    tracing::warn!(
                        step = name,
                        error = format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        failing_for_s = since.elapsed().as_secs(),
                        "step failed; retrying"
                    );
                }
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => {
                    // Stopping while a step fails: leave the batch to
                    // redelivery, after one grace period for a last try.
                    let grace = Duration::from_secs(self.cfg.shutdown_timeout_secs) / 2;
                    return tokio::time::timeout(grace, step()).await.ok().and_then(Result::ok);
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn consume(&self, consumer: &EventConsumer) {
        let mut stop = self.stop.clone();
        let linger = Duration::from_millis(self.cfg.batch_linger_ms);
        // The previous batch: committed, its messages sent, acks pending.
        // Its acknowledgements are awaited while the next batch is written.
        let mut in_flight: Option<Sent> = None;
        loop {
            let first = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                m = consumer.recv() => Some(m),
                // Nothing new: settle the batch in flight rather than wait.
                _ = tokio::time::sleep(linger), if in_flight.is_some() => None,
            };
            let first = match first {
                Some(Ok(m)) => Incoming::from_message(&m),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                None => {
                    let prev = in_flight.take().expect("guarded by the select");
                    if !self.settle(consumer, prev).await {
                        return;
                    }
                    continue;
                }
            };
            let batch = self.fill_batch(consumer, first, linger).await;
            let span = batch_span(&batch);
            let sent = self.write_and_send(batch).instrument(span.clone()).await;
            if let Some(prev) = in_flight.take() {
                if !self.settle(consumer, prev).instrument(span).await {
                    return;
                }
            }
            match sent {
                Some(sent) => in_flight = Some(sent),
                // Stopping with the batch unwritten: redelivered later.
                None => return,
            }
            if self.stopping() {
                break;
            }
        }
        if let Some(prev) = in_flight.take() {
            self.settle(consumer, prev).await;
        }
    }

    async fn fill_batch(
        &self,
        consumer: &EventConsumer,
        first: Incoming,
        linger: Duration,
    ) -> Vec<Incoming> {
        let max = self.cfg.batch_size as usize;
        let mut batch = Vec::with_capacity(max);
        batch.push(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(Incoming::from_message(&m)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        self.metrics.events_consumed.inc_by(batch.len() as u64);
        self.metrics.batch_size.observe(batch.len() as f64);
        batch
    }

    /// Step 1 (retried until it holds) and the start of steps 2 and 3: the
    /// batch's messages are handed to the producer, not yet acknowledged.
    /// `None` if the service is stopping before the batch was written.
    async fn write_and_send(&self, batch: Vec<Incoming>) -> Option<Sent> {
        let items: Vec<Item> = batch
            .iter()
            .map(|m| match decode(&m.payload) {
                Ok(e) => Item::Good(Box::new(e)),
                Err(e) => Item::Bad(e),
            })
            .collect();
        let write_started = Instant::now();
        let (outbox, outcomes) = {
            let (batch, items) = (&batch, &items);
            self.retry("write_batch", || Box::pin(self.write_batch(batch, items)))
                .await?
        };
        self.health.database.store(true, Ordering::Relaxed);
        self.metrics
            .db_batch_latency
            .observe(write_started.elapsed().as_secs_f64());
        for (outcome, n) in outcomes {
            self.metrics
                .events_processed
                .with_label_values(&[outcome.as_str()])
                .inc_by(n);
        }
        let mut outbox_acks = Vec::with_capacity(outbox.len());
        for e in &outbox {
            outbox_acks.push(kafka::enqueue(&self.producer, outbox_message(e)).await);
        }
        let dead: Vec<usize> = (0..batch.len())
            .filter(|&i| matches!(items[i], Item::Bad(_)))
            .collect();
        let mut dead_acks = Vec::with_capacity(dead.len());
        for &i in &dead {
            let Item::Bad(e) = &items[i] else {
                unreachable!()
            };
            dead_acks
                .push(kafka::enqueue(&self.producer, self.dead_letter_message(&batch[i], e)).await);
        }
        Some(Sent {
            batch,
            items,
            outbox,
            outbox_acks,
            dead,
            dead_acks,
        })
    }

    /// Steps 2 and 3 completed: every message acknowledged (those that were
    /// not are sent again, with backoff), the outbox rows removed, then the
    /// batch's offsets stored. False if abandoned because of shutdown.
    async fn settle(&self, consumer: &EventConsumer, sent: Sent) -> bool {
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
            if !kafka::acknowledged(ack).await {
                failed.push(e.clone());
            }
        }
        if !failed.is_empty() {
            let failed = &failed;
            self.health.producer.store(false, Ordering::Relaxed);
            let resent = self
                .retry("publish_outbox", || Box::pin(self.send_outbox(failed)))
                .await;
            if resent.is_none() {
                return false;
            }
        }
        if !outbox.is_empty() {
            let ids: Vec<i64> = outbox.iter().map(|e| e.id).collect();
            let ids = &ids;
            let marked = self
                .retry("mark_published", || {
                    Box::pin(store::mark_published(&self.pool, ids))
                })
                .await;
            if marked.is_none() {
                return false;
            }
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
            if !kafka::acknowledged(ack).await {
                failed.push(i);
            }
        }
        if !failed.is_empty() {
            let (failed, batch, items) = (&failed, &batch, &items);
            let resent = self
                .retry("publish_dlq", || {
                    Box::pin(async move {
                        let messages = failed
                            .iter()
                            .map(|&i| match &items[i] {
                                Item::Bad(e) => self.dead_letter_message(&batch[i], e),
                                Item::Good(_) => {
                                    unreachable!("only bad messages are dead-lettered")
                                }
                            })
                            .collect();
                        kafka::publish_all(&self.producer, messages).await
                    })
                })
                .await;
            if resent.is_none() {
                return false;
            }
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
        self.health.producer.store(true, Ordering::Relaxed);
        store_offsets(consumer, &batch);
        true
    }

    /// Step 1: one transaction for the whole batch.
    async fn write_batch(
        &self,
        batch: &[Incoming],
        items: &[Item],
    ) -> anyhow::Result<(Vec<OutboxEntry>, Vec<(Outcome, u64)>)> {
        let mut encounter_ids: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Good(e) => Some(&*e.encounter_id),
                Item::Bad(_) => None,
            })
            .collect();
        encounter_ids.sort_unstable();
        encounter_ids.dedup();
        let event_ids: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Good(e) => Some(&*e.event_id),
                Item::Bad(_) => None,
            })
            .collect();
        let (tx, mut ledger) = store::begin_batch(&self.pool, &encounter_ids, &event_ids).await?;
        let mut w = BatchWrite::default();
        let mut outcomes: BTreeMap<&'static str, (Outcome, u64)> = BTreeMap::new();
        for (m, item) in batch.iter().zip(items) {
            let source = Source {
                topic: m.topic.clone(),
                partition: m.partition,
                offset: m.offset,
            };
            let enc = match item {
                Item::Good(e) => e,
                Item::Bad(e) => {
                    w.dead_letters.push(DeadLetterRow {
                        source,
                        reason: e.reason_code(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let d = ledger.apply(enc, self.rules);
            outcomes
                .entry(d.outcome.as_str())
                .or_insert((d.outcome, 0))
                .1 += 1;
            if d.outcome == Outcome::Duplicate {
                continue;
            }
            w.events.push(EventRow {
                event_id: enc.event_id.clone(),
                encounter_id: enc.encounter_id.clone(),
                version: enc.version,
                event_type: enc.event_type.as_str(),
                outcome: d.outcome,
                lines_produced: d.lines.len(),
                lines_voided: d.voided.len(),
                occurred_at: enc.occurred_at.with_timezone(&chrono::Utc),
                source,
            });
            let mut json = JsonWriter::default();
            for line in d.voided.iter().chain(&d.lines) {
                w.outbox.push(self.outbox_entry(line, &mut json));
            }
            for v in d.voided {
                w.voids.push((v.claim_line_id, v.event_id));
            }
            w.new_lines.extend(d.lines);
        }
        store::commit_batch(tx, &mut w).await?;
        // Count billing metrics only once the transaction holds, one
        // update per label set and batch.
        let mut units: BTreeMap<&str, u64> = BTreeMap::new();
        let mut flags: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for l in &w.new_lines {
            *units.entry(l.code.as_str()).or_default() += u64::from(l.units);
            for f in &l.flags {
                *flags
                    .entry((f.code.as_str(), f.severity.as_str()))
                    .or_default() += 1;
            }
        }
        for (code, n) in units {
            self.metrics
                .units_billed
                .with_label_values(&[code])
                .inc_by(n);
        }
        for ((code, severity), n) in flags {
            self.metrics
                .flags_raised
                .with_label_values(&[code, severity])
                .inc_by(n);
        }
        Ok((w.outbox, outcomes.into_values().collect()))
    }

    fn outbox_entry(&self, line: &ClaimLine, json: &mut JsonWriter) -> OutboxEntry {
        let topic = match line.status {
            Status::NeedsReview => &self.review_topic,
            Status::Validated | Status::Void => &self.output_topic,
        };
        OutboxEntry {
            id: 0,
            claim_line_id: line.claim_line_id.clone(),
            status: line.status,
            topic: topic.clone(),
            key: line.encounter_id.clone(),
            payload: json.to_json(line),
        }
    }

    /// Sends outbox entries and waits for every acknowledgement.
    async fn send_outbox(&self, entries: &[OutboxEntry]) -> anyhow::Result<()> {
        kafka::publish_all(&self.producer, entries.iter().map(outbox_message).collect()).await
    }

    /// At start-up: whatever a crash left unacknowledged, sent and marked.
    async fn drain_outbox(&self) -> anyhow::Result<()> {
        loop {
            let entries = store::unpublished(&self.pool, 10).await?;
            if entries.is_empty() {
                return Ok(());
            }
            tracing::info!(
                lines = entries.len(),
                "publishing claim lines left unacknowledged"
            );
            self.send_outbox(&entries).await?;
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            store::mark_published(&self.pool, &ids).await?;
            for e in &entries {
                self.metrics
                    .claim_lines_published
                    .with_label_values(&[e.status.as_str()])
                    .inc();
            }
        }
    }

    /// The original key and value, unchanged, with the contract's headers.
    fn dead_letter_message<'a>(&'a self, m: &'a Incoming, e: &EventError) -> Outgoing<'a> {
        Outgoing {
            topic: &self.cfg.dlq_topic,
            key: m.key.as_deref(),
            payload: &m.payload,
            headers: Some(kafka::dlq_headers(e.reason_code(), &e.to_string(), m)),
        }
    }
}

/// A written batch whose messages were handed to the producer.
struct Sent {
    batch: Vec<Incoming>,
    items: Vec<Item>,
    outbox: Vec<OutboxEntry>,
    outbox_acks: Vec<Option<kafka::DeliveryFuture>>,
    /// Indexes of the bad messages in `batch`.
    dead: Vec<usize>,
    dead_acks: Vec<Option<kafka::DeliveryFuture>>,
}

fn outbox_message(e: &OutboxEntry) -> Outgoing<'_> {
    Outgoing {
        topic: &e.topic,
        key: Some(e.key.as_bytes()),
        payload: e.payload.as_bytes(),
        headers: None,
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

/// Stores, per partition, the offset after the batch's last message.
fn store_offsets(consumer: &EventConsumer, batch: &[Incoming]) {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for m in batch {
        let e = next.entry((m.topic.as_str(), m.partition)).or_insert(0);
        *e = (*e).max(m.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(error = %e, "bad offset");
        }
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // Partitions revoked meanwhile: the new owner redelivers, which is
        // harmless (idempotent by event_id).
        tracing::info!(error = %e, "could not store offsets");
    }
}
