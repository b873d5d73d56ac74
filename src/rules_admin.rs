//! `claimline rules import | list`, and the rule book `claimline evaluate
//! --rules DIR` reads from files: CMS's tables, read by [`crate::cms`],
//! stored by [`crate::store::rules`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::cms::{self, Quarter};
use crate::config::DatabaseArgs;
use crate::domain::rulebook::{Table, TableKind};
use crate::domain::{RuleBook, Rules};
use crate::store;

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The table, where the file name does not say it (CMS's names do:
    /// ccipra-v###r#-f#.txt, MCR_MUE_PractitionerServices_Eff_*.csv,
    /// PPRRVU*.csv): ptp, mue or pfs.
    #[arg(long, value_parser = TableKind::parse)]
    pub kind: Option<TableKind>,
    /// The quarter the table takes over (for example 2026Q2), where the
    /// file name does not say it.
    #[arg(long, value_parser = Quarter::parse)]
    pub quarter: Option<Quarter>,
    /// CMS files in their published layouts (the .txt PTP parts, the MUE
    /// and PPRRVU .csv files).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Reads every file first (all or nothing), then stores each. One line a
/// file on stderr.
pub async fn import(args: &ImportArgs) -> anyhow::Result<String> {
    let rules = Rules::builtin();
    let mut read = Vec::with_capacity(args.files.len());
    for path in &args.files {
        read.push(cms::read_file(path, args.kind, args.quarter, rules)?);
    }
    let pool = store::connect(&args.database.database_url, 1).await?;
    let missing = store::missing_migrations(&pool).await?;
    anyhow::ensure!(
        missing.is_empty(),
        "the database schema is not current (migrations {missing:?}): run `claimline migrate` first"
    );
    let (mut added, mut already) = (0, 0);
    let loaded = store::rules::import(&pool, &read).await?;
    for (file, loaded) in read.iter().zip(loaded) {
        let t = &file.table;
        match loaded {
            store::rules::Loaded::Added { id } => {
                added += 1;
                eprintln!(
                    "{}: {} {} in force from {}: {} of {} rows kept (catalogue codes); table {id}",
                    file.file_name,
                    t.rows.kind().as_str(),
                    t.label,
                    t.valid_from,
                    t.rows.len(),
                    file.rows_read
                );
            }
            store::rules::Loaded::AlreadyLoaded { id } => {
                already += 1;
                eprintln!(
                    "{}: already loaded as table {id}; nothing changed",
                    file.file_name
                );
            }
        }
    }
    Ok(format!(
        "{added} file(s) loaded, {already} already loaded; running instances pick them up within CLAIMLINE_RULES_POLL_SECS"
    ))
}

/// `claimline rules list`: the imported tables and the rule sets they make.
pub async fn list(database: &DatabaseArgs) -> anyhow::Result<String> {
    let pool = store::connect(&database.database_url, 1).await?;
    let tables = store::rules::list(&pool).await?;
    println!("id\tkind\tlabel\tin_force_from\trows_kept\trows_read\tloaded_at\tfile");
    for t in &tables {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            t.id,
            t.kind,
            t.label,
            t.valid_from,
            t.rows_kept,
            t.rows_read,
            t.loaded_at.format("%Y-%m-%dT%H:%M:%SZ"),
            t.file_name
        );
    }
    let book = RuleBook::new(Rules::builtin(), &store::rules::load(&pool).await?);
    println!("\nrules_version by date of service:");
    println!("before any imported table\t{}", Rules::builtin().version);
    for (from, version) in book.periods() {
        println!("from {from}\t{version}");
    }
    Ok(format!("{} table(s) loaded", tables.len()))
}

/// Every CMS file in `dir` (by name: other files are skipped), as a rule book.
pub fn book_from_dir(dir: &Path) -> anyhow::Result<RuleBook> {
    let rules = Rules::builtin();
    let mut tables: Vec<Table> = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the rules directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for path in names {
        match cms::read_file(&path, None, None, rules) {
            Ok(file) => tables.push(file.table),
            Err(cms::ImportError::UnknownKind { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if tables.is_empty() {
        anyhow::bail!("no CMS table files in {}", dir.display());
    }
    Ok(RuleBook::new(rules, &tables))
}
