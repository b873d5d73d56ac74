//! `claimline rules import | list` ([`crate::pipeline::rules_admin`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{report, runtime};
use crate::cms::{Given, Quarter};
use crate::config::DatabaseArgs;
use crate::domain::rulebook::TableKind;
use crate::pipeline::rules_admin;
use crate::store::rules::Loaded;

#[derive(Subcommand)]
pub(super) enum RulesCommand {
    /// Load CMS files (NCCI PTP, MUE, PPRRVU) into Postgres as effective-dated
    /// rule tables, keeping the catalogue's codes; a file loaded before
    /// changes nothing.
    Import(Box<ImportArgs>),
    /// Show the loaded tables and the rules_version each date of service gets.
    List(ListArgs),
}

#[derive(Args)]
pub(super) struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The versions lines get under this payer policy file (the service's).
    #[command(flatten)]
    policy: crate::config::PolicyArgs,
}

#[derive(Args)]
pub(super) struct ImportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The table, where the file name does not say it (CMS's names do:
    /// ccipra-v###r#-f#.txt, MCR_MUE_PractitionerServices_Eff_*.csv,
    /// PPRRVU*.csv, GPCI2025.csv): ptp, mue, pfs or gpci.
    #[arg(long, value_parser = TableKind::parse)]
    kind: Option<TableKind>,
    /// The quarter the table takes over (for example 2026Q2), where the
    /// file name does not say it; for GPCIs, the year's first quarter.
    #[arg(long, value_parser = Quarter::parse)]
    quarter: Option<Quarter>,
    /// Which of a PTP quarter's four parts (1-4) the one file given is,
    /// where its name does not say it (CMS's: -f1 to -f4).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    part: Option<u8>,
    /// CMS files in their published layouts (the .txt PTP parts, the MUE
    /// and PPRRVU .csv files).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub(super) fn rules(command: RulesCommand) -> ExitCode {
    match command {
        RulesCommand::Import(args) => report("rules import", runtime().block_on(import(&args))),
        RulesCommand::List(args) => report("rules list", runtime().block_on(list(&args))),
    }
}

/// One line a file on stderr.
async fn import(args: &ImportArgs) -> anyhow::Result<String> {
    let given = Given {
        kind: args.kind,
        quarter: args.quarter,
        part: args.part,
    };
    let done = rules_admin::import(&args.database.database_url, &args.files, given).await?;
    let (mut added, mut already) = (0, 0);
    for (file, loaded) in &done.files {
        let t = &file.table;
        match loaded {
            Loaded::Added { id } => {
                added += 1;
                let part = t.part.map(|p| format!(" part f{p}")).unwrap_or_default();
                eprintln!(
                    "{}: {} {}{part} from {}: {} of {} rows kept (catalogue codes); table {id}",
                    file.file_name,
                    t.rows.kind().as_str(),
                    t.label,
                    t.valid_from,
                    t.rows.len(),
                    file.rows_read
                );
            }
            Loaded::AlreadyLoaded { id } => {
                already += 1;
                eprintln!(
                    "{}: already loaded as table {id}; nothing changed",
                    file.file_name
                );
            }
        }
    }
    for p in &done.pending {
        eprintln!("pending: {p}; the parts loaded are kept");
    }
    Ok(format!(
        "{added} file(s) loaded, {already} already loaded, {} PTP quarter(s) pending; running instances pick up what is in force within CLAIMLINE_RULES_POLL_SECS",
        done.pending.len()
    ))
}

/// The imported tables and the rule sets they make.
async fn list(args: &ListArgs) -> anyhow::Result<String> {
    let (database, base) = (&args.database, args.policy.rules()?);
    let (tables, pending, book) = rules_admin::list(&database.database_url, base).await?;
    println!("id\tkind\tlabel\tpart\tstatus\tfrom\trows_kept\trows_read\tloaded_at\tfile");
    for t in &tables {
        let waiting = pending
            .iter()
            .find(|p| t.kind == "ptp" && p.label == t.label && p.valid_from == t.valid_from);
        let status = match waiting {
            Some(p) => format!(
                "pending, not in force (missing {})",
                p.missing
                    .iter()
                    .map(|n| format!("f{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => "complete".to_owned(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{status}\t{}\t{}\t{}\t{}\t{}",
            t.id,
            t.kind,
            t.label,
            t.part
                .map(|p| format!("f{p}"))
                .unwrap_or_else(|| "-".into()),
            t.valid_from,
            t.rows_kept,
            t.rows_read,
            t.loaded_at.format("%Y-%m-%dT%H:%M:%SZ"),
            t.file_name
        );
    }
    println!("\nshipped with claimline (data/cms/, each file's provenance beside it); an imported table of a kind takes over from its own start:");
    println!("kind\tlabel\tin_force_from\trows_kept\tsource\tcoverage\tfile");
    for (file, t) in crate::cms::shipped::files() {
        let source = if file.contains("DERIVED") {
            "CMS's rows as a third party rewrote them (derived)"
        } else {
            "CMS's file, verbatim rows (excerpt)"
        };
        let coverage =
            match &t.coverage {
                None => "the catalogue's codes".to_owned(),
                Some(codes) => format!(
                "pairs of {} only (other pairs: NCCI_NOT_CHECKED until a full quarter is imported)",
                codes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" ")
            ),
            };
        println!(
            "{}\t{}\t{}\t{}\t{source}\t{coverage}\t{file}",
            t.rows.kind().as_str(),
            t.label,
            t.valid_from,
            t.rows.len(),
        );
    }
    let first_mue = crate::cms::shipped::first_mue_date()
        .into_iter()
        .chain(
            tables
                .iter()
                .filter(|t| t.kind == "mue")
                .map(|t| t.valid_from),
        )
        .min();
    if let Some(from) = first_mue {
        println!("MUEs: dates of service before {from} are not MUE-checked (no MUE table for them: import one to check them).");
    }
    println!("\nrules_version by date of service:");
    println!("before any CMS table\t{}", base.version);
    for (from, version) in book.periods() {
        println!("from {from}\t{version}");
    }
    Ok(format!("{} table(s) loaded", tables.len()))
}
