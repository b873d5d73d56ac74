//! HTTP for SREs: /metrics, /healthz, /readyz (contract section 5).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// What /readyz reports; each flag is kept current by its owner.
#[derive(Default)]
pub struct Health {
    pub assigned: Arc<AtomicBool>,
    pub database: AtomicBool,
    pub producer: AtomicBool,
}

impl Health {
    /// `None` when ready, else the short reason.
    pub fn not_ready_reason(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if !self.assigned.load(Ordering::Relaxed) {
            reasons.push("no partitions assigned");
        }
        if !self.database.load(Ordering::Relaxed) {
            reasons.push("database unreachable");
        }
        if !self.producer.load(Ordering::Relaxed) {
            reasons.push("producer unhealthy");
        }
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    s.metrics
        .ready
        .set(i64::from(s.health.not_ready_reason().is_none()));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
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
