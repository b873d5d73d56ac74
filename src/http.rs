//! HTTP for SREs: /metrics, /healthz, /readyz (contract section 5).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// What /readyz and /healthz report. Each part has one writer, so no
/// verdict overwrites another's: `in_group` the consumer's rebalance
/// callbacks, `database` and `producer` the background probe, `progress`
/// the batch loop.
pub struct Health {
    /// The consumer joined its group (with or without partitions).
    pub in_group: Arc<AtomicBool>,
    /// Postgres answered the probe's last query within its deadline.
    pub database: AtomicBool,
    /// The broker answered the probe's last metadata request.
    pub producer: AtomicBool,
    /// Whether the pipeline moves: a stuck batch loop is not ready (and,
    /// past the same bound, not alive) whatever the probe sees.
    pub progress: Progress,
}

/// Whether the pipeline moves: when work began waiting and when a batch
/// last completed, in milliseconds since start (0: not waiting).
pub struct Progress {
    started: Instant,
    stall_after: Duration,
    waiting_since_ms: AtomicU64,
    last_progress_ms: AtomicU64,
}

impl Progress {
    pub fn new(stall_after: Duration) -> Self {
        Progress {
            started: Instant::now(),
            stall_after,
            waiting_since_ms: AtomicU64::new(0),
            last_progress_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // At least 1, so 0 keeps meaning "not waiting".
        (self.started.elapsed().as_millis() as u64).max(1)
    }

    /// A message arrived: work is waiting until the next completed batch.
    pub fn work_arrived(&self) {
        let now = self.now_ms();
        let _ =
            self.waiting_since_ms
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// A batch completed.
    pub fn progressed(&self) {
        self.last_progress_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// Nothing is in flight and the consumer waits for messages.
    pub fn idle(&self) {
        self.waiting_since_ms.store(0, Ordering::Relaxed);
    }

    /// How long work has waited with no batch completed, past the bound.
    pub fn stalled_for(&self) -> Option<Duration> {
        let since = self.waiting_since_ms.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let last = since.max(self.last_progress_ms.load(Ordering::Relaxed));
        let stalled = Duration::from_millis(self.now_ms().saturating_sub(last));
        (stalled > self.stall_after).then_some(stalled)
    }
}

impl Health {
    pub fn new(stall_after: Duration) -> Self {
        Health {
            in_group: Arc::default(),
            database: AtomicBool::new(false),
            producer: AtomicBool::new(false),
            progress: Progress::new(stall_after),
        }
    }

    /// `None` when ready, else the short reason.
    pub fn not_ready_reason(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if !self.in_group.load(Ordering::Relaxed) {
            reasons.push("not in the consumer group".to_owned());
        }
        if !self.database.load(Ordering::Relaxed) {
            reasons.push("database unreachable".to_owned());
        }
        if !self.producer.load(Ordering::Relaxed) {
            reasons.push("producer unhealthy".to_owned());
        }
        if let Some(d) = self.progress.stalled_for() {
            reasons.push(format!(
                "stalled: no batch completed for {} s while work waits",
                d.as_secs()
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Serves /metrics, /healthz and /readyz on `listener` until `stop`.
pub fn spawn(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = router(metrics, health);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
}

fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(live_handler))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    s.metrics.set_ready(s.health.not_ready_reason().is_none());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

/// Alive unless work has waited longer than the bound with no batch
/// completed (contract section 5): then Kubernetes restarts the pod.
async fn live_handler(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.progress.stalled_for() {
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(d) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stalled: no batch completed for {} s while work waits\n",
                d.as_secs()
            ),
        ),
    }
}

async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.not_ready_reason() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_work_waiting_with_no_progress_past_the_bound() {
        let p = Progress::new(Duration::ZERO);
        assert_eq!(p.stalled_for(), None, "idle is not stalled");
        p.work_arrived();
        std::thread::sleep(Duration::from_millis(5));
        assert!(p.stalled_for().is_some());
        p.progressed();
        p.idle();
        assert_eq!(p.stalled_for(), None);
        let p = Progress::new(Duration::from_secs(3600));
        p.work_arrived();
        assert_eq!(p.stalled_for(), None, "within the bound");
    }

    #[test]
    fn a_stalled_pipeline_is_not_ready_though_every_dependency_answers() {
        let h = Health::new(Duration::ZERO);
        h.in_group.store(true, Ordering::Relaxed);
        h.database.store(true, Ordering::Relaxed);
        h.producer.store(true, Ordering::Relaxed);
        assert_eq!(h.not_ready_reason(), None);
        h.progress.work_arrived();
        std::thread::sleep(Duration::from_millis(5));
        let reason = h.not_ready_reason().expect("not ready");
        assert!(reason.starts_with("stalled"), "{reason}");
        h.progress.progressed();
        h.progress.idle();
        assert_eq!(h.not_ready_reason(), None);
    }
}
