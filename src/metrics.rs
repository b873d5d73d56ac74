//! Every metric, declared once: name, help, labels and registration
//! together in [`Metrics::new`], and updated through the typed methods
//! below (nothing else reaches into the collectors). Labels are bounded
//! sets (outcome, reason, status, code, flag, topic, partition, step,
//! state): never a patient, encounter, event or NPI value.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    events_consumed: IntCounter,
    events_processed: IntCounterVec,
    events_dead_lettered: IntCounterVec,
    claim_lines_published: IntCounterVec,
    units_billed: IntCounterVec,
    flags_raised: IntCounterVec,
    processing_latency: Histogram,
    db_batch_latency: Histogram,
    batch_size: Histogram,
    consumer_lag: IntGaugeVec,
    producer_queue_depth: IntGauge,
    db_pool_connections: IntGaugeVec,
    retries: IntCounterVec,
    ready: IntGauge,
    outbox_rows: IntGauge,
    outbox_oldest_age: Gauge,
    rules_reloads: IntCounter,
    rule_tables: IntGauge,
}

/// Registers `c` in `r` and hands it back.
fn registered<C: Collector + Clone + 'static>(r: &Registry, c: prometheus::Result<C>) -> C {
    let c = c.expect("a metric's name, help and labels are valid");
    r.register(Box::new(c.clone()))
        .expect("each metric is registered once");
    c
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
}

impl Metrics {
    /// A fresh registry with every collector registered. No `Default`:
    /// nothing wants a metrics set implicitly.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build = registered(
            &r,
            IntGaugeVec::new(
                opts("claimline_build_info", "Build of the running claimline"),
                &["version", "rules_version"],
            ),
        );
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), crate::domain::RULES_VERSION])
            .set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector is registered once");
        let m = Metrics {
            events_consumed: registered(
                &r,
                IntCounter::with_opts(opts(
                    "claimline_events_consumed_total",
                    "Encounter messages read from the input topic",
                )),
            ),
            events_processed: registered(
                &r,
                IntCounterVec::new(
                    opts(
                        "claimline_events_processed_total",
                        "Encounter events handled, by outcome",
                    ),
                    &["outcome"],
                ),
            ),
            events_dead_lettered: registered(
                &r,
                IntCounterVec::new(
                    opts(
                        "claimline_events_dead_lettered_total",
                        "Messages sent to the dead-letter topic, by reason",
                    ),
                    &["reason"],
                ),
            ),
            claim_lines_published: registered(
                &r,
                IntCounterVec::new(
                    opts(
                        "claimline_claim_lines_published_total",
                        "Claim lines acknowledged by the broker, by status",
                    ),
                    &["status"],
                ),
            ),
            units_billed: registered(
                &r,
                IntCounterVec::new(
                    opts(
                        "claimline_units_billed_total",
                        "Units on new claim lines, by CPT/HCPCS code",
                    ),
                    &["code"],
                ),
            ),
            flags_raised: registered(
                &r,
                IntCounterVec::new(
                    opts(
                        "claimline_flags_raised_total",
                        "Flags raised on new claim lines, by flag code and severity",
                    ),
                    &["flag", "severity"],
                ),
            ),
            processing_latency: registered(
                &r,
                histogram(
                    "claimline_processing_latency_seconds",
                    "From the event's broker timestamp to the acknowledgement of its claim lines",
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ],
                ),
            ),
            db_batch_latency: registered(
                &r,
                histogram(
                    "claimline_db_batch_duration_seconds",
                    "One batch's write, begin to commit: retries, and waits for an earlier batch it shares an encounter or patient-year with, included",
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                ),
            ),
            batch_size: registered(
                &r,
                histogram(
                    "claimline_batch_size_events",
                    "Messages per processed batch",
                    // Up to the largest CLAIMLINE_BATCH_SIZE (default 500).
                    &[
                        1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0,
                        5000.0, 10000.0,
                    ],
                ),
            ),
            consumer_lag: registered(
                &r,
                IntGaugeVec::new(
                    opts(
                        "claimline_consumer_lag_messages",
                        "Messages behind the partition's high watermark",
                    ),
                    &["topic", "partition"],
                ),
            ),
            producer_queue_depth: registered(
                &r,
                IntGauge::with_opts(opts(
                    "claimline_producer_queue_messages",
                    "Messages waiting in the producer's queue",
                )),
            ),
            db_pool_connections: registered(
                &r,
                IntGaugeVec::new(
                    opts(
                        "claimline_db_pool_connections",
                        "Postgres pool connections, by state",
                    ),
                    &["state"],
                ),
            ),
            retries: registered(
                &r,
                IntCounterVec::new(
                    opts(
                        "claimline_retries_total",
                        "Failed steps retried with backoff, by step",
                    ),
                    &["step"],
                ),
            ),
            ready: registered(
                &r,
                IntGauge::with_opts(opts("claimline_ready", "1 when /readyz answers 200")),
            ),
            outbox_rows: registered(
                &r,
                IntGauge::with_opts(opts(
                    "claimline_outbox_rows",
                    "Outbox rows (batches of claim-line messages) not yet acknowledged by the broker",
                )),
            ),
            outbox_oldest_age: registered(
                &r,
                Gauge::with_opts(opts(
                    "claimline_outbox_oldest_age_seconds",
                    "Age of the oldest unacknowledged outbox row (0 when empty)",
                )),
            ),
            rules_reloads: registered(
                &r,
                IntCounter::with_opts(opts(
                    "claimline_rules_reloads_total",
                    "Times newly imported CMS rule tables were picked up without a restart",
                )),
            ),
            rule_tables: registered(
                &r,
                IntGauge::with_opts(opts(
                    "claimline_rule_tables",
                    "Imported CMS rule tables (files) in the running rule set",
                )),
            ),
            registry: r,
        };
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

    /// A batch of `n` messages read from the input topic.
    pub fn batch_consumed(&self, n: usize) {
        self.events_consumed.inc_by(n as u64);
        self.batch_size.observe(n as f64);
    }

    /// One batch transaction took `seconds`.
    pub fn batch_written(&self, seconds: f64) {
        self.db_batch_latency.observe(seconds);
    }

    /// `n` events ended with `outcome` (processed, voided, stale, duplicate).
    pub fn events(&self, outcome: &str, n: u64) {
        self.events_processed
            .with_label_values(&[outcome])
            .inc_by(n);
    }

    /// A message went to the dead-letter topic for `reason`.
    pub fn dead_lettered(&self, reason: &str) {
        self.events_dead_lettered.with_label_values(&[reason]).inc();
    }

    /// The broker acknowledged a claim line of `status`.
    pub fn line_published(&self, status: &str) {
        self.claim_lines_published
            .with_label_values(&[status])
            .inc();
    }

    /// From an event's broker timestamp to the acknowledgement of its lines.
    pub fn processing_latency(&self, seconds: f64) {
        self.processing_latency.observe(seconds);
    }

    /// `n` units billed on new lines of `code` (a catalogue code or `other`).
    pub fn units_billed(&self, code: &str, n: u64) {
        self.units_billed.with_label_values(&[code]).inc_by(n);
    }

    /// `n` flags of `code` and `severity` raised on new lines.
    pub fn flags_raised(&self, code: &str, severity: &str, n: u64) {
        self.flags_raised
            .with_label_values(&[code, severity])
            .inc_by(n);
    }

    pub fn consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Partitions were revoked: their lag is no longer this instance's.
    pub fn forget_consumer_lag(&self) {
        self.consumer_lag.reset();
    }

    pub fn producer_queue(&self, messages: i32) {
        self.producer_queue_depth.set(i64::from(messages));
    }

    pub fn db_pool(&self, open: u32, idle: usize) {
        let set = |state: &str, n: i64| self.db_pool_connections.with_label_values(&[state]).set(n);
        set("open", i64::from(open));
        set("idle", idle as i64);
    }

    /// A step failed and is retried.
    pub fn retried(&self, step: &str) {
        self.retries.with_label_values(&[step]).inc();
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Unpublished outbox rows, and the age of the oldest in seconds.
    pub fn outbox_backlog(&self, rows: i64, oldest_secs: f64) {
        self.outbox_rows.set(rows);
        self.outbox_oldest_age.set(oldest_secs);
    }

    /// A rule set of `tables` imported tables is in force; `reload`: it
    /// replaced another without a restart.
    pub fn rules_loaded(&self, tables: usize, reload: bool) {
        self.rule_tables.set(tables as i64);
        if reload {
            self.rules_reloads.inc();
        }
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
