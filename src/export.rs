//! `claimline export`: the billable lines of a date-of-service range (or
//! the review queue) as CSV, one row per line, grouped by claim key
//! (patient, provider NPI, payer, date of service). The columns are
//! documented in `docs/export.md` (a test keeps the two the same). Rows
//! stream from [`crate::store::export`] to the writer a page at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;

use crate::store::export::{each_line, ExportRow, Which};
use crate::store::{DatabaseUrl, Db};

/// The CSV columns, in order.
pub const COLUMNS: [&str; 24] = [
    "claim_no",
    "patient_id",
    "provider_npi",
    "payer_id",
    "date_of_service",
    "encounter_id",
    "encounter_version",
    "line_no",
    "claim_line_id",
    "code",
    "modifier_1",
    "modifier_2",
    "modifier_3",
    "modifier_4",
    "units",
    "minutes",
    "diagnoses",
    "expected_payment",
    "status",
    "held_by",
    "flags",
    "unit_method",
    "rules_version",
    "event_id",
];

/// Which lines an export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportStatus {
    /// Billable: validated, more than 0 units (void lines never).
    Validated,
    /// The review queue: every held line.
    #[value(name = "needs_review")]
    NeedsReview,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub database_url: DatabaseUrl,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub status: ExportStatus,
    /// `None`: stdout.
    pub output: Option<PathBuf>,
    /// Lines read a query (memory is bounded by it, not by the range).
    pub page_size: u32,
}

/// Runs the export; returns the number of lines written.
pub async fn export(o: &ExportOptions) -> anyhow::Result<u64> {
    anyhow::ensure!(
        o.to >= o.from,
        "--to {} is before --from {}: the range is inclusive, give --to on or after --from",
        o.to,
        o.from
    );
    let db = Db::connect_current(&o.database_url, 1).await?;
    let which = match o.status {
        ExportStatus::Validated => Which::Billable,
        ExportStatus::NeedsReview => Which::Held,
    };
    match &o.output {
        None => {
            let n = write_csv(&db, o, which, std::io::stdout().lock()).await?;
            Ok(n)
        }
        Some(path) => {
            // Written beside the target and renamed once complete, so a
            // failed export never leaves a partial file under its name.
            let tmp = temp_path(path);
            let file =
                create_private(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let result = write_csv(&db, o, which, std::io::BufWriter::new(file)).await;
            match result {
                Ok(n) => {
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    Ok(n)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// The file holds PHI: readable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

async fn write_csv(
    db: &Db,
    o: &ExportOptions,
    which: Which,
    out: impl Write,
) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    let mut claim_no = 0u64;
    let mut key: Option<(String, String, String, NaiveDate)> = None;
    let n = each_line(db, o.from, o.to, which, o.page_size, |line| {
        let k = (
            line.patient_id.clone(),
            line.provider_npi.clone(),
            line.payer_id.clone(),
            line.date_of_service,
        );
        if key.as_ref() != Some(&k) {
            claim_no += 1;
            key = Some(k);
        }
        w.write_record(record(claim_no, &line))
            .context("cannot write the export")?;
        Ok(())
    })
    .await?;
    w.flush().context("cannot write the export")?;
    Ok(n)
}

/// One row, in [`COLUMNS`] order.
fn record(claim_no: u64, l: &ExportRow) -> [String; 24] {
    let modifier = |i: usize| l.modifiers.get(i).cloned().unwrap_or_default();
    [
        claim_no.to_string(),
        l.patient_id.clone(),
        l.provider_npi.clone(),
        l.payer_id.clone(),
        l.date_of_service.to_string(),
        l.encounter_id.clone(),
        l.encounter_version.to_string(),
        l.line_no.to_string(),
        l.claim_line_id.clone(),
        l.code.clone(),
        modifier(0),
        modifier(1),
        modifier(2),
        modifier(3),
        l.units.to_string(),
        l.minutes.to_string(),
        l.diagnoses.join(";"),
        l.expected_payment_cents.map(dollars).unwrap_or_default(),
        l.status.clone(),
        l.held_by.join(";"),
        l.flags.join(";"),
        l.unit_method.clone(),
        l.rules_version.clone(),
        l.event_id.clone(),
    ]
}

/// Cents as dollars with two decimals (`123.45`).
fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_dollars_with_two_decimals() {
        assert_eq!(dollars(12345), "123.45");
        assert_eq!(dollars(5), "0.05");
        assert_eq!(dollars(-250), "-2.50");
    }

    #[test]
    fn every_column_is_documented() {
        let doc = include_str!("../docs/export.md");
        for c in COLUMNS {
            assert!(
                doc.contains(&format!("| `{c}` |")),
                "docs/export.md lacks {c}"
            );
        }
    }
}
