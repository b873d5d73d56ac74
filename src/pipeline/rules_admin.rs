//! `claimline rules import | list`: CMS's tables, read by [`crate::cms`],
//! stored by [`crate::store::rules`].

use std::path::PathBuf;

use crate::cms::{self, Given, Imported};
use crate::domain::rulebook::{pending_ptp, PendingPtp};
use crate::domain::{RuleBook, Rules};
use crate::store::rules::{Listed, Loaded, TableFile};
use crate::store::{self, DatabaseUrl, Db};

/// What an import did: each file with what the store did with it, and the
/// PTP quarters still waiting for parts (not in force).
pub struct Done {
    pub files: Vec<(Imported, Loaded)>,
    pub pending: Vec<PendingPtp>,
}

/// Reads every file first (all or nothing), then stores them in one
/// transaction. A PTP part is kept even while its quarter lacks parts:
/// the quarter is pending, not in force, until the last part arrives.
pub async fn import(
    database_url: &DatabaseUrl,
    files: &[PathBuf],
    given: Given,
) -> anyhow::Result<Done> {
    if given.part.is_some() && files.len() > 1 {
        anyhow::bail!("--part names the part of one file; import the parts one by one or by CMS's names (-f1 to -f4)");
    }
    let rules = Rules::builtin();
    let mut read = Vec::with_capacity(files.len());
    for path in files {
        read.push(cms::read_file(path, given, rules)?);
    }
    let db = Db::connect_current(database_url, 1).await?;
    let stored: Vec<TableFile> = read
        .iter()
        .map(|f| TableFile {
            table: &f.table,
            file_name: &f.file_name,
            sha256: &f.sha256,
            rows_read: f.rows_read,
        })
        .collect();
    let loaded = store::rules::import(&db, &stored).await?;
    let pending = pending_ptp(&store::rules::load(&db).await?);
    Ok(Done {
        files: read.into_iter().zip(loaded).collect(),
        pending,
    })
}

/// The imported tables, and the rule book they make with the built-in data.
pub async fn list(
    database_url: &DatabaseUrl,
    base: &'static Rules,
) -> anyhow::Result<(Vec<Listed>, Vec<PendingPtp>, RuleBook)> {
    let db = Db::connect(database_url, 1).await?;
    let listed = store::rules::list(&db).await?;
    let tables = store::rules::load(&db).await?;
    let pending = pending_ptp(&tables);
    let book = crate::cms::shipped::over(base, &tables);
    Ok((listed, pending, book))
}
