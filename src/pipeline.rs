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

use std::collections::{BTreeMap, HashSet};
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

use crate::config::RunConfig;
use crate::domain::ledger::Outcome;
use crate::domain::{decode, ClaimLine, Encounter, EventError, Rules, Status};
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
                    if matches!(name, "migrate" | "write_batch") {
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
        let max = self.cfg.batch_size as usize;
        let linger = Duration::from_millis(self.cfg.batch_linger_ms);
        loop {
            let first = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                m = consumer.recv() => m,
            };
            let mut batch = Vec::with_capacity(max);
            match first {
                Ok(m) => batch.push(Incoming::from_message(&m)),
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
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
            let span = batch_span(&batch);
            let done = {
                let _enter = span.enter();
                self.process(&batch).await
            };
            if done {
                store_offsets(consumer, &batch);
            } else {
                // Stopping with the batch unfinished: its offsets stay
                // unstored and it is redelivered.
                return;
            }
            if self.stopping() {
                return;
            }
        }
    }

    /// Processes one batch; false if it was abandoned because of shutdown.
    async fn process(&self, batch: &[Incoming]) -> bool {
        let items: Vec<Item> = batch
            .iter()
            .map(|m| match decode(&m.payload) {
                Ok(e) => Item::Good(Box::new(e)),
                Err(e) => Item::Bad(e),
            })
            .collect();

        let write_started = Instant::now();
        let items = &items;
        let Some((outbox, outcomes)) = self
            .retry("write_batch", || Box::pin(self.write_batch(batch, items)))
            .await
        else {
            return false;
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

        if !outbox.is_empty() {
            let outbox = &outbox;
            if self
                .retry("publish_outbox", || Box::pin(self.publish_outbox(outbox)))
                .await
                .is_none()
            {
                return false;
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            for (m, item) in batch.iter().zip(items) {
                if let (Item::Good(_), Some(ts)) = (item, m.timestamp_ms) {
                    self.metrics
                        .processing_latency
                        .observe((now_ms - ts).max(0) as f64 / 1000.0);
                }
            }
        }

        let bad: Vec<(&Incoming, &EventError)> = batch
            .iter()
            .zip(items)
            .filter_map(|(m, i)| match i {
                Item::Bad(e) => Some((m, e)),
                Item::Good(_) => None,
            })
            .collect();
        if !bad.is_empty() {
            let bad = &bad;
            if self
                .retry("publish_dlq", || Box::pin(self.publish_dead_letters(bad)))
                .await
                .is_none()
            {
                return false;
            }
            for (m, e) in bad {
                self.metrics
                    .events_dead_lettered
                    .with_label_values(&[e.reason_code()])
                    .inc();
                tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, reason = e.reason_code(), error = %e, "dead-lettered a bad event");
            }
        }
        self.health.producer.store(true, Ordering::Relaxed);
        true
    }

    /// Step 1: one transaction for the whole batch.
    async fn write_batch(
        &self,
        batch: &[Incoming],
        items: &[Item],
    ) -> anyhow::Result<(Vec<OutboxEntry>, Vec<(Outcome, u64)>)> {
        let mut encounter_ids: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Good(e) => Some(e.encounter_id.clone()),
                Item::Bad(_) => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        encounter_ids.sort();
        let event_ids: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Good(e) => Some(e.event_id.clone()),
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
            if d.outcome != Outcome::Stale {
                w.versions.insert(enc.encounter_id.clone(), enc.version);
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
            for line in d.voided.iter().chain(&d.lines) {
                w.outbox.push(self.outbox_entry(line)?);
            }
            for v in d.voided {
                w.voids.push((v.claim_line_id, v.event_id));
            }
            w.new_lines.extend(d.lines);
        }
        let new_lines: Vec<ClaimLine> = w.new_lines.clone();
        let outbox = store::commit_batch(tx, w).await?;
        // Count billing metrics only once the transaction holds.
        for l in &new_lines {
            self.metrics
                .units_billed
                .with_label_values(&[l.code.as_str()])
                .inc_by(u64::from(l.units));
            for f in &l.flags {
                let severity = serde_json::to_value(f.severity).ok();
                let severity = severity
                    .as_ref()
                    .and_then(|s| s.as_str())
                    .unwrap_or("unknown");
                self.metrics
                    .flags_raised
                    .with_label_values(&[f.code.as_str(), severity])
                    .inc();
            }
        }
        Ok((outbox, outcomes.into_values().collect()))
    }

    fn outbox_entry(&self, line: &ClaimLine) -> anyhow::Result<OutboxEntry> {
        let topic = match line.status {
            Status::NeedsReview => &self.cfg.review_topic,
            Status::Validated | Status::Void => &self.cfg.output_topic,
        };
        Ok(OutboxEntry {
            id: 0,
            claim_line_id: line.claim_line_id.clone(),
            status: line.status.as_str().to_owned(),
            topic: topic.clone(),
            key: line.encounter_id.clone(),
            payload: serde_json::to_string(line).context("Failed to encode a claim line")?,
        })
    }

    /// Step 2: publish and mark.
    async fn publish_outbox(&self, entries: &[OutboxEntry]) -> anyhow::Result<()> {
        let messages = entries
            .iter()
            .map(|e| Outgoing {
                topic: &e.topic,
                key: Some(e.key.as_bytes()),
                payload: e.payload.as_bytes(),
                headers: None,
            })
            .collect();
        kafka::publish_all(&self.producer, messages).await?;
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        store::mark_published(&self.pool, &ids).await?;
        for e in entries {
            self.metrics
                .claim_lines_published
                .with_label_values(&[e.status.as_str()])
                .inc();
        }
        Ok(())
    }

    async fn drain_outbox(&self) -> anyhow::Result<()> {
        loop {
            let entries = store::unpublished(&self.pool, 1000).await?;
            if entries.is_empty() {
                return Ok(());
            }
            tracing::info!(
                lines = entries.len(),
                "publishing claim lines left unacknowledged"
            );
            self.publish_outbox(&entries).await?;
        }
    }

    /// Step 3: the original key and value, unchanged, with the contract's headers.
    async fn publish_dead_letters(&self, bad: &[(&Incoming, &EventError)]) -> anyhow::Result<()> {
        let messages = bad
            .iter()
            .map(|(m, e)| Outgoing {
                topic: &self.cfg.dlq_topic,
                key: m.key.as_deref(),
                payload: &m.payload,
                headers: Some(kafka::dlq_headers(e.reason_code(), &e.to_string(), m)),
            })
            .collect();
        kafka::publish_all(&self.producer, messages).await
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
