//! The outbox keeper, in the background: keeps this instance's owner lock,
//! renews the lease of its rows in flight, publishes rows whose owner is
//! gone (its owner lock free) or whose lease lapsed (died or stuck), and
//! exports the outbox backlog gauges.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::outbox_message;
use crate::kafka::Producer;
use crate::metrics::Metrics;
use crate::store::{self, OutboxEntry, Owner};

/// Outbox rows the batch loop is publishing: their leases are renewed, and
/// a batch of the same encounters leaves them alone (they are ahead of it
/// in the producer).
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<Vec<i64>>>);

impl InFlight {
    pub fn snapshot(&self) -> Vec<i64> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn add(&self, entries: &[OutboxEntry]) {
        if let Ok(mut v) = self.0.lock() {
            for e in entries {
                if !v.contains(&e.id) {
                    v.push(e.id);
                }
            }
        }
    }

    pub fn remove(&self, ids: &[i64]) {
        if let Ok(mut v) = self.0.lock() {
            v.retain(|id| !ids.contains(id));
        }
    }
}

pub(super) struct Keeper {
    pub db: store::Db,
    pub producer: Producer,
    /// The batch loop's identity, whose rows in flight are renewed.
    pub owner: Owner,
    /// The sweep's own identity: a row it is publishing is another
    /// instance's to the batch loop, which waits for it rather than send
    /// it twice.
    pub sweeper: Owner,
    pub in_flight: InFlight,
    pub metrics: Arc<Metrics>,
}

impl Keeper {
    pub(super) fn spawn(self, mut lock: store::OwnerLock, mut stop: watch::Receiver<bool>) {
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                if let Err(e) = lock.keep().await {
                    tracing::warn!(
                        error = super::retry::loggable(&e),
                        "could not hold this instance's owner lock"
                    );
                }
                if let Err(e) =
                    store::renew(&self.db, &self.owner, &self.in_flight.snapshot()).await
                {
                    tracing::warn!(
                        error = super::retry::loggable(&e),
                        "could not renew outbox leases"
                    );
                }
                if tick.is_multiple_of(2) {
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = super::retry::loggable(&e), "outbox sweep failed");
                    }
                }
                if let Ok((rows, oldest)) = store::backlog(&self.db).await {
                    self.metrics.outbox_backlog(rows, oldest);
                }
                tick += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }

    /// Publishes the rows whose lease lapsed, oldest first, until none is left.
    async fn sweep(&self) -> anyhow::Result<()> {
        loop {
            let entries = store::claim_lapsed(&self.db, &self.sweeper, 10).await?;
            if entries.is_empty() {
                return Ok(());
            }
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            tracing::info!(
                lines = entries.len(),
                "publishing claim lines whose writer is gone or whose lease lapsed"
            );
            // If this fails, the lease lapses again and a later sweep retries.
            self.producer
                .publish_all(entries.iter().map(outbox_message).collect())
                .await?;
            store::mark_published(&self.db, &ids).await?;
            for e in &entries {
                self.metrics.line_published(e.status.as_str());
            }
        }
    }
}
