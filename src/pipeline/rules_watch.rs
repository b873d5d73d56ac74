//! The rule set in force, and its reload: imported CMS tables (`claimline
//! rules import`) are picked up by every running instance without a
//! restart. The watcher asks Postgres every `CLAIMLINE_RULES_POLL_SECS`
//! whether the tables changed and, when they did, builds the new rule book
//! and swaps it in between batches; the switch is logged and counted.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::locality::ProviderLocalities;
use crate::domain::{RuleBook, Rules};
use crate::metrics::Metrics;
use crate::store;

/// The rule book batches use; each batch takes the current one once.
pub struct CurrentRules {
    /// The built-in rules, or those the payer policy file makes of them.
    base: &'static Rules,
    book: RwLock<Arc<RuleBook>>,
    /// What the loaded tables were: (count, newest id).
    loaded: RwLock<Option<(i64, i64)>>,
    /// The billing NPIs' localities (a setting), in every book.
    localities: ProviderLocalities,
}

impl CurrentRules {
    /// The shipped tables over `base`, until the first load.
    pub fn new(base: &'static Rules, localities: ProviderLocalities) -> CurrentRules {
        CurrentRules {
            base,
            book: RwLock::new(Arc::new(
                crate::cms::shipped::over(base, &[]).located(localities.clone()),
            )),
            loaded: RwLock::new(None),
            localities,
        }
    }

    pub fn get(&self) -> Arc<RuleBook> {
        self.book
            .read()
            .map(|b| b.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Loads the tables when they changed since the last load. Ok(true)
    /// when a new rule book is in force.
    pub async fn refresh(&self, db: &store::Db, metrics: &Metrics) -> anyhow::Result<bool> {
        let now = store::rules::fingerprint(db).await?;
        self.refresh_to(now, db, metrics).await
    }

    /// [`CurrentRules::refresh`] with the tables' fingerprint already read
    /// (a batch reads it in its transaction).
    pub async fn refresh_to(
        &self,
        now: (i64, i64),
        db: &store::Db,
        metrics: &Metrics,
    ) -> anyhow::Result<bool> {
        if *self.loaded.read().unwrap_or_else(|e| e.into_inner()) == Some(now) {
            return Ok(false);
        }
        let tables = store::rules::load(db).await?;
        let book = crate::cms::shipped::over(self.base, &tables).located(self.localities.clone());
        let periods: Vec<String> = book
            .periods()
            .map(|(from, version)| format!("{from}: {version}"))
            .collect();
        let first = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none();
        *self.book.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(book);
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Some(now);
        metrics.rules_loaded(tables.len(), !first);
        tracing::info!(
            tables = tables.len(),
            rule_sets = ?periods,
            "rule set in force {}",
            if first { "loaded" } else { "changed" }
        );
        Ok(true)
    }
}

/// Polls for new tables until `stop`.
pub(super) fn spawn(
    rules: Arc<CurrentRules>,
    db: store::Db,
    metrics: Arc<Metrics>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = rules.refresh(&db, &metrics).await {
                // The rule set in force stays; the next poll tries again.
                tracing::warn!(error = format!("{e:#}"), "cannot check the rule tables");
            }
        }
    });
}
