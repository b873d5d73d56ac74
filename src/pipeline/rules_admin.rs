//! `claimline rules import | list`: CMS's tables, read by [`crate::cms`],
//! stored by [`crate::store::rules`].

use std::path::PathBuf;

use crate::cms::{self, Imported, Quarter};
use crate::domain::rulebook::TableKind;
use crate::domain::{RuleBook, Rules};
use crate::store::rules::{Listed, Loaded, TableFile};
use crate::store::{self, DatabaseUrl, Db};

/// Reads every file first (all or nothing), then stores them in one
/// transaction. Each file with what the store did with it.
pub async fn import(
    database_url: &DatabaseUrl,
    files: &[PathBuf],
    kind: Option<TableKind>,
    quarter: Option<Quarter>,
) -> anyhow::Result<Vec<(Imported, Loaded)>> {
    let rules = Rules::builtin();
    let mut read = Vec::with_capacity(files.len());
    for path in files {
        read.push(cms::read_file(path, kind, quarter, rules)?);
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
    Ok(read.into_iter().zip(loaded).collect())
}

/// The imported tables, and the rule book they make with the built-in data.
pub async fn list(
    database_url: &DatabaseUrl,
    base: &'static Rules,
) -> anyhow::Result<(Vec<Listed>, RuleBook)> {
    let db = Db::connect(database_url, 1).await?;
    let tables = store::rules::list(&db).await?;
    let book = crate::cms::shipped::over(base, &store::rules::load(&db).await?);
    Ok((tables, book))
}
