//! The background probe behind /readyz: is Postgres reachable, does the
//! broker answer; plus the gauges only a poll can read.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::Health;
use crate::kafka::Producer;
use crate::metrics::Metrics;
use crate::store;

pub(super) fn spawn(
    db: store::Db,
    producer: Producer,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            let reachable = tokio::time::timeout(Duration::from_secs(2), db.ping())
                .await
                .unwrap_or(false);
            health.database.store(reachable, Ordering::Relaxed);
            let broker = producer.reachable(Duration::from_secs(2)).await;
            health.producer.store(broker, Ordering::Relaxed);
            metrics.producer_queue(producer.queue_len());
            let (open, idle) = db.connections();
            metrics.db_pool(open, idle);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}
