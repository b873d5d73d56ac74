//! `claimline reprocess`'s bookkeeping (`reprocess_runs`) and its pages of
//! encounters.

use anyhow::Context;
use chrono::NaiveDate;
use sqlx::Row;

use super::{on_conn, Batch, Db};

/// What a run covers: a date-of-service range, optionally one code, under
/// the rule tables of one fingerprint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunRange<'a> {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub code: Option<&'a str>,
    pub rules: &'a str,
}

/// Where a run is in its list: the (date of service, encounter) of the
/// last encounter done. A run starts at (`since`, ""), before every
/// encounter of its first day.
pub(crate) type Cursor = (NaiveDate, String);

/// The open run for the same range, code and rule tables (resumed), or a
/// new one: after another import, a run starts over, so no encounter keeps
/// the rules of before. Returns (id, where it is, resumed).
pub(crate) async fn open_run(db: &Db, r: RunRange<'_>) -> anyhow::Result<(i64, Cursor, bool)> {
    let open = on_conn!(db, |c| {
        sqlx::query(
        "SELECT id, coalesce(last_date, since), coalesce(last_encounter, '') FROM reprocess_runs
         WHERE finished_at IS NULL AND since = $1 AND until = $2 AND code IS NOT DISTINCT FROM $3
           AND rules_fingerprint = $4
         ORDER BY id DESC LIMIT 1",
    )
    .bind(r.since)
    .bind(r.until)
    .bind(r.code)
    .bind(r.rules)
    .fetch_optional(&mut *c)
    .await
    .context("Failed to read reprocess_runs")
    });
    if let Some(row) = open {
        return Ok((row.get(0), (row.get(1), row.get(2)), true));
    }
    let id: i64 = on_conn!(db, |c| {
        sqlx::query_scalar(
        "INSERT INTO reprocess_runs (since, until, code, rules_fingerprint) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(r.since)
    .bind(r.until)
    .bind(r.code)
    .bind(r.rules)
    .fetch_one(&mut *c)
    .await
    .context("Failed to start a reprocess run")
    });
    Ok((id, (r.since, String::new()), false))
}

pub(crate) async fn finish_run(db: &Db, id: i64) -> anyhow::Result<()> {
    on_conn!(db, |c| sqlx::query(
        "UPDATE reprocess_runs SET finished_at = now() WHERE id = $1"
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .context("Failed to close the run"));
    Ok(())
}

/// (encounter, patient, NPI, payer, date of service) of the next encounters
/// with lines in force in the range, after `after`, in (date of service,
/// encounter id in bytes) order.
pub(crate) type PageRow = (String, String, String, String, NaiveDate);

pub(crate) async fn next_page(
    db: &Db,
    r: RunRange<'_>,
    after: &Cursor,
    size: u32,
) -> anyhow::Result<Vec<PageRow>> {
    let rows = on_conn!(db, |c| {
        sqlx::query(
            // A page reads on in encounter_payloads_date's order (date, encounter
            // id in bytes) from the cursor and stops at `size` encounters, so a
            // run's pages read the range once between them (migration 0014).
            // Every line in force came from a stored payload of its date, and an
            // encounter's lines in force share one date: each encounter is
            // listed once, on that date. Its lines are a range of claim_lines'
            // primary key; with --code, one of them must bill that code.
            "SELECT DISTINCT ON (p.date_of_service, p.encounter_id) p.encounter_id, c.patient_id,
                c.provider_npi, c.payer_id, c.date_of_service
         FROM encounter_payloads p
         CROSS JOIN LATERAL (
             SELECT * FROM claim_lines c
             WHERE c.claim_line_id > (p.encounter_id || ':') COLLATE \"C\"
               AND c.claim_line_id < (p.encounter_id || ';') COLLATE \"C\"
               AND c.encounter_id = p.encounter_id AND c.status <> 'void'
               AND c.date_of_service = p.date_of_service
               AND ($4::text IS NULL OR c.code = $4) OFFSET 0) AS c
         WHERE p.date_of_service <= $2 AND (p.date_of_service, p.encounter_id) > ($1, $3)
         ORDER BY p.date_of_service, p.encounter_id LIMIT $5",
        )
        .bind(after.0)
        .bind(r.until)
        .bind(&after.1)
        .bind(r.code)
        .bind(i64::from(size))
        .fetch_all(&mut *c)
        .await
        .context("Failed to list encounters to reprocess")
    });
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
}

/// In a page's transaction: where the next page begins, and the counts.
pub(crate) async fn record_progress(
    batch: &mut Batch,
    id: i64,
    last: (NaiveDate, &str),
    encounters: usize,
    changed: u64,
) -> anyhow::Result<()> {
    batch
        .run(async |tx| {
            sqlx::query(
                "UPDATE reprocess_runs SET last_date = $5, last_encounter = $2,
                encounters = encounters + $3, changed = changed + $4 WHERE id = $1",
            )
            .bind(id)
            .bind(last.1)
            .bind(i32::try_from(encounters).unwrap_or(i32::MAX))
            .bind(i32::try_from(changed).unwrap_or(i32::MAX))
            .bind(last.0)
            .execute(tx)
            .await
            .context("Failed to record the run's progress")?;
            Ok(())
        })
        .await
}
