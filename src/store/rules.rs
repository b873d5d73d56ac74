//! Imported CMS tables (`rule_tables`, migration 0006): written by
//! `claimline rules import`, read at start-up and whenever they change by
//! every running instance.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::{on_conn, Db};

use crate::domain::rulebook::{Origin, Table, TableRows};

/// A read CMS file, as the store keeps it.
pub(crate) struct TableFile<'a> {
    pub table: &'a Table,
    pub file_name: &'a str,
    pub sha256: &'a str,
    /// Data rows in the file; `table.rows` keeps the catalogue's.
    pub rows_read: usize,
}

/// Whether an import added the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Loaded {
    Added {
        id: i64,
    },
    /// The same file (kind and bytes) was imported before: nothing changed.
    AlreadyLoaded {
        id: i64,
    },
}

/// Stores the read files in one transaction, so a running instance never
/// sees a table with some of its parts (the PTP table comes in four); a
/// file already loaded changes nothing. Running instances see them at their
/// next poll or batch.
pub(crate) async fn import(db: &Db, files: &[TableFile<'_>]) -> anyhow::Result<Vec<Loaded>> {
    Ok(on_conn!(db, |c| {
        let mut tx = sqlx::Connection::begin(&mut *c)
            .await
            .context("Failed to begin a transaction")?;
        let mut loaded = Vec::with_capacity(files.len());
        for file in files {
            let content = serde_json::to_value(&file.table.rows).context("encode the table")?;
            let kind = file.table.rows.kind().as_str();
            let added: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rule_tables (kind, label, valid_from, file_name, file_sha256, rows_read, rows_kept, content, part)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (kind, file_sha256) DO NOTHING RETURNING id",
        )
        .bind(kind)
        .bind(&file.table.label)
        .bind(file.table.valid_from)
        .bind(file.file_name)
        .bind(file.sha256)
        .bind(i32::try_from(file.rows_read).unwrap_or(i32::MAX))
        .bind(i32::try_from(file.table.rows.len()).unwrap_or(i32::MAX))
        .bind(content)
        .bind(file.table.part.map(i16::from))
        .fetch_optional(&mut *tx)
        .await
        .context("Failed to store the rule table")?;
            loaded.push(match added {
                Some(id) => Loaded::Added { id },
                None => Loaded::AlreadyLoaded {
                    id: sqlx::query_scalar(
                        "SELECT id FROM rule_tables WHERE kind = $1 AND file_sha256 = $2",
                    )
                    .bind(kind)
                    .bind(file.sha256)
                    .fetch_one(&mut *tx)
                    .await
                    .context("Failed to look up the rule table")?,
                },
            });
        }
        tx.commit().await.context("Failed to commit the import")?;
        Ok::<_, anyhow::Error>(loaded)
    }))
}

/// Changes when a table is added or removed: (count, newest id).
pub(crate) async fn fingerprint(db: &Db) -> anyhow::Result<(i64, i64)> {
    Ok(on_conn!(db, |c| fingerprint_on(c).await))
}

/// [`fingerprint`] on a connection of the caller's (a batch without
/// encounters reads it in its transaction).
pub(super) async fn fingerprint_on(c: &mut sqlx::PgConnection) -> anyhow::Result<(i64, i64)> {
    let row = sqlx::query("SELECT count(*), coalesce(max(id), 0) FROM rule_tables")
        .fetch_one(&mut *c)
        .await
        .context("Failed to read the rule tables")?;
    Ok((row.get(0), row.get(1)))
}

/// Every imported table, oldest first.
pub(crate) async fn load(db: &Db) -> anyhow::Result<Vec<Table>> {
    let rows = on_conn!(db, |c| sqlx::query(
        "SELECT label, valid_from, content, part FROM rule_tables ORDER BY id"
    )
    .fetch_all(&mut *c)
    .await
    .context("Failed to load the rule tables"));
    rows.into_iter()
        .map(|r| {
            let rows: TableRows =
                serde_json::from_value(r.get(2)).context("A stored rule table does not decode")?;
            Ok(Table {
                label: r.get(0),
                valid_from: r.get(1),
                rows,
                origin: Origin::Imported,
                // Imported tables are CMS's whole files; a PTP quarter is
                // in force once all four parts are here.
                coverage: None,
                part: r
                    .get::<Option<i16>, _>(3)
                    .and_then(|p| u8::try_from(p).ok()),
            })
        })
        .collect()
}

/// One imported file, for `claimline rules list`.
#[derive(Debug)]
pub(crate) struct Listed {
    pub id: i64,
    pub part: Option<i16>,
    pub kind: String,
    pub label: String,
    pub valid_from: NaiveDate,
    pub file_name: String,
    pub rows_read: i32,
    pub rows_kept: i32,
    pub loaded_at: DateTime<Utc>,
}

pub(crate) async fn list(db: &Db) -> anyhow::Result<Vec<Listed>> {
    let rows = on_conn!(db, |c| sqlx::query(
        "SELECT id, kind, label, valid_from, file_name, rows_read, rows_kept, loaded_at, part
         FROM rule_tables ORDER BY valid_from, kind, id",
    )
    .fetch_all(&mut *c)
    .await
    .context("Failed to list the rule tables"));
    Ok(rows
        .into_iter()
        .map(|r| Listed {
            id: r.get(0),
            kind: r.get(1),
            label: r.get(2),
            valid_from: r.get(3),
            file_name: r.get(4),
            rows_read: r.get(5),
            rows_kept: r.get(6),
            loaded_at: r.get(7),
            part: r.get(8),
        })
        .collect())
}
