//! CMS's published rule files, read in their own layouts and reduced to the
//! codes of claimline's catalogue (`claimline rules import`, `claimline
//! evaluate --rules DIR`):
//!
//! - [`ptp`]: the NCCI practitioner PTP edit table (`ccipra-v321r0-f1.txt`);
//! - [`mue`]: the NCCI practitioner services MUE table
//!   (`MCR_MUE_PractitionerServices_Eff_04-01-2026.csv`);
//! - [`pprrvu`]: the physician fee schedule RVU file
//!   (`PPRRVU2026_Jan_nonQPP.csv`);
//! - [`gpci`]: the year's GPCIs by Medicare locality (`GPCI2025.csv`).
//!
//! Each file is streamed through [`source`]: linear in the file, memory
//! bounded by the rows kept. Which table a file is, its quarter and (PTP)
//! its part follow from the file name as CMS names it; `--kind`,
//! `--quarter` and `--part` say it for a renamed file.
//! Errors name the file's line and the column, never a row's content
//! beyond the code.

mod gpci;
mod mue;
mod pprrvu;
mod ptp;
pub mod shipped;
mod source;

use std::path::{Path, PathBuf};

use anyhow::Context;

use chrono::NaiveDate;

use source::{RowError, Source};

use crate::domain::rulebook::{Origin, Table, TableKind, TableRows};
use crate::domain::{Code, RuleBook, Rules};

/// A file read: its table, what it was, and how many rows it had.
#[derive(Debug)]
pub struct Imported {
    pub table: Table,
    pub file_name: String,
    pub sha256: String,
    /// Data rows in the file; `table.rows` keeps the catalogue's.
    pub rows_read: usize,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("{file}: cannot tell which CMS table this is from its name; pass --kind ptp|mue|pfs")]
    UnknownKind { file: String },
    #[error("{file}: cannot tell the quarter from its name; pass --quarter (for example 2026Q2)")]
    UnknownQuarter { file: String },
    #[error("{file}, line {line}{}: {problem}", column.map(|(n, heading)| format!(", column {n} ({heading})")).unwrap_or_default())]
    Row {
        file: String,
        line: u64,
        column: Option<(usize, &'static str)>,
        problem: String,
    },
    #[error("{file}: {problem}")]
    File { file: String, problem: String },
}

/// When a table takes over: a quarter (`2026Q2`), or a date as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    pub year: i32,
    pub quarter: u32,
}

impl Quarter {
    pub fn parse(s: &str) -> Result<Quarter, String> {
        let bad = || format!("{s:?} is not a quarter like 2026Q2");
        let (y, q) = s.split_once(['Q', 'q']).ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let quarter: u32 = q.parse().map_err(|_| bad())?;
        if !(1990..=2200).contains(&year) || !(1..=4).contains(&quarter) {
            return Err(bad());
        }
        Ok(Quarter { year, quarter })
    }

    fn of(date: NaiveDate) -> Quarter {
        use chrono::Datelike;
        Quarter {
            year: date.year(),
            quarter: date.month0() / 3 + 1,
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, (self.quarter - 1) * 3 + 1, 1).expect("valid quarter")
    }

    fn label(self) -> String {
        format!("{}Q{}", self.year, self.quarter)
    }
}

impl TableKind {
    pub fn parse(s: &str) -> Result<TableKind, String> {
        match s {
            "ptp" => Ok(TableKind::Ptp),
            "mue" => Ok(TableKind::Mue),
            "pfs" | "pprrvu" => Ok(TableKind::Pfs),
            "gpci" => Ok(TableKind::Gpci),
            _ => Err(format!("{s:?}: expected ptp, mue, pfs or gpci")),
        }
    }
}

/// What the command line says of a file, where its name does not.
#[derive(Debug, Default, Clone, Copy)]
pub struct Given {
    pub kind: Option<TableKind>,
    /// The quarter a PTP or MUE table takes over; for a GPCI table, the
    /// year; for a PPRRVU file, the release's first quarter.
    pub quarter: Option<Quarter>,
    /// Which of a PTP quarter's four parts (1-4) the file is.
    pub part: Option<u8>,
}

/// Reads one CMS file, streamed: memory holds the rows kept, not the file.
pub fn read_file(path: &Path, given: Given, rules: &Rules) -> Result<Imported, ImportError> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let opened = std::fs::File::open(path).map_err(|e| ImportError::File {
        file: file.clone(),
        problem: format!("cannot read it: {e}"),
    })?;
    read_from(&file, opened, given, rules)
}

/// Reads one CMS file's bytes, named `file`.
pub fn read_bytes(
    file: &str,
    bytes: &[u8],
    given: Given,
    rules: &Rules,
) -> Result<Imported, ImportError> {
    read_from(file, bytes, given, rules)
}

/// Reads one CMS file from `reader`, named `file`.
pub fn read_from(
    file: &str,
    reader: impl std::io::Read,
    given: Given,
    rules: &Rules,
) -> Result<Imported, ImportError> {
    let kind = given
        .kind
        .or_else(|| kind_of(file))
        .ok_or_else(|| ImportError::UnknownKind { file: file.into() })?;
    let in_catalogue = |code: Code| rules.catalogue.get_code(&code).is_some();
    let unknown_quarter = || ImportError::UnknownQuarter { file: file.into() };
    let (label, valid_from) = match kind {
        TableKind::Ptp | TableKind::Mue => {
            let (q, revision) = given
                .quarter
                .map(|q| (q, 0))
                .or_else(|| quarter_of(kind, file))
                .ok_or_else(unknown_quarter)?;
            let label = match revision {
                0 => q.label(),
                r => format!("{}r{r}", q.label()),
            };
            (label, q.first_day())
        }
        TableKind::Pfs => {
            let f = file.to_ascii_lowercase();
            if f.contains("_qpp") || f.contains("-qpp") {
                return Err(ImportError::File {
                    file: file.into(),
                    problem: "this is the fee schedule with the qualifying-APM-participant conversion factor; import the nonQPP file (claimline estimates the non-QP payment)".into(),
                });
            }
            match given.quarter {
                Some(q) => (q.label(), q.first_day()),
                None => pprrvu::release_of(file).ok_or_else(unknown_quarter)?,
            }
        }
        TableKind::Gpci => {
            let year = given
                .quarter
                .map(|q| q.year)
                .or_else(|| gpci::year_of(file))
                .ok_or_else(|| ImportError::File {
                    file: file.into(),
                    problem:
                        "cannot tell the year from its name (GPCI2025.csv); pass --quarter 2025Q1"
                            .into(),
                })?;
            (
                year.to_string(),
                NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(unknown_quarter)?,
            )
        }
    };
    let part = match kind {
        TableKind::Ptp => given.part.or_else(|| part_of(file)),
        _ => None,
    };
    let source = Source::new(reader);
    let digest = source.digest();
    let row_error = |e: RowError| ImportError::Row {
        file: file.into(),
        line: e.line,
        column: e.column,
        problem: e.problem,
    };
    let (rows, rows_read) = match kind {
        TableKind::Ptp => {
            let reader = std::io::BufReader::with_capacity(1 << 16, source);
            let (rows, n) = ptp::parse(reader, in_catalogue).map_err(row_error)?;
            (TableRows::Ptp(rows), n)
        }
        TableKind::Mue => {
            let (rows, n) = mue::parse(source, in_catalogue).map_err(row_error)?;
            (TableRows::Mue(rows), n)
        }
        TableKind::Pfs => {
            let (rows, n) = pprrvu::parse(source, in_catalogue).map_err(row_error)?;
            (TableRows::Pfs(rows), n)
        }
        TableKind::Gpci => {
            let (rows, n) = gpci::parse(source).map_err(row_error)?;
            (TableRows::Gpci(rows), n)
        }
    };
    if rows_read == 0 {
        return Err(ImportError::File {
            file: file.into(),
            problem: format!("no {} rows found: is it the right file?", kind.as_str()),
        });
    }
    Ok(Imported {
        table: Table {
            label,
            valid_from,
            rows,
            origin: Origin::Imported,
            coverage: None,
            part,
        },
        file_name: file.into(),
        sha256: digest.hex(),
        rows_read,
    })
}

/// `ccipra-v323r0-f2.txt`: part 2 of the quarter's four.
fn part_of(file: &str) -> Option<u8> {
    let f = file.to_ascii_lowercase();
    let at = f.rfind("-f").or_else(|| f.rfind("_f"))? + 2;
    let digit = *f.as_bytes().get(at)?;
    let after = f.as_bytes().get(at + 1);
    ((b'1'..=b'4').contains(&digit) && matches!(after, None | Some(b'.' | b'_' | b'-')))
        .then_some(digit - b'0')
}

/// The table a CMS file name names: the practitioner tables only (the
/// outpatient-hospital and DME tables are other edits).
fn kind_of(file: &str) -> Option<TableKind> {
    let f = file.to_ascii_lowercase();
    let practitioner = f.contains("practitioner");
    if f.contains("ccipra") || (f.contains("ptp") && practitioner) {
        Some(TableKind::Ptp)
    } else if f.contains("mue") && practitioner {
        Some(TableKind::Mue)
    } else if f.contains("pprrvu") {
        Some(TableKind::Pfs)
    } else if f.starts_with("gpci") {
        Some(TableKind::Gpci)
    } else {
        None
    }
}

/// PTP: NCCI version `vYYQrR` (`ccipra-v321r0`: version 32.1, revision 0)
/// is year 1994 + 32, quarter 1 + 1: 2026 Q2; a revision of the quarter's
/// table (`r1`) is labelled `2026Q2r1` and replaces `r0`. MUE: the date in
/// the name (`..._Eff_04-01-2026.csv`).
fn quarter_of(kind: TableKind, file: &str) -> Option<(Quarter, u32)> {
    let f = file.to_ascii_lowercase();
    match kind {
        TableKind::Ptp => {
            let at = f.find("-v").or_else(|| f.find("_v"))? + 2;
            let v = f.get(at..at + 3)?;
            if !v.bytes().all(|b| b.is_ascii_digit()) || f.as_bytes().get(at + 3) != Some(&b'r') {
                return None;
            }
            let revision: u32 = f[at + 4..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0);
            let major: i32 = v[..2].parse().ok()?;
            let minor: u32 = v[2..].parse().ok()?;
            (minor <= 3).then_some((
                Quarter {
                    year: 1994 + major,
                    quarter: minor + 1,
                },
                revision,
            ))
        }
        TableKind::Mue => {
            let at = f.find("eff_")? + 4;
            let d = f.get(at..at + 10)?;
            let date = NaiveDate::parse_from_str(d, "%m-%d-%Y").ok()?;
            Some((Quarter::of(date), 0))
        }
        TableKind::Pfs | TableKind::Gpci => None,
    }
}

/// A HCPCS/CPT code as CMS's tables print it (five characters).
fn code_cell(cell: &str) -> Option<Code> {
    let c = cell.trim();
    (c.len() == 5).then(|| Code::parse(c).ok()).flatten()
}

/// `YYYYMMDD`.
fn yyyymmdd(cell: &str) -> Option<NaiveDate> {
    let c = cell.trim();
    if c.len() != 8 {
        return None;
    }
    NaiveDate::parse_from_str(c, "%Y%m%d").ok()
}

#[cfg(test)]
mod tests;

/// Every CMS file in `dir` (by name: other files are skipped), as a rule
/// book over `base`.
pub fn book_from_dir(dir: &Path, base: &'static Rules) -> anyhow::Result<RuleBook> {
    let rules = Rules::builtin();
    let mut tables: Vec<Table> = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the rules directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for path in names {
        match read_file(&path, Given::default(), rules) {
            Ok(file) => tables.push(file.table),
            Err(ImportError::UnknownKind { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if tables.is_empty() {
        anyhow::bail!("no CMS table files in {}", dir.display());
    }
    if let Some(p) = crate::domain::rulebook::pending_ptp(&tables).first() {
        anyhow::bail!("{}: {p}", dir.display());
    }
    Ok(shipped::over(base, &tables))
}
