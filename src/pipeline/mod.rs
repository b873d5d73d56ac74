//! The service: consume, decode, evaluate, persist, publish, then store the
//! offset. Batches in arrival order, so order per partition holds: up to
//! two are written at once, each in its place in the order (see [`order`]).
//!
//! - this file: start-up (HTTP, clients, migrations, topics)
//!   and the drain at shutdown;
//! - [`batch`]: the batch loop: gather, write, send;
//! - [`write`]: a batch's transaction, retried, split around a refused message;
//! - [`order`]: two batches written at once, committed in order;
//! - [`plan`]: the pure step: messages + ledger + rules -> rows, outbox,
//!   dead letters;
//! - [`send_order`]: a batch sent at once, or after the settle of one it
//!   shares an encounter with;
//! - [`settle`]: the batches sent settled in order: acknowledgements, outbox
//!   mark, dead letters, offsets;
//! - [`dead_letter`]: a bad message's dead letter, from send to acknowledgement;
//! - [`retry`]: typed steps retried with jittered backoff;
//! - [`probe`]: the background health probe behind /readyz;
//! - [`sweep`]: the outbox keeper (leases, lapsed rows, backlog gauges);
//! - [`rules_watch`]: the rule set in force, reloaded when CMS tables are imported.
//!
//! The flows the tools run, composed from the same parts:
//! - [`offline`]: `claimline evaluate`, the rules over JSON lines in memory;
//! - [`rules_admin`]: `claimline rules import | list`;
//! - [`reprocess`]: `claimline reprocess`, stored encounters re-evaluated
//!   under the rules in force now;
//! - [`replay`]: `claimline dlq replay`, dead letters back to the input topic.
//!
//! Each batch runs in three steps, each retried with backoff until it
//! succeeds or the service stops: (1) one Postgres transaction records the
//! events, claim lines, voids, dead letters and the outbox; (2) the outbox
//! is published and marked; (3) bad messages go to the dead-letter topic.
//! Only then are the batch's offsets stored. A crash anywhere redelivers the
//! batch: step 1 sees the events as duplicates, and the outbox rows the
//! crashed instance owned are published once their lease lapses.

mod batch;
mod dead_letter;
pub(crate) mod offline;
mod order;
pub(crate) mod plan;
mod probe;
pub(crate) mod replay;
pub(crate) mod reprocess;
pub(crate) mod retry;
pub(crate) mod rules_admin;
mod rules_watch;
mod send_order;
mod settle;
mod sweep;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::RunConfig;
use crate::http::Health;
use crate::kafka::{self, ConsumerCtx, EventConsumer, Outgoing, Producer};
use crate::metrics::Metrics;
use crate::store::{self, OutboxEntry};
use batch::{Ended, Pipeline};
use plan::Topics;
use retry::Step;

/// Runs `claimline run` until `shutdown` resolves, then drains and returns.
pub async fn run(
    cfg: RunConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // A bad payer policy file refuses to start, naming the problem.
    let base_rules = cfg.policy.rules()?;
    if cfg.policy.payer_policy.is_some() {
        tracing::info!(rules_version = %base_rules.version, "payer policy file loaded");
    }
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(Duration::from_secs(cfg.stall_timeout_secs)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    // Set when another process took this instance's id: the service stops
    // on its own, and exits non-zero.
    let lost_id = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_signal.send_replace(true);
    });

    let listener = tokio::net::TcpListener::bind(cfg.metrics_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on CLAIMLINE_METRICS_ADDR {}",
                cfg.metrics_addr
            )
        })?;
    crate::http::spawn(listener, metrics.clone(), health.clone(), stop_rx.clone());

    let db = store::Db::connect_lazy(
        &cfg.database.database_url,
        cfg.db_pool_size,
        store::Timeouts::from_statement(Duration::from_secs(cfg.db_statement_timeout_secs)),
    )?;
    let producer = Producer::create(&cfg.kafka)?;
    {
        let (producer, stop) = (producer.clone(), stop_tx.clone());
        tokio::spawn(async move {
            producer.fatal().await;
            stop.send_replace(true);
        });
    }
    let consumer = EventConsumer::create(
        &cfg.kafka,
        &cfg.group_id,
        cfg.instance_id.as_deref(),
        cfg.resume_from_log_start,
        ConsumerCtx {
            in_group: health.in_group.clone(),
            metrics: metrics.clone(),
        },
    )?;
    if let Some(id) = consumer.group_instance_id() {
        // Tansu does not fence a second live member with the same id: a
        // lock in Postgres does (store::InstanceLock).
        let wait = Duration::from_secs(cfg.shutdown_timeout_secs + 10);
        let lock =
            store::InstanceLock::acquire(&cfg.database.database_url, &cfg.group_id, id, wait)
                .await?;
        tracing::info!("static group member: instance lock held");
        spawn_instance_watch(lock, lost_id.clone(), stop_tx.clone(), stop_rx.clone());
    }
    probe::spawn(
        db.clone(),
        producer.clone(),
        health.clone(),
        metrics.clone(),
        stop_rx.clone(),
    );

    let instance = instance_id();
    let owner = store::Owner {
        id: instance.as_str().into(),
        lease: Duration::from_secs(cfg.outbox_lease_secs),
    };
    tracing::info!(instance = %instance, "outbox owner");
    let keeper = sweep::Keeper {
        db: db.clone(),
        producer: producer.clone(),
        sweeper: store::Owner {
            id: format!("{instance}/sweep").into(),
            lease: owner.lease,
        },
        owner: owner.clone(),
        in_flight: sweep::InFlight::default(),
        metrics: metrics.clone(),
    };

    let localities = cfg.localities.provider_localities.clone();
    // Once stopping, a failing step gets half the shutdown bound for a last
    // try; the bound itself is enforced below.
    let cfg_grace_secs = cfg.shutdown_timeout_secs;
    let metrics_for_retry = metrics.clone();
    let dead_letters = dead_letter::DeadLetters {
        topic: cfg.topics.dlq_topic.as_str().into(),
        producer: producer.clone(),
        db: db.clone(),
        metrics: metrics.clone(),
    };
    let p = Arc::new(Pipeline {
        owner,
        in_flight: keeper.in_flight.clone(),
        topics: Topics {
            output: cfg.topics.output_topic.as_str().into(),
            review: cfg.topics.review_topic.as_str().into(),
        },
        cfg,
        rules: Arc::new(rules_watch::CurrentRules::new(base_rules, localities)),
        db,
        producer,
        metrics,
        health,
        retry: retry::Retry::until_stopped(
            stop_rx.clone(),
            Duration::from_secs(cfg_grace_secs) / 2,
            metrics_for_retry,
        ),
        dead_letters,
        stop: stop_rx,
    });
    let limit = Duration::from_secs(p.cfg.shutdown_timeout_secs);
    let work = async {
        match start(&p, &consumer).await {
            // The outbox keeper needs the schema: it starts once it is there.
            Ok(Start::Ready(lock)) => {
                keeper.spawn(lock, p.stop.clone());
                rules_watch::spawn(
                    p.rules.clone(),
                    p.db.clone(),
                    p.metrics.clone(),
                    Duration::from_secs(p.cfg.rules_poll_secs),
                    p.stop.clone(),
                );
            }
            Ok(Start::SchemaBehind(missing)) => anyhow::bail!(
                "the database schema is not current (migrations {missing:?} not applied) and \
                 CLAIMLINE_MIGRATE=false: run `claimline migrate` first"
            ),
            // Stopped before the first message: nothing to drain.
            Err(retry::Stopped) => return Ok(Ended::Drained),
        }
        let ended = p.consume(&consumer).await;
        if ended == Ended::Drained {
            // Commit what is stored and flush the producer, within the
            // shutdown bound (the select below ends it otherwise).
            consumer.commit_and_leave();
            p.producer.flush(limit.min(Duration::from_secs(10)));
        }
        Ok(ended)
    };
    let ended = tokio::select! {
        ended = work => ended?,
        _ = shutdown_deadline(p.stop.clone(), limit) => Ended::Abandoned,
    };
    if p.producer.is_fatal() {
        // Exit non-zero: the orchestrator restarts the process with a new
        // producer; what was not acknowledged is redelivered.
        anyhow::bail!("the producer hit a fatal error; stopping");
    }
    if lost_id.load(std::sync::atomic::Ordering::SeqCst) {
        // Not asked to stop: the orchestrator must see it (a restart waits
        // for the id, or refuses to start while the other process lives).
        anyhow::bail!("another live process took this CLAIMLINE_INSTANCE_ID; stopped ({ended:?})");
    }
    match ended {
        Ended::Drained => {
            tracing::info!("stopped: drained, offsets committed");
            Ok(())
        }
        Ended::Abandoned => {
            tracing::error!(
                shutdown_timeout_s = limit.as_secs(),
                "stopped: abandoned work in flight (redelivered to whoever takes the partitions)"
            );
            anyhow::bail!("shutdown abandoned work in flight")
        }
    }
}

/// Resolves when the service has been stopping for a little less than
/// `limit` (CLAIMLINE_SHUTDOWN_TIMEOUT_SECS): the work still in flight is
/// then abandoned, leaving time to say so and exit within the bound.
async fn shutdown_deadline(mut stop: watch::Receiver<bool>, limit: Duration) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
    let margin = Duration::from_secs(1).min(limit / 4);
    tokio::time::sleep(limit - margin).await;
}

/// How start-up ended, short of stopping.
enum Start {
    /// Holding this instance's owner lock (see [`store::OwnerLock`]).
    Ready(store::OwnerLock),
    /// CLAIMLINE_MIGRATE=false and these migrations have not run.
    SchemaBehind(Vec<i64>),
}

/// Migrations (or the check that they ran), the imported rule tables,
/// topics, then the subscription. (The outbox a crash left is the
/// sweep's, once its rows' lease lapses.)
async fn start(p: &Pipeline, consumer: &EventConsumer) -> Result<Start, retry::Stopped> {
    if p.cfg.migrate {
        p.retry
            .run(Step::Migrate, || Box::pin(p.db.migrate()))
            .await?;
        tracing::info!("migrations applied");
    } else {
        let missing = p
            .retry
            .run(Step::Migrate, || Box::pin(p.db.missing_migrations()))
            .await?;
        if !missing.is_empty() {
            return Ok(Start::SchemaBehind(missing));
        }
        tracing::info!("schema is current");
    }
    // Proof that this instance lives, before it owns any outbox row.
    let lock = p
        .retry
        .run(Step::HoldOwnerLock, || {
            Box::pin(p.db.hold_owner_lock(&p.owner))
        })
        .await?;
    // The imported CMS tables, before the first batch.
    p.retry
        .run(Step::LoadRules, || {
            Box::pin(p.rules.refresh(&p.db, &p.metrics))
        })
        .await?;
    if p.cfg.create_topics {
        let cfg = &p.cfg;
        let topics = [
            cfg.topics.input_topic.as_str(),
            &cfg.topics.output_topic,
            &cfg.topics.review_topic,
            &cfg.topics.dlq_topic,
        ];
        let topics = &topics;
        p.retry
            .run(Step::CreateTopics, || {
                Box::pin(kafka::create_topics(
                    &cfg.kafka,
                    topics,
                    cfg.topic_partitions,
                ))
            })
            .await?;
    }
    // Rows a crashed instance left are published by the sweep once its
    // owner lock is free or their lease lapses (never while another
    // instance still sends them).
    if let Err(e) = consumer.subscribe(&p.cfg.topics.input_topic) {
        tracing::error!(error = format!("{e:#}"), "cannot subscribe");
        return Err(retry::Stopped);
    }
    tracing::info!(topic = %p.cfg.topics.input_topic, group = %p.cfg.group_id, "consuming");
    Ok(Start::Ready(lock))
}

/// Checks the instance lock every few seconds; stops the service (marking
/// `lost`) if another process with the same id took it.
fn spawn_instance_watch(
    mut lock: store::InstanceLock,
    lost: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<watch::Sender<bool>>,
    mut stopped: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stopped.changed() => return,
            }
            if lock.check().await == store::Kept::TakenByAnother {
                tracing::error!(
                    "another live instance took this CLAIMLINE_INSTANCE_ID while the database was unreachable: stopping"
                );
                lost.store(true, std::sync::atomic::Ordering::SeqCst);
                stop.send_replace(true);
                return;
            }
        }
    });
}

/// Names this process among the group's instances: the pod name where
/// Kubernetes sets HOSTNAME, the process id, and a random part (a pod
/// restarted with the same name is another owner).
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "claimline".to_owned());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(63)
        .collect();
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        retry::random_u64() as u32
    )
}

fn outbox_message(e: &OutboxEntry) -> Outgoing<'_> {
    Outgoing {
        topic: &e.topic,
        key: Some(e.key.as_bytes()),
        payload: e.payload.as_bytes(),
        headers: Vec::new(),
    }
}
