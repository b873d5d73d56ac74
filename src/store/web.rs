//! What `claimline web` reads: the views of migration 0008 (and nothing
//! else, so its role needs SELECT on those views alone). Every call runs
//! under the pool's statement timeout and a deadline of its own: a
//! database that does not answer is an error, never a hang.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Db;

/// The held-lines queue's filters; `None` (or empty) filters nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldFilter {
    pub payer: Option<String>,
    pub plan: Option<String>,
    pub discipline: Option<String>,
    pub flag: Option<String>,
    pub npi: Option<String>,
    pub dos_from: Option<NaiveDate>,
    pub dos_to: Option<NaiveDate>,
    pub held_days: Option<i32>,
    /// Encounters by the total they hold (largest first) instead of by
    /// how long they have been held (longest first).
    pub by_amount: bool,
    pub limit: i64,
}

/// A flag as the line carries it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct FlagRow {
    pub code: String,
    pub severity: String,
    pub message: String,
}

/// One held line. No `Debug`: it holds a patient id.
pub(crate) struct HeldRow {
    pub encounter_id: String,
    pub encounter_version: i32,
    pub date_of_service: NaiveDate,
    pub patient_id: String,
    pub provider_npi: String,
    pub discipline: Option<String>,
    pub payer_id: String,
    pub plan: Option<String>,
    pub line_no: i32,
    pub code: String,
    pub units: i32,
    pub modifiers: Vec<String>,
    pub expected_payment_cents: Option<i64>,
    pub flags: Vec<FlagRow>,
    pub held_since: DateTime<Utc>,
}

/// The queue: the lines (at most `limit`, grouped by encounter in the
/// order asked) and, over every line the filters match, their count and
/// the total expected amount they hold.
pub(crate) struct Held {
    pub rows: Vec<HeldRow>,
    pub total_lines: i64,
    pub total_cents: i64,
}

/// One patient's year-to-date therapy amount in one group. No `Debug`.
pub(crate) struct KxRow {
    pub patient_id: String,
    pub kx_group: String,
    pub ytd_cents: i64,
    pub lines: i64,
    pub last_date_of_service: NaiveDate,
    /// The date of service of the line that took the amount past the
    /// threshold, in the order processed.
    pub kx_crossed: Option<NaiveDate>,
    pub review_crossed: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub(crate) struct DailyRow {
    pub date_of_service: NaiveDate,
    pub payer_id: String,
    pub status: String,
    pub billable_lines: i64,
    pub not_billable_lines: i64,
    pub units: i64,
    pub expected_payment_cents: i64,
}

/// Runs `f` under `deadline`: past it, an error naming the step.
async fn within<T>(
    deadline: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(deadline, f).await {
        Ok(r) => r.with_context(|| format!("Failed to read {what}")),
        Err(_) => anyhow::bail!("Postgres did not answer within {deadline:?} ({what})"),
    }
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Db {
    pub(crate) async fn web_held(
        &self,
        f: &HeldFilter,
        deadline: Duration,
    ) -> anyhow::Result<Held> {
        let order = if f.by_amount {
            "sum(coalesce(expected_payment_cents, 0)) OVER (PARTITION BY encounter_id) DESC"
        } else {
            "min(held_since) OVER (PARTITION BY encounter_id)"
        };
        let sql = format!(
            "SELECT encounter_id, encounter_version, date_of_service, patient_id, provider_npi,
                    discipline, payer_id, plan, line_no, code, units, modifiers,
                    expected_payment_cents, flags, held_since,
                    count(*) OVER () AS total_lines,
                    coalesce(sum(coalesce(expected_payment_cents, 0)) OVER (), 0)::bigint AS total_cents
             FROM web_held_lines
             WHERE ($1::text IS NULL OR payer_id = $1)
               AND ($2::text IS NULL OR plan = $2)
               AND ($3::text IS NULL OR discipline = $3)
               AND ($4::text IS NULL OR flags @> jsonb_build_array(jsonb_build_object('code', $4::text)))
               AND ($5::text IS NULL OR provider_npi = $5)
               AND ($6::date IS NULL OR date_of_service >= $6)
               AND ($7::date IS NULL OR date_of_service <= $7)
               AND ($8::int IS NULL OR held_since < now() - make_interval(days => $8))
             ORDER BY {order}, encounter_id, line_no
             LIMIT $9"
        );
        let rows = within(
            deadline,
            "the held lines",
            sqlx::query(&sql)
                .bind(some(&f.payer))
                .bind(some(&f.plan))
                .bind(some(&f.discipline))
                .bind(some(&f.flag))
                .bind(some(&f.npi))
                .bind(f.dos_from)
                .bind(f.dos_to)
                .bind(f.held_days)
                .bind(f.limit)
                .fetch_all(&self.pool),
        )
        .await?;
        let mut held = Held {
            rows: Vec::with_capacity(rows.len()),
            total_lines: 0,
            total_cents: 0,
        };
        for r in rows {
            held.total_lines = r.get("total_lines");
            held.total_cents = r.get("total_cents");
            let flags: serde_json::Value = r.get("flags");
            held.rows.push(HeldRow {
                encounter_id: r.get("encounter_id"),
                encounter_version: r.get("encounter_version"),
                date_of_service: r.get("date_of_service"),
                patient_id: r.get("patient_id"),
                provider_npi: r.get("provider_npi"),
                discipline: r.get("discipline"),
                payer_id: r.get("payer_id"),
                plan: r.get("plan"),
                line_no: r.get("line_no"),
                code: r.get("code"),
                units: r.get("units"),
                modifiers: r.get("modifiers"),
                expected_payment_cents: r.get("expected_payment_cents"),
                flags: serde_json::from_value(flags).context("a line's flags")?,
                held_since: r.get("held_since"),
            });
        }
        Ok(held)
    }

    /// Patients of `year` whose amount in a group is at least
    /// `kx_cents - margin_cents`, largest first.
    pub(crate) async fn web_kx_watch(
        &self,
        year: i32,
        kx_cents: i64,
        review_cents: i64,
        margin_cents: i64,
        deadline: Duration,
    ) -> anyhow::Result<Vec<KxRow>> {
        let rows = within(
            deadline,
            "the year-to-date amounts",
            sqlx::query(
                "SELECT patient_id, kx_group, max(ytd_cents)::bigint AS ytd, count(*) AS lines,
                        max(date_of_service) AS last_dos,
                        (array_agg(date_of_service ORDER BY created_at, claim_line_id)
                            FILTER (WHERE ytd_cents > $2))[1] AS kx_crossed,
                        (array_agg(date_of_service ORDER BY created_at, claim_line_id)
                            FILTER (WHERE ytd_cents > $3))[1] AS review_crossed
                 FROM web_kx_running
                 WHERE year = $1
                 GROUP BY patient_id, kx_group
                 HAVING max(ytd_cents) >= $2 - $4
                 ORDER BY ytd DESC, kx_group, patient_id",
            )
            .bind(year)
            .bind(kx_cents)
            .bind(review_cents)
            .bind(margin_cents)
            .fetch_all(&self.pool),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| KxRow {
                patient_id: r.get("patient_id"),
                kx_group: r.get("kx_group"),
                ytd_cents: r.get("ytd"),
                lines: r.get("lines"),
                last_date_of_service: r.get("last_dos"),
                kx_crossed: r.get("kx_crossed"),
                review_crossed: r.get("review_crossed"),
            })
            .collect())
    }

    pub(crate) async fn web_daily(
        &self,
        payer: Option<&str>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        deadline: Duration,
    ) -> anyhow::Result<Vec<DailyRow>> {
        let payer = payer.map(str::trim).filter(|p| !p.is_empty());
        let rows = within(
            deadline,
            "the daily totals",
            sqlx::query(
                "SELECT date_of_service, payer_id, status, billable_lines, not_billable_lines,
                        units, expected_payment_cents
                 FROM web_daily_totals
                 WHERE ($1::text IS NULL OR payer_id = $1)
                   AND ($2::date IS NULL OR date_of_service >= $2)
                   AND ($3::date IS NULL OR date_of_service <= $3)
                 ORDER BY date_of_service DESC, payer_id, status DESC
                 LIMIT 10000",
            )
            .bind(payer)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DailyRow {
                date_of_service: r.get("date_of_service"),
                payer_id: r.get("payer_id"),
                status: r.get("status"),
                billable_lines: r.get("billable_lines"),
                not_billable_lines: r.get("not_billable_lines"),
                units: r.get("units"),
                expected_payment_cents: r.get("expected_payment_cents"),
            })
            .collect())
    }
}

/// The SQLSTATE of a Postgres error in `e`'s chain, for the log.
pub(crate) fn sqlstate_in(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(super::sqlstate)
}
