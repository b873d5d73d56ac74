//! The batch transaction: lock the batch's encounters, load what the
//! ledger needs, then write everything with one bulk statement per table.

use std::time::Duration;

use anyhow::Context;
use chrono::Datelike;
use sqlx::postgres::PgConnection;
use sqlx::Executor;

use super::load::{self, load_payloads, Day, Loaded};
use super::outbox::{claim_rows, Owner};
use super::write;
use super::{BatchWrite, Conn, Db, DeadlineMissed, Decode, Keys, OutboxEntry};
use crate::domain::ledger::Ledger;

/// One open batch transaction, its encounters and patient-years locked.
/// Dropped without [`Batch::commit`] or [`Batch::rollback`], its connection
/// is discarded (closed: the server rolls back). Each call is bounded by
/// the store's deadline.
pub(crate) struct Batch {
    tx: Conn,
    deadline: Duration,
    decode: Decode,
    loaded: Loaded,
    /// The size of the batch's write statement, roughly (see
    /// [`Batch::commit_written`]).
    written: usize,
}

/// A batch connection keeps a write buffer up to this size for its next
/// batch; one grown past it (a batch of large events) is shrunk after the
/// commit, so a burst of megabyte events leaves no buffers of tens of MiB.
const KEEP_BUFFER_MAX: usize = 4 * 1024 * 1024;

impl Batch {
    /// `step` within the deadline, or [`DeadlineMissed`].
    async fn timed<T>(
        deadline: Duration,
        step: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(deadline, step).await {
            Ok(r) => r,
            Err(_) => Err(DeadlineMissed(deadline).into()),
        }
    }
}

/// Opens the batch transaction and locks the batch's encounters, then its
/// patients' years (each set in a fixed order, encounters first, so two
/// instances cannot deadlock), then loads what the ledger needs. The
/// encounter locks make the idempotency check and the writes one atomic
/// step even during a rebalance; the patient-year locks make two batches
/// that bill one patient's year (or day) see each other's lines. A batch
/// holds up to two advisory locks per event (see the README on
/// `max_locks_per_transaction`).
impl Db {
    pub(crate) async fn begin_batch(
        &self,
        keys: &Keys<'_>,
        decode: Decode,
    ) -> anyhow::Result<(Batch, Ledger)> {
        let mut tx = self.acquire().await?;
        let (ledger, loaded) = self.timed(lock_and_load(&mut tx, keys, decode)).await?;
        let batch = Batch {
            tx,
            deadline: self.deadline(),
            decode,
            loaded,
            written: 0,
        };
        Ok((batch, ledger))
    }
}

/// BEGIN, the locks, and what the ledger needs (see [`Db::begin_batch`]):
/// two round trips, a third when a day has more than one encounter (their
/// payloads), and again the load when an amendment moved an encounter.
async fn lock_and_load(
    tx: &mut PgConnection,
    keys: &Keys<'_>,
    decode: Decode,
) -> anyhow::Result<(Ledger, Loaded)> {
    tx.execute("BEGIN")
        .await
        .context("Failed to begin a transaction")?;
    let mut ledger = Ledger::default();
    if keys.encounters.is_empty() {
        let rules = super::rules::fingerprint_on(&mut *tx).await?;
        let loaded = Loaded {
            outbox: Vec::new(),
            rules,
        };
        return Ok((ledger, loaded));
    }
    let mut days: Vec<Day> = keys
        .days
        .iter()
        .map(|(p, _, pay, d, _)| (p.to_string(), pay.to_string(), *d))
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut loaded = load::lock_and_load(tx, keys, &keys.patient_years, &days, &mut ledger).await?;
    // An amendment that changed the patient or moved the date to another
    // year: the day its lines are on now is another patient-year. Lock that
    // too (out of order: a deadlock, should one occur, is detected and the
    // batch retried) and load again, since another instance may have
    // reissued those lines before the lock was ours.
    let mut other: Vec<(&str, i32)> = Vec::new();
    let mut moved: Vec<Day> = Vec::new();
    for id in &keys.encounters {
        let Some(l) = ledger.active.get(*id).and_then(|lines| lines.first()) else {
            continue;
        };
        let year = (&*l.patient_id, l.date_of_service.year());
        if keys.patient_years.binary_search(&year).is_err() {
            other.push(year);
        }
        let day = (
            l.patient_id.to_string(),
            l.payer_id.to_string(),
            l.date_of_service,
        );
        if days.binary_search(&day).is_err() {
            moved.push(day);
        }
    }
    if !other.is_empty() || !moved.is_empty() {
        let other: Vec<(String, i32)> = other.into_iter().map(|(p, y)| (p.to_owned(), y)).collect();
        let mut years: Vec<(&str, i32)> = keys.patient_years.clone();
        years.extend(other.iter().map(|(p, y)| (p.as_str(), *y)));
        years.sort_unstable();
        years.dedup();
        days.extend(moved);
        days.sort_unstable();
        days.dedup();
        loaded = load::lock_and_load(tx, keys, &years, &days, &mut ledger).await?;
    }
    let shared = load::shared_days(keys, &ledger);
    let shared: Vec<&str> = shared.iter().map(|id| &**id).collect();
    load::load_payloads(tx, &shared, &mut ledger, decode).await?;
    Ok((ledger, loaded))
}

impl Batch {
    /// The payloads of the newest events of these encounters in force,
    /// decoded into `ledger.encounters` (for a re-evaluation).
    pub(crate) async fn load_payloads(
        &mut self,
        encounter_ids: &[&str],
        ledger: &mut Ledger,
    ) -> anyhow::Result<()> {
        let deadline = self.deadline;
        Batch::timed(
            deadline,
            load_payloads(&mut self.tx, encounter_ids, ledger, self.decode),
        )
        .await
    }

    /// The unpublished outbox rows of the batch's encounters (those known
    /// before, and every encounter in force on their days) that this batch
    /// must publish first (see [`claim_rows`]).
    pub(crate) async fn claim_outbox(
        &mut self,
        owner: &Owner,
        in_flight: &[i64],
    ) -> anyhow::Result<Vec<OutboxEntry>> {
        let deadline = self.deadline;
        let rows = std::mem::take(&mut self.loaded.outbox);
        Batch::timed(deadline, claim_rows(&mut self.tx, &rows, owner, in_flight)).await
    }

    /// The rule tables as the batch found them: (count, newest id).
    pub(crate) fn rules_fingerprint(&self) -> (i64, i64) {
        self.loaded.rules
    }

    /// Ends the transaction, writing nothing.
    pub(crate) async fn rollback(mut self) -> anyhow::Result<()> {
        Batch::timed(self.deadline, async {
            self.tx
                .execute("ROLLBACK")
                .await
                .context("Failed to roll back")
        })
        .await?;
        self.release();
        Ok(())
    }

    /// Returns the connection to the pool, its write buffer shrunk if this
    /// batch's write grew it past [`KEEP_BUFFER_MAX`].
    fn release(mut self) {
        if self.written > KEEP_BUFFER_MAX {
            sqlx::Connection::shrink_buffers(&mut *self.tx);
        }
        self.tx.release();
    }

    /// A statement of the store's own in the open transaction, within the
    /// deadline.
    pub(super) async fn run<T>(
        &mut self,
        step: impl AsyncFnOnce(&mut PgConnection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        Batch::timed(self.deadline, step(&mut self.tx)).await
    }

    /// Writes the batch's rows (one statement), not yet committed. The
    /// batch's outbox entries get the id of their outbox row.
    pub(crate) async fn write(
        &mut self,
        batch: &mut BatchWrite,
        owner: &Owner,
    ) -> anyhow::Result<()> {
        self.written =
            Batch::timed(self.deadline, write::write_rows(&mut self.tx, batch, owner)).await?;
        Ok(())
    }

    /// Commits what [`Batch::write`] wrote. The connection keeps its
    /// write buffer for the next batch (about 2 KiB an event; a batch
    /// connection is one of CLAIMLINE_BATCHES_IN_FLIGHT) unless it grew past
    /// [`KEEP_BUFFER_MAX`]: shrunk after every batch, each write grew it
    /// again by doubling, and that copying and the fresh pages it faulted
    /// in were about a third of the service's page faults (bench, `perf
    /// record -e page-faults`).
    pub(crate) async fn commit_written(mut self) -> anyhow::Result<()> {
        Batch::timed(self.deadline, write::commit(&mut self.tx)).await?;
        self.release();
        Ok(())
    }

    /// [`Batch::write`], then [`Batch::commit_written`].
    pub(crate) async fn commit(
        mut self,
        batch: &mut BatchWrite,
        owner: &Owner,
    ) -> anyhow::Result<()> {
        self.write(batch, owner).await?;
        self.commit_written().await
    }
}
