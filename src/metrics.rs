//! Every metric name and label, in one place. Labels are bounded sets
//! (outcome, reason, status, code, flag, topic, partition): never a patient,
//! encounter, event or NPI value.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Messages read from the input topic.
    pub events_consumed: IntCounter,
    /// Events by outcome: processed, voided, stale, duplicate.
    pub events_processed: IntCounterVec,
    /// Messages dead-lettered, by reason.
    pub events_dead_lettered: IntCounterVec,
    /// Claim lines acknowledged by the broker, by status.
    pub claim_lines_published: IntCounterVec,
    /// Units on new claim lines, by code (catalogue codes; `other` for the rest).
    pub units_billed: IntCounterVec,
    /// Flags raised on new claim lines, by flag code.
    pub flags_raised: IntCounterVec,
    /// Broker timestamp of the event to the broker's ack of its lines.
    pub processing_latency: Histogram,
    /// One batch transaction, begin to commit.
    pub db_batch_latency: Histogram,
    pub batch_size: Histogram,
    /// Consumer lag per partition, from librdkafka statistics.
    pub consumer_lag: IntGaugeVec,
    pub producer_queue_depth: IntGauge,
    pub db_pool_connections: IntGaugeVec,
    /// Times a step failed and was retried, by step.
    pub retries: IntCounterVec,
    pub ready: IntGauge,
    /// Outbox rows not yet acknowledged, and the age of the oldest.
    pub outbox_rows: IntGauge,
    pub outbox_oldest_age: prometheus::Gauge,
    /// Times the running rule set was replaced by newly imported tables.
    pub rules_reloads: IntCounter,
    /// Imported CMS tables (files) in the running rule set.
    pub rule_tables: IntGauge,
}

impl Metrics {
    /// A fresh registry with every collector registered. No `Default`:
    /// nothing wants a metrics set implicitly.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let m = Metrics {
            events_consumed: IntCounter::new(
                "claimline_events_consumed_total",
                "Encounter messages read from the input topic",
            )
            .unwrap(),
            events_processed: IntCounterVec::new(
                Opts::new(
                    "claimline_events_processed_total",
                    "Encounter events handled, by outcome",
                ),
                &["outcome"],
            )
            .unwrap(),
            events_dead_lettered: IntCounterVec::new(
                Opts::new(
                    "claimline_events_dead_lettered_total",
                    "Messages sent to the dead-letter topic, by reason",
                ),
                &["reason"],
            )
            .unwrap(),
            claim_lines_published: IntCounterVec::new(
                Opts::new(
                    "claimline_claim_lines_published_total",
                    "Claim lines acknowledged by the broker, by status",
                ),
                &["status"],
            )
            .unwrap(),
            units_billed: IntCounterVec::new(
                Opts::new(
                    "claimline_units_billed_total",
                    "Units on new claim lines, by CPT/HCPCS code",
                ),
                &["code"],
            )
            .unwrap(),
            flags_raised: IntCounterVec::new(
                Opts::new(
                    "claimline_flags_raised_total",
                    "Flags raised on new claim lines, by flag code and severity",
                ),
                &["flag", "severity"],
            )
            .unwrap(),
            processing_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "claimline_processing_latency_seconds",
                    "From the event's broker timestamp to the acknowledgement of its claim lines",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
            )
            .unwrap(),
            db_batch_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "claimline_db_batch_duration_seconds",
                    "One batch transaction, begin to commit",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )
            .unwrap(),
            batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "claimline_batch_size_events",
                    "Messages per processed batch",
                )
                // Up to the largest CLAIMLINE_BATCH_SIZE (default 2,000).
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0,
                    10000.0,
                ]),
            )
            .unwrap(),
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "claimline_consumer_lag_messages",
                    "Messages behind the partition's high watermark",
                ),
                &["topic", "partition"],
            )
            .unwrap(),
            producer_queue_depth: IntGauge::new(
                "claimline_producer_queue_messages",
                "Messages waiting in the producer's queue",
            )
            .unwrap(),
            db_pool_connections: IntGaugeVec::new(
                Opts::new(
                    "claimline_db_pool_connections",
                    "Postgres pool connections, by state",
                ),
                &["state"],
            )
            .unwrap(),
            retries: IntCounterVec::new(
                Opts::new(
                    "claimline_retries_total",
                    "Failed steps retried with backoff, by step",
                ),
                &["step"],
            )
            .unwrap(),
            ready: IntGauge::new("claimline_ready", "1 when /readyz answers 200").unwrap(),
            outbox_rows: IntGauge::new(
                "claimline_outbox_rows",
                "Outbox rows (batches of claim-line messages) not yet acknowledged by the broker",
            )
            .unwrap(),
            outbox_oldest_age: prometheus::Gauge::new(
                "claimline_outbox_oldest_age_seconds",
                "Age of the oldest unacknowledged outbox row (0 when empty)",
            )
            .unwrap(),
            rules_reloads: IntCounter::new(
                "claimline_rules_reloads_total",
                "Times newly imported CMS rule tables were picked up without a restart",
            )
            .unwrap(),
            rule_tables: IntGauge::new(
                "claimline_rule_tables",
                "Imported CMS rule tables (files) in the running rule set",
            )
            .unwrap(),
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new("claimline_build_info", "Build of the running claimline"),
            &["version", "rules_version"],
        )
        .unwrap();
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), crate::domain::RULES_VERSION])
            .set(1);
        let r = &m.registry;
        r.register(Box::new(build)).unwrap();
        r.register(Box::new(m.events_consumed.clone())).unwrap();
        r.register(Box::new(m.events_processed.clone())).unwrap();
        r.register(Box::new(m.events_dead_lettered.clone()))
            .unwrap();
        r.register(Box::new(m.claim_lines_published.clone()))
            .unwrap();
        r.register(Box::new(m.units_billed.clone())).unwrap();
        r.register(Box::new(m.flags_raised.clone())).unwrap();
        r.register(Box::new(m.processing_latency.clone())).unwrap();
        r.register(Box::new(m.db_batch_latency.clone())).unwrap();
        r.register(Box::new(m.batch_size.clone())).unwrap();
        r.register(Box::new(m.consumer_lag.clone())).unwrap();
        r.register(Box::new(m.producer_queue_depth.clone()))
            .unwrap();
        r.register(Box::new(m.db_pool_connections.clone())).unwrap();
        r.register(Box::new(m.retries.clone())).unwrap();
        r.register(Box::new(m.ready.clone())).unwrap();
        r.register(Box::new(m.outbox_rows.clone())).unwrap();
        r.register(Box::new(m.outbox_oldest_age.clone())).unwrap();
        r.register(Box::new(m.rules_reloads.clone())).unwrap();
        r.register(Box::new(m.rule_tables.clone())).unwrap();
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .unwrap();
        // Zero-initialise the bounded label sets so rates work from the start.
        for o in ["processed", "voided", "stale", "duplicate"] {
            m.events_processed.with_label_values(&[o]);
        }
        for r in [
            "invalid_json",
            "schema_violation",
            "too_large",
            "rejected_by_storage",
            "version_conflict",
            "event_id_conflict",
        ] {
            m.events_dead_lettered.with_label_values(&[r]);
        }
        for s in ["validated", "needs_review", "void"] {
            m.claim_lines_published.with_label_values(&[s]);
        }
        m
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}
