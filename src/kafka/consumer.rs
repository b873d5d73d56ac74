//! The group consumer: at-least-once, offsets stored by hand after the work
//! is durable and committed by librdkafka on a timer, and synchronously on
//! partition revoke and shutdown.
//!
//! A partition with a committed offset is fetched from the log start, and
//! the messages below the committed offset are skipped here (`Floors`).
//! Tansu 0.6.0 answers a fetch at an offset inside a stored record batch
//! (a producer's batch: hundreds of messages) with the first batch that
//! starts at or after it, or with nothing when none does: resuming at a
//! committed offset inside a batch would skip the rest of that batch (loss)
//! or stall the partition until more is produced. The log start is always a
//! batch's first offset. The cost: a (re)assigned partition's retained log
//! is read again, and dropped here, before its unprocessed part. Tansu
//! fixed the fetch upstream after 0.6.0 (commit 87db6ea, v0.7.0-pre.1);
//! this can go once the broker is a release with that fix.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::config::config_error;
use super::{Incoming, KafkaArgs};
use crate::metrics::Metrics;

/// What the consumer reports to the rest of the service: group membership
/// for /readyz, lag from statistics.
pub struct ConsumerCtx {
    pub in_group: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

/// Per assigned partition fetched from the log start: the committed offset,
/// below which messages are skipped. An entry goes once a message at or
/// past it arrives.
type Floors = Mutex<HashMap<(String, i32), i64>>;

/// How long the rebalance callback waits for the committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// Consumer callbacks: commit stored offsets before partitions are taken
/// away, resume assigned partitions from the log start (module doc).
struct Ctx {
    outer: ConsumerCtx,
    floors: Floors,
    /// `CLAIMLINE_RESUME_FROM_LOG_START`: the workaround is on.
    from_log_start: bool,
}

impl ClientContext for Ctx {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.outer
                        .metrics
                        .consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl Ctx {
    /// Points the partitions of `tpl` that have a committed offset at the
    /// log start and records that offset as their floor. When the committed
    /// offsets cannot be read, every partition starts at the log start with
    /// no floor: all is redelivered, which is harmless (idempotent by
    /// event_id), never skipped.
    fn start_at_log_start(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let committed = consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT);
        let mut floors = self.floors.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rewound = 0;
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        for (topic, partition) in parts {
            let floor = match &committed {
                Ok(c) => match c.find_partition(&topic, partition).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) if o > 0 => Some(o),
                    // Nothing committed: auto.offset.reset (earliest) applies.
                    _ => continue,
                },
                Err(_) => None,
            };
            if let Err(e) = tpl.set_partition_offset(&topic, partition, Offset::Beginning) {
                tracing::warn!(error = %e, "could not set the start offset");
                continue;
            }
            rewound += 1;
            match floor {
                Some(o) => floors.insert((topic, partition), o),
                None => floors.remove(&(topic, partition)),
            };
        }
        match committed {
            Ok(_) => tracing::info!(
                partitions = rewound,
                "partitions with a committed offset fetched from the log start"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "committed offsets unreadable: partitions fetched from the log start, all redelivered"
            ),
        }
    }

    /// Whether a message lies below its partition's floor (to be skipped).
    fn below_floor(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let mut floors = self.floors.lock().unwrap_or_else(PoisonError::into_inner);
        if floors.is_empty() {
            return false;
        }
        let key = (topic.to_owned(), partition);
        match floors.get(&key) {
            Some(&floor) if offset < floor => true,
            Some(_) => {
                floors.remove(&key);
                false
            }
            None => false,
        }
    }
}

impl ConsumerContext for Ctx {
    /// rdkafka's own rebalance, with the assigned partitions' start offsets
    /// chosen by `start_at_log_start` first.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign && self.from_log_start {
            self.start_at_log_start(consumer, tpl);
        }
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            _ => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let done = match (assign, cooperative) {
            (true, true) => consumer.incremental_assign(tpl),
            (true, false) => consumer.assign(tpl),
            (false, true) => consumer.incremental_unassign(tpl),
            (false, false) => consumer.unassign(),
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "applying the rebalance failed");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            // Batches run inside the poll loop, so all stored offsets are final here.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(error = %e, "commit on partition revoke failed"),
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // In the group, with or without partitions: an idle replica
                // beyond the partition count is ready (contract section 5).
                self.outer.in_group.store(true, Ordering::Relaxed);
                tracing::info!(partitions = tpl.count(), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked");
                let mut floors = self.floors.lock().unwrap_or_else(PoisonError::into_inner);
                for e in tpl.elements() {
                    floors.remove(&(e.topic().to_owned(), e.partition()));
                }
                self.outer.metrics.forget_consumer_lag();
            }
            Rebalance::Error(e) => {
                self.outer.in_group.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "rebalance error")
            }
        }
    }
}

/// The service's consumer of encounter events.
pub struct EventConsumer {
    inner: StreamConsumer<Ctx>,
    /// The static membership id in effect, if any.
    group_instance_id: Option<String>,
}

/// The consumer's settings over `c` (the `KAFKA_*` ones): users may
/// override the tuning ones; never the offset handling that at-least-once
/// depends on.
fn set_defaults(c: &mut rdkafka::config::ClientConfig, group_id: &str) {
    for (k, v) in [
        ("group.id", group_id),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", "5000"),
        // Prefetch up to 4 MiB (librdkafka's default is 64 MiB), and
        // fetch again 20 ms after the queue was full rather than 1 s
        // (librdkafka's fetch.queue.backoff.ms): with the 1 s backoff a
        // 4 MiB queue runs dry between fetches (bench: 4,206 events/s
        // steady, the machine 64% busy), so 16 MiB was needed. With 20 ms
        // and the batch connections' kept write buffers (store/batch.rs),
        // run in turn with 16 MiB and 1 s: 15,855-16,824 steady against
        // 15,097-15,711, peak RSS 93-97 MiB against 107-110.
        ("queued.max.messages.kbytes", "4096"),
        ("fetch.queue.backoff.ms", "20"),
        // Tansu 0.6.0 holds a fetch with nothing new for the whole
        // fetch.wait.max.ms (librdkafka's default 500 ms) even once data
        // arrives, so an event waits up to that long: p99 event to claim
        // line at 1,000 events/s 570 ms with 500, ~150 ms with 50 (bench).
        ("fetch.wait.max.ms", "50"),
    ] {
        if c.get(k).is_none() || matches!(k, "enable.auto.offset.store" | "group.id") {
            c.set(k, v);
        }
    }
}

impl EventConsumer {
    /// `instance_id`: `CLAIMLINE_INSTANCE_ID`, the consumer's
    /// `group.instance.id`; `KAFKA_GROUP_INSTANCE_ID` may set it instead,
    /// not as well.
    ///
    /// `from_log_start`: resume each assigned partition from the log start
    /// and skip below its committed offset (the Tansu 0.6.0 workaround in
    /// the module doc), instead of fetching at the committed offset.
    pub fn create(
        args: &KafkaArgs,
        group_id: &str,
        instance_id: Option<&str>,
        from_log_start: bool,
        ctx: ConsumerCtx,
    ) -> anyhow::Result<Self> {
        let mut c = args.client_config()?;
        if let Some(id) = instance_id {
            anyhow::ensure!(
                c.get("group.instance.id").is_none(),
                "CLAIMLINE_INSTANCE_ID and KAFKA_GROUP_INSTANCE_ID are both set: set one"
            );
            c.set("group.instance.id", id);
        }
        let group_instance_id = c.get("group.instance.id").map(str::to_owned);
        set_defaults(&mut c, group_id);
        let ctx = Ctx {
            outer: ctx,
            floors: Floors::default(),
            from_log_start,
        };
        let inner = c.create_with_context(ctx).map_err(config_error)?;
        Ok(EventConsumer {
            inner,
            group_instance_id,
        })
    }

    /// The static membership id in effect (`group.instance.id`), if any.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }

    pub fn subscribe(&self, topic: &str) -> anyhow::Result<()> {
        self.inner
            .subscribe(&[topic])
            .context("Failed to subscribe to the input topic")
    }

    /// The next message, owned (none below its partition's floor).
    pub async fn recv(&self) -> Result<Incoming, KafkaError> {
        let m = loop {
            let m = self.inner.recv().await?;
            if !self
                .inner
                .context()
                .below_floor(m.topic(), m.partition(), m.offset())
            {
                break m;
            }
        };
        Ok(Incoming {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().into(),
            timestamp_ms: m.timestamp().to_millis(),
        })
    }

    /// Stores, per partition, the offset after the last of `done`.
    pub fn store_offsets<'a>(&self, done: impl IntoIterator<Item = &'a Incoming>) {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in done {
            let e = next.entry((m.topic.as_str(), m.partition)).or_insert(0);
            *e = (*e).max(m.offset + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(error = %e, "bad offset");
            }
        }
        if let Err(e) = self.inner.store_offsets(&tpl) {
            // Partitions revoked meanwhile: the new owner redelivers, which is
            // harmless (idempotent by event_id).
            tracing::info!(error = %e, "could not store offsets");
        }
    }

    /// Commits the stored offsets synchronously, then leaves the group.
    pub fn commit_and_leave(&self) {
        match self.inner.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(e) => tracing::info!(error = %e, "final commit had nothing to commit or failed"),
        }
        self.inner.unsubscribe();
    }
}

/// A message as the `read` and `dlq replay` tools see it.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub payload: Vec<u8>,
}

/// When a reader gives up: `idle` after the last message, but not before
/// `FIRST_MESSAGE_GRACE` when none has come yet (joining the group and the
/// first fetch take seconds on a busy broker).
pub struct IdleClock {
    idle: std::time::Duration,
    started: std::time::Instant,
    last: Option<std::time::Instant>,
}

const FIRST_MESSAGE_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

impl IdleClock {
    pub fn new(idle: std::time::Duration) -> Self {
        IdleClock {
            idle,
            started: std::time::Instant::now(),
            last: None,
        }
    }

    pub fn message(&mut self) {
        self.last = Some(std::time::Instant::now());
    }

    pub fn expired(&self) -> bool {
        match self.last {
            Some(last) => last.elapsed() >= self.idle,
            None => self.started.elapsed() >= self.idle.max(FIRST_MESSAGE_GRACE),
        }
    }
}

/// A group-less reader of one topic from the beginning (the `read` tool).
pub struct TopicReader {
    inner: rdkafka::consumer::BaseConsumer,
}

impl TopicReader {
    pub fn create(args: &KafkaArgs, topic: &str) -> anyhow::Result<Self> {
        let mut c = args.client_config()?;
        c.set("group.id", format!("claimline-read-{}", std::process::id()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        let inner: rdkafka::consumer::BaseConsumer = c.create().map_err(config_error)?;
        inner.subscribe(&[topic]).context("Failed to subscribe")?;
        Ok(TopicReader { inner })
    }

    /// The next message within `timeout`, if one came.
    pub fn poll(&self, timeout: std::time::Duration) -> Option<Record> {
        use rdkafka::message::Headers;
        match self.inner.poll(timeout)? {
            Ok(m) => Some(Record {
                partition: m.partition(),
                offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
                payload: m.payload().unwrap_or_default().into(),
            }),
            Err(e) => {
                tracing::debug!(error = %e, "read");
                None
            }
        }
    }
}

impl Record {
    /// The value of header `key`, as text.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
