//! `claimline export`: the lines of a date-of-service range in claim-key
//! order, page by page (keyset pages inside one read-only repeatable-read
//! transaction: one consistent snapshot, never the whole range in memory).

use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use sqlx::Row;

use super::Db;

/// Which lines: the billable ones (validated, units > 0) or the review
/// queue (every held line). Void lines are never exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Billable,
    Held,
}

/// The longest one page's query may take.
const PAGE_DEADLINE: Duration = Duration::from_secs(300);

/// One exported line, as stored.
#[derive(Debug, Clone)]
pub(crate) struct ExportRow {
    pub patient_id: String,
    pub provider_npi: String,
    pub payer_id: String,
    pub date_of_service: NaiveDate,
    pub encounter_id: String,
    pub encounter_version: i32,
    pub line_no: i32,
    pub claim_line_id: String,
    pub event_id: String,
    pub code: String,
    pub modifiers: Vec<String>,
    pub units: i32,
    pub minutes: i32,
    pub diagnoses: Vec<String>,
    pub expected_payment_cents: Option<i64>,
    pub unit_method: String,
    pub status: String,
    /// Every flag's code, in the line's order.
    pub flags: Vec<String>,
    /// The codes of its error flags (what holds it).
    pub held_by: Vec<String>,
    pub rules_version: String,
}

/// Calls `each` with every line of `from..=to` that `which` selects, in
/// claim-key order (patient, provider NPI, payer, date of service), then
/// encounter and line number, `page` lines a query. Returns the number of
/// lines.
pub(crate) async fn each_line(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
    which: Which,
    page: u32,
    mut each: impl FnMut(ExportRow) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut tx = db
        .pool
        .begin()
        .await
        .context("Failed to begin the export")?;
    sqlx::raw_sql(&format!(
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;
         SET LOCAL statement_timeout = '{}s'",
        PAGE_DEADLINE.as_secs()
    ))
    .execute(&mut *tx)
    .await
    .context("Failed to start the export's snapshot")?;
    let filter = match which {
        Which::Billable => "status = 'validated' AND units > 0",
        Which::Held => "status = 'needs_review'",
    };
    let sql = format!(
        "SELECT patient_id, provider_npi, payer_id, date_of_service, encounter_id,
                encounter_version, line_no, claim_line_id, event_id, code, modifiers,
                units, minutes, diagnoses, expected_payment_cents, unit_method, status,
                ARRAY(SELECT f ->> 'code' FROM jsonb_array_elements(flags) AS f) AS flag_codes,
                ARRAY(SELECT f ->> 'code' FROM jsonb_array_elements(flags) AS f
                      WHERE f ->> 'severity' = 'error') AS held_by,
                rules_version
         FROM claim_lines
         WHERE date_of_service BETWEEN $1 AND $2 AND {filter}
           AND ($3 OR (patient_id COLLATE \"C\", provider_npi COLLATE \"C\",
                       payer_id COLLATE \"C\", date_of_service, encounter_id COLLATE \"C\",
                       line_no, claim_line_id COLLATE \"C\")
                    > ($4, $5, $6, $7, $8, $9, $10))
         ORDER BY patient_id COLLATE \"C\", provider_npi COLLATE \"C\", payer_id COLLATE \"C\",
                  date_of_service, encounter_id COLLATE \"C\", line_no, claim_line_id COLLATE \"C\"
         LIMIT {page}"
    );
    let mut after: Option<ExportRow> = None;
    let mut n = 0u64;
    loop {
        let a = after.as_ref();
        let page_rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(a.is_none())
            .bind(a.map(|r| r.patient_id.as_str()).unwrap_or_default())
            .bind(a.map(|r| r.provider_npi.as_str()).unwrap_or_default())
            .bind(a.map(|r| r.payer_id.as_str()).unwrap_or_default())
            .bind(a.map(|r| r.date_of_service).unwrap_or(from))
            .bind(a.map(|r| r.encounter_id.as_str()).unwrap_or_default())
            .bind(a.map(|r| r.line_no).unwrap_or_default())
            .bind(a.map(|r| r.claim_line_id.as_str()).unwrap_or_default())
            .fetch_all(&mut *tx);
        // The server's statement timeout bounds the query; this bounds the
        // wait on a connection that went silent.
        let rows = tokio::time::timeout(PAGE_DEADLINE + Duration::from_secs(5), page_rows)
            .await
            .map_err(|_| anyhow::anyhow!("Postgres did not answer within {PAGE_DEADLINE:?}"))?
            .context("Failed to read claim_lines for the export")?;
        let full = rows.len() == page as usize;
        let last = rows.len().saturating_sub(1);
        for (i, row) in rows.into_iter().enumerate() {
            let line = ExportRow {
                patient_id: row.get("patient_id"),
                provider_npi: row.get("provider_npi"),
                payer_id: row.get("payer_id"),
                date_of_service: row.get("date_of_service"),
                encounter_id: row.get("encounter_id"),
                encounter_version: row.get("encounter_version"),
                line_no: row.get("line_no"),
                claim_line_id: row.get("claim_line_id"),
                event_id: row.get("event_id"),
                code: row.get("code"),
                modifiers: row.get("modifiers"),
                units: row.get("units"),
                minutes: row.get("minutes"),
                diagnoses: row.get("diagnoses"),
                expected_payment_cents: row.get("expected_payment_cents"),
                unit_method: row.get("unit_method"),
                status: row.get("status"),
                flags: row.get("flag_codes"),
                held_by: row.get("held_by"),
                rules_version: row.get("rules_version"),
            };
            if i == last {
                // The next page starts after the key of this one's last row.
                after = Some(line.clone());
            }
            each(line)?;
            n += 1;
        }
        if !full {
            break;
        }
    }
    tx.commit().await.context("Failed to end the export")?;
    Ok(n)
}
