//! Retrying a step, one piece for the service and the tools: each failing
//! try is counted and logged, backs off with jitter, and the step is given
//! up when the service stops (after one last try within a grace period) or
//! when it has failed for longer than the retry's bound (the tools). Every
//! try is itself bounded: a Postgres step by the store's deadline. The
//! retry writes no health flag: the probe says what is reachable, and a
//! step that keeps failing shows as a stall (no batch completed while work
//! waits).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::metrics::Metrics;

/// A step of the pipeline that is retried until it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Migrate,
    HoldOwnerLock,
    LoadRules,
    CreateTopics,
    WriteBatch,
    PublishOutbox,
    MarkPublished,
    PublishDlq,
    ReprocessPage,
}

impl Step {
    /// The `step` label of `claimline_retries_total` and of log lines.
    pub fn name(self) -> &'static str {
        match self {
            Step::Migrate => "migrate",
            Step::HoldOwnerLock => "hold_owner_lock",
            Step::LoadRules => "load_rules",
            Step::CreateTopics => "create_topics",
            Step::WriteBatch => "write_batch",
            Step::PublishOutbox => "publish_outbox",
            Step::MarkPublished => "mark_published",
            Step::PublishDlq => "publish_dlq",
            Step::ReprocessPage => "reprocess_page",
        }
    }
}

/// The service is stopping and the step did not complete: its work is left
/// to redelivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Why a retried step did not complete.
#[derive(Debug)]
pub enum GaveUp {
    /// The service is stopping.
    Stopped,
    /// It kept failing past the retry's bound: the last error.
    Failing(anyhow::Error),
}

/// How a step is retried; cheap to clone.
#[derive(Clone)]
pub struct Retry {
    stop: watch::Receiver<bool>,
    /// Once stopping, a failing step gets one last try this long.
    grace: Duration,
    /// A step failing for longer is given up (`None`: until stopped).
    bound: Option<Duration>,
    metrics: Option<Arc<Metrics>>,
}

impl Retry {
    /// The service's: until it stops (`stop`), then one last try within
    /// `grace`; retries are counted in `metrics`.
    pub fn until_stopped(
        stop: watch::Receiver<bool>,
        grace: Duration,
        metrics: Arc<Metrics>,
    ) -> Retry {
        Retry {
            stop,
            grace,
            bound: None,
            metrics: Some(metrics),
        }
    }

    /// A tool's: gives a step up once it has failed for `bound`.
    pub fn bounded(bound: Duration) -> Retry {
        // A sender that never says stop: dropped, `wait_for` errs and the
        // select below waits for the backoff alone.
        let (_, stop) = watch::channel(false);
        Retry {
            stop,
            grace: Duration::ZERO,
            bound: Some(bound),
            metrics: None,
        }
    }

    /// Runs `step` until it succeeds or the service is stopping.
    pub async fn run<'a, T, F>(&self, step: Step, f: F) -> Result<T, Stopped>
    where
        F: FnMut() -> StepFuture<'a, T>,
    {
        self.attempt(step, f).await.map_err(|_| Stopped)
    }

    /// Runs `step` until it succeeds, the service stops, or it has failed
    /// for longer than the bound.
    pub async fn attempt<'a, T, F>(&self, step: Step, mut run: F) -> Result<T, GaveUp>
    where
        F: FnMut() -> StepFuture<'a, T>,
    {
        let mut attempt = 0;
        let mut failing_since: Option<Instant> = None;
        loop {
            let e = match run().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if let Some(m) = &self.metrics {
                m.retried(step.name());
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            if self.bound.is_some_and(|b| since.elapsed() >= b) {
                return Err(GaveUp::Failing(e));
            }
            let wait = backoff(attempt, jitter());
            log_retry(step, &e, wait, since);
            attempt += 1;
            let mut stop = self.stop.clone();
            let stopping = tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                // (The watch's guard ends here, before the last try.)
                true = async { stop.wait_for(|s| *s).await.is_ok() } => true,
            };
            if stopping {
                // Stopping while a step fails: leave the batch to
                // redelivery, after one grace period for a last try.
                return match tokio::time::timeout(self.grace, run()).await {
                    Ok(Ok(v)) => Ok(v),
                    _ => Err(GaveUp::Stopped),
                };
            }
        }
    }
}

fn log_retry(step: Step, e: &anyhow::Error, wait: Duration, since: Instant) {
    if e.is::<crate::store::OwnedElsewhere>() {
        // Not a failure: another instance publishes lines of these
        // encounters first.
        tracing::info!(
            step = step.name(),
            retry_in_ms = wait.as_millis() as u64,
            waiting_for_s = since.elapsed().as_secs(),
            "waiting for another instance's outbox rows"
        );
    } else {
        tracing::warn!(
            step = step.name(),
            error = loggable(e),
            retry_in_ms = wait.as_millis() as u64,
            failing_for_s = since.elapsed().as_secs(),
            "step failed; retrying"
        );
    }
}

pub type StepFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The wait after `attempt` failures (from 0): doubling from 100 ms up to
/// 5 s, each drawn uniformly from its upper half, so replicas that failed
/// together do not retry in step.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let cap = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    cap.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A number that differs between calls and processes: the standard
/// library seeds every `RandomState` with fresh random keys. Enough for
/// jitter and instance names; not for secrets.
pub(super) fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// A number in [0, 1), for jitter.
fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// An error's chain for a log line. A Postgres error is shown by its
/// SQLSTATE only: the server's text can quote a value from the row (PHI).
pub fn loggable(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        if let Some(code) = crate::store::sqlstate(cause) {
            parts.push(format!("Postgres error SQLSTATE {code}"));
            break;
        }
        parts.push(cause.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_error_keeps_its_context_chain() {
        let e = anyhow::anyhow!("connection refused").context("Failed to begin a transaction");
        assert_eq!(
            loggable(&e),
            "Failed to begin a transaction: connection refused"
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_jitters_within_the_upper_half() {
        assert_eq!(backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(10, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX, 0.0), MAX_BACKOFF / 2);
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
        assert_ne!(random_u64(), random_u64(), "fresh keys each call");
    }

    #[tokio::test]
    async fn a_bounded_retry_gives_up_with_the_last_error_and_a_step_that_heals_holds() {
        let r = Retry::bounded(Duration::from_millis(400));
        let tries = std::sync::atomic::AtomicU32::new(0);
        let out = r
            .attempt(Step::ReprocessPage, || {
                tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Box::pin(async { Err::<(), _>(anyhow::anyhow!("still down")) })
            })
            .await;
        assert!(matches!(out, Err(GaveUp::Failing(e)) if e.to_string() == "still down"));
        assert!(tries.load(std::sync::atomic::Ordering::Relaxed) >= 3);
        let n = std::sync::atomic::AtomicU32::new(0);
        let healed = r
            .attempt(Step::ReprocessPage, || {
                let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Box::pin(async move {
                    anyhow::ensure!(k >= 2, "not yet");
                    Ok(k)
                })
            })
            .await;
        assert_eq!(healed.ok(), Some(2));
    }

    #[tokio::test]
    async fn stopping_gives_a_failing_step_one_last_try_then_stops() {
        let (tx, rx) = watch::channel(false);
        let r = Retry::until_stopped(rx, Duration::from_millis(100), Arc::new(Metrics::new()));
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tx.send_replace(true);
            tx
        });
        let out = r
            .run(Step::WriteBatch, || {
                Box::pin(async { Err::<(), _>(anyhow::anyhow!("down")) })
            })
            .await;
        assert_eq!(out, Err(Stopped));
        drop(stopper.await);
    }
}
