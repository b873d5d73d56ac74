//! `claimline export --from DATE --to DATE [--status validated|needs_review]
//! [--output PATH|-]`: the billable lines of a date-of-service range as CSV
//! ([`crate::export`]; columns in `docs/export.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;

use super::{report, runtime};
use crate::config::DatabaseArgs;
use crate::export::{ExportOptions, ExportStatus};

#[derive(clap::Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// First date of service (YYYY-MM-DD), inclusive.
    #[arg(long, value_parser = date)]
    from: NaiveDate,
    /// Last date of service (YYYY-MM-DD), inclusive (default: --from).
    #[arg(long, value_parser = date)]
    to: Option<NaiveDate>,
    /// validated: the billable lines (validated, more than 0 units);
    /// needs_review: the review queue (every held line).
    #[arg(long, value_enum, default_value = "validated")]
    status: ExportStatus,
    /// Where to write the CSV; `-` for stdout. A file is written whole or
    /// not at all, readable by its owner only (it holds patient ids).
    #[arg(long, default_value = "-")]
    output: PathBuf,
    /// Lines read from Postgres a query (tests use small pages).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000), hide = true)]
    page_size: u32,
}

fn date(s: &str) -> Result<NaiveDate, String> {
    crate::dates::date::parse(s)
        .ok_or_else(|| format!("{s:?} is not a date: expected YYYY-MM-DD, e.g. 2026-03-02"))
}

pub(super) fn export(args: ExportArgs) -> ExitCode {
    let options = ExportOptions {
        database_url: args.database.database_url,
        from: args.from,
        to: args.to.unwrap_or(args.from),
        status: args.status,
        output: (args.output.as_os_str() != "-").then_some(args.output),
        page_size: args.page_size,
    };
    report(
        "export",
        runtime().block_on(async move {
            let n = crate::export::export(&options).await?;
            let status = match options.status {
                ExportStatus::Validated => "billable",
                ExportStatus::NeedsReview => "held",
            };
            Ok(format!(
                "{n} {status} line(s) of {} to {} exported",
                options.from, options.to
            ))
        }),
    )
}
