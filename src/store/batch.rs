//! The batch transaction: lock the batch's encounters, load what the
//! ledger needs, then write everything with one bulk statement per table.

use std::time::Duration;

use anyhow::Context;
use chrono::Datelike;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Row};

use super::copy::copy_claim_lines;
use super::load::{load_days, load_payloads, load_year_to_date, lock_patient_years, Day};
use super::outbox::{claim_for_encounters, Owner};
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
}

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
        let ledger = self.timed(lock_and_load(&mut tx, keys, decode)).await?;
        let batch = Batch {
            tx,
            deadline: self.deadline(),
            decode,
        };
        Ok((batch, ledger))
    }
}

/// BEGIN, the locks, and what the ledger needs (see [`Db::begin_batch`]).
async fn lock_and_load(
    tx: &mut PgConnection,
    keys: &Keys<'_>,
    decode: Decode,
) -> anyhow::Result<Ledger> {
    let (encounter_ids, event_ids) = (&keys.encounters, &keys.events);
    tx.execute("BEGIN")
        .await
        .context("Failed to begin a transaction")?;
    let mut ledger = Ledger::default();
    if encounter_ids.is_empty() {
        return Ok(ledger);
    }
    // Transaction-scoped advisory locks, taken in sorted id order so two
    // instances cannot deadlock; a hash collision only serialises more.
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(k)) FROM
           (SELECT hashtextextended(id, 0) AS k FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n) AS keys",
    )
    .bind(encounter_ids)
    .execute(&mut *tx)
    .await
    .context("Failed to lock encounters")?;
    lock_patient_years(&mut *tx, &keys.patient_years).await?;
    load_year_to_date(&mut *tx, &keys.patient_years, &mut ledger).await?;
    let rows = sqlx::query(
        // One index probe per encounter, whatever the table's statistics say.
        "SELECT u.id, v.version FROM unnest($1::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT encounter_version AS version FROM encounter_events e
                             WHERE e.encounter_id = u.id ORDER BY encounter_version DESC LIMIT 1) AS v",
    )
    .bind(encounter_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to read encounter versions")?;
    for row in rows {
        let version: i32 = row.get(1);
        let id: String = row.get(0);
        ledger.versions.insert(id.into(), version as u32);
    }
    let seen = sqlx::query(
        "SELECT event_id, encounter_id, encounter_version FROM encounter_events WHERE event_id = ANY($1)",
    )
    .bind(event_ids)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to look up processed events")?;
    ledger.seen = seen
        .into_iter()
        .map(|r| {
            let event_id: String = r.get(0);
            let encounter_id: String = r.get(1);
            let version: i32 = r.get(2);
            (event_id.into(), (encounter_id.into(), version as u32))
        })
        .collect();
    let mut days: Vec<Day> = keys
        .days
        .iter()
        .map(|(p, _, pay, d, _)| (p.to_string(), pay.to_string(), *d))
        .collect();
    days.sort_unstable();
    days.dedup();
    load_days(&mut *tx, keys, &days, &mut ledger, decode).await?;
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
        other.sort_unstable();
        other.dedup();
        let other: Vec<(String, i32)> = other.into_iter().map(|(p, y)| (p.to_owned(), y)).collect();
        let other: Vec<(&str, i32)> = other.iter().map(|(p, y)| (p.as_str(), *y)).collect();
        lock_patient_years(&mut *tx, &other).await?;
        load_year_to_date(&mut *tx, &other, &mut ledger).await?;
        days.extend(moved);
        days.sort_unstable();
        days.dedup();
        ledger.active.clear();
        ledger.encounters.clear();
        ledger.max_line_no.clear();
        load_days(&mut *tx, keys, &days, &mut ledger, decode).await?;
    }
    Ok(ledger)
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

    /// The unpublished outbox rows of these encounters this batch must
    /// publish first (see [`claim_for_encounters`]).
    pub(crate) async fn claim_outbox(
        &mut self,
        encounter_ids: &[&str],
        owner: &Owner,
        in_flight: &[i64],
    ) -> anyhow::Result<Vec<OutboxEntry>> {
        let deadline = self.deadline;
        Batch::timed(
            deadline,
            claim_for_encounters(&mut self.tx, encounter_ids, owner, in_flight),
        )
        .await
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
        self.tx.release();
        Ok(())
    }

    /// A statement of the store's own in the open transaction, within the
    /// deadline.
    pub(super) async fn run<T>(
        &mut self,
        step: impl AsyncFnOnce(&mut PgConnection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        Batch::timed(self.deadline, step(&mut self.tx)).await
    }

    /// Writes the batch with one bulk statement per table and commits. The
    /// batch's outbox entries get the id of their outbox row.
    pub(crate) async fn commit(
        mut self,
        batch: &mut BatchWrite,
        owner: &Owner,
    ) -> anyhow::Result<()> {
        Batch::timed(self.deadline, write_all(&mut self.tx, batch, owner)).await?;
        self.tx.release();
        Ok(())
    }
}

/// The batch's rows, then COMMIT.
async fn write_all(
    tx: &mut PgConnection,
    batch: &mut BatchWrite,
    owner: &Owner,
) -> anyhow::Result<()> {
    if !batch.new_lines.is_empty() {
        copy_claim_lines(&mut *tx, &batch.new_lines).await?;
    }
    if !batch.voids.is_empty() {
        let (ids, events): (Vec<&str>, Vec<&str>) =
            batch.voids.iter().map(|(a, b)| (a.as_str(), &**b)).unzip();
        sqlx::query(
            "UPDATE claim_lines c SET status = 'void', voided_by_event_id = v.event_id, updated_at = now()
             FROM unnest($1::text[], $2::text[]) AS v(claim_line_id, event_id)
             WHERE c.claim_line_id = v.claim_line_id",
        )
        .bind(&ids)
        .bind(&events)
        .execute(&mut *tx)
        .await
        .context("Failed to void claim lines")?;
    }
    if !batch.events.is_empty() {
        let e = &batch.events;
        sqlx::query(
            "INSERT INTO encounter_events (event_id, encounter_id, encounter_version, event_type, outcome,
                lines_produced, lines_voided, occurred_at, source_topic, source_partition, source_offset)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int4[],
                $7::int4[], $8::timestamptz[], $9::text[], $10::int4[], $11::int8[])",
        )
        .bind(e.iter().map(|r| &*r.event_id).collect::<Vec<_>>())
        .bind(e.iter().map(|r| &*r.encounter_id).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.version as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.event_type).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.lines_produced as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.lines_voided as i32).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.partition).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.source.offset).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record events")?;
    }
    if !batch.payloads.is_empty() {
        let p = &batch.payloads;
        sqlx::query(
            "INSERT INTO encounter_payloads (event_id, encounter_id, encounter_version, date_of_service, payload)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::date[], $5::bytea[])
             ON CONFLICT DO NOTHING",
        )
        .bind(p.iter().map(|r| &*r.event_id).collect::<Vec<_>>())
        .bind(p.iter().map(|r| &*r.encounter_id).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.version as i32).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.date_of_service).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.payload.as_slice()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to keep event payloads")?;
    }
    if !batch.dead_letters.is_empty() {
        let d = &batch.dead_letters;
        sqlx::query(
            "INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, message)
             SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(d.iter().map(|r| r.source.topic.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.source.partition).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.source.offset).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.reason).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record dead letters")?;
    }
    let outbox = &mut batch.outbox;
    if !outbox.is_empty() {
        let mut encounters: Vec<&str> = outbox.iter().map(|o| &*o.key).collect();
        encounters.sort_unstable();
        encounters.dedup();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO claim_line_outbox (claim_line_ids, statuses, topics, encounter_ids, owner, lease_until, owner_locked)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), true) RETURNING id",
        )
        .bind(outbox.iter().map(|o| o.claim_line_id.as_str()).collect::<Vec<_>>())
        .bind(outbox.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
        .bind(outbox.iter().map(|o| &*o.topic).collect::<Vec<_>>())
        .bind(&encounters)
        .bind(&*owner.id)
        .bind(owner.lease.as_secs_f64())
        .fetch_one(&mut *tx)
        .await
        .context("Failed to write the outbox")?;
        for entry in outbox.iter_mut() {
            entry.id = id;
        }
    }
    tx.execute("COMMIT")
        .await
        .context("Failed to commit the batch")?;
    Ok(())
}
