//! Retrying a step: each failing try is counted and logged, backs off with
//! jitter, and gives up only when the service stops. It writes no health
//! flag: the probe says what is reachable, and a step that keeps failing
//! shows as a stall (no batch completed while work waits).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::Pipeline;

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
        }
    }
}

/// The service is stopping and the step did not complete: its work is left
/// to redelivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

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

impl Pipeline {
    /// Runs `step` until it succeeds or the service is stopping.
    pub(super) async fn retry<'a, T, F>(&self, step: Step, mut run: F) -> Result<T, Stopped>
    where
        F: FnMut() -> StepFuture<'a, T>,
    {
        let mut attempt = 0;
        let mut failing_since: Option<Instant> = None;
        loop {
            match run().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.metrics.retried(step.name());
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    let wait = backoff(attempt, jitter());
                    if e.is::<crate::store::OwnedElsewhere>() {
                        // Not a failure: another instance publishes lines
                        // of these encounters first.
                        tracing::info!(
                            step = step.name(),
                            retry_in_ms = wait.as_millis() as u64,
                            waiting_for_s = since.elapsed().as_secs(),
                            "waiting for another instance's outbox rows"
                        );
                    } else {
                        tracing::warn!(
                            step = step.name(),
                            error = loggable(&e),
                            retry_in_ms = wait.as_millis() as u64,
                            failing_for_s = since.elapsed().as_secs(),
                            "step failed; retrying"
                        );
                    }
                    attempt += 1;
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => {
                            // Stopping while a step fails: leave the batch to
                            // redelivery, after one grace period for a last try.
                            let grace = Duration::from_secs(self.cfg.shutdown_timeout_secs) / 2;
                            return match tokio::time::timeout(grace, run()).await {
                                Ok(Ok(v)) => Ok(v),
                                _ => Err(Stopped),
                            };
                        }
                    }
                }
            }
        }
    }
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
}
