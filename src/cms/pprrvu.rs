//! The physician fee schedule's RVU file as CMS distributes it in each
//! release (`RVU26A.zip`: `PPRRVU2026_Jan_nonQPP.csv`): CSV, a preamble of
//! notes, a header split over two rows (`STATUS` over `CODE`, `WORK` over
//! `RVU`, ...) whose second row starts with `HCPCS`, then one row per code
//! and modifier. The columns used: HCPCS, MOD, STATUS CODE, WORK RVU,
//! NON-FAC PE RVU, MP RVU, CONV FACTOR; they are found by heading, so a
//! column CMS adds between them does not matter. Sources: the headings as
//! independent parsers of the distributed files describe them (secondary:
//! the record layout, RVUPUF26.pdf in each release's zip at
//! cms.gov/medicare/payment/fee-schedules/physician/pfs-relative-value-files,
//! was not in reach here). Status codes A, R and T are paid under the
//! fee schedule; B (bundled: never paid separately) is kept as such; the
//! others (I not valid for Medicare, C carrier-priced, N not covered, ...)
//! give no estimate.

use std::io::Read;

use chrono::NaiveDate;

use super::code_cell;
use super::source::{csv_records, latin1, RowError, Source};
use crate::domain::rulebook::FeeSchedule;
use crate::domain::rules::Rvu;
use crate::domain::Code;

/// `PPRRVU2026_Jan_nonQPP.csv` / `PPRRVU26_JAN.csv`: the release's label
/// (`2026A` for January, B April, C July, D October) and first day.
pub fn release_of(file: &str) -> Option<(String, NaiveDate)> {
    let f = file.to_ascii_lowercase();
    let rest = &f[f.find("pprrvu")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let year: i32 = match digits.len() {
        2 => 2000 + digits.parse::<i32>().ok()?,
        4 => digits.parse().ok()?,
        _ => return None,
    };
    let month = rest[digits.len()..].trim_start_matches(['_', '-']);
    let (letter, m) = match month.get(..3)? {
        "jan" => ('A', 1),
        "apr" => ('B', 4),
        "jul" => ('C', 7),
        "oct" => ('D', 10),
        _ => return None,
    };
    Some((
        format!("{year}{letter}"),
        NaiveDate::from_ymd_opt(year, m, 1)?,
    ))
}

struct Columns {
    hcpcs: usize,
    modifier: usize,
    status: usize,
    work: usize,
    pe_nonfacility: usize,
    mp: usize,
    conversion_factor: usize,
}

impl Columns {
    /// From the two header rows, each column's heading is the cell above
    /// and its own, joined.
    fn find(above: &[String], header: &[String]) -> Result<Columns, String> {
        let headings: Vec<(String, String)> = header
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let top = above.get(i).map_or("", |s| s.as_str());
                (normalize(&format!("{top} {cell}")), normalize(cell))
            })
            .collect();
        let find = |want: &str| {
            let suffix = format!(" {want}");
            headings
                .iter()
                .position(|(joined, own)| {
                    joined == want || own == want || joined.ends_with(&suffix)
                })
                .ok_or_else(|| format!("no {want:?} column in the header: not a PPRRVU file?"))
        };
        Ok(Columns {
            hcpcs: find("HCPCS")?,
            modifier: find("MOD")?,
            status: find("STATUS CODE")?,
            work: find("WORK RVU")?,
            pe_nonfacility: find("NON-FAC PE RVU")?,
            mp: find("MP RVU")?,
            conversion_factor: find("CONV FACTOR")?,
        })
    }

    /// The last column a row needs.
    fn last(&self) -> usize {
        [
            self.hcpcs,
            self.modifier,
            self.status,
            self.work,
            self.pe_nonfacility,
            self.mp,
            self.conversion_factor,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// Records of notes and headings before the header row (CMS's: 9).
const PREAMBLE_AT_MOST: usize = 30;

/// A cell that holds nothing: blanks, or control bytes such as the DOS
/// end-of-file mark (0x1A) some releases end with.
fn blank(cell: &[u8]) -> bool {
    cell.iter()
        .all(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// The kept codes' RVUs and the conversion factor, with the number of data
/// rows.
pub fn parse<R: Read>(
    source: Source<R>,
    keep: impl Fn(Code) -> bool,
) -> Result<(FeeSchedule, usize), RowError> {
    let mut previous: Vec<String> = Vec::new();
    let mut columns: Option<Columns> = None;
    let mut rvus = Vec::new();
    let mut bundled = Vec::new();
    let mut conversion_factor: Option<f64> = None;
    let mut rows = 0;
    for (i, record) in csv_records(source).enumerate() {
        let (line, record) = record?;
        let Some(c) = &columns else {
            let cells: Vec<String> = record.iter().map(latin1).collect();
            if normalize(cells.first().map_or("", |s| s.as_str())) == "HCPCS" {
                columns =
                    Some(Columns::find(&previous, &cells).map_err(|p| RowError::at(line, p))?);
            } else if i >= PREAMBLE_AT_MOST {
                return Err(RowError::at(line, format!("no header row starting with HCPCS in the first {PREAMBLE_AT_MOST} records: not a PPRRVU file")));
            } else {
                previous = cells;
            }
            continue;
        };
        if record.iter().all(blank) {
            continue;
        }
        rows += 1;
        if record.len() <= c.last() {
            return Err(RowError::at(
                line,
                format!(
                    "{} columns where the header has at least {} (a truncated file?)",
                    record.len(),
                    c.last() + 1
                ),
            ));
        }
        let cell = |i: usize| latin1(record.get(i).unwrap_or(b"").trim_ascii());
        let code = code_cell(&cell(c.hcpcs))
            .ok_or_else(|| RowError::cell(line, c.hcpcs, "HCPCS", "not a 5-character code"))?;
        // The global service only: -26/-TC and other modifiers' rows are
        // other services.
        if !cell(c.modifier).is_empty() || !keep(code) {
            continue;
        }
        let number = |i: usize, name: &'static str| -> Result<f64, RowError> {
            cell(i)
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (0.0..10_000.0).contains(v))
                .ok_or_else(|| RowError::cell(line, i, name, format!("{name} is not a number")))
        };
        let cf = number(c.conversion_factor, "CONV FACTOR")?;
        match conversion_factor {
            None if cf > 0.0 => conversion_factor = Some(cf),
            Some(prev) if cf > 0.0 && (prev - cf).abs() > 1e-9 => {
                return Err(RowError::cell(
                    line,
                    c.conversion_factor,
                    "CONV FACTOR",
                    "CONV FACTOR differs from the rows above",
                ))
            }
            _ => {}
        }
        match cell(c.status).as_str() {
            "A" | "R" | "T" => {}
            "B" => {
                bundled.push(code);
                continue;
            }
            _ => continue,
        }
        rvus.push((
            code,
            Rvu {
                work: number(c.work, "WORK RVU")?,
                pe_nonfacility: number(c.pe_nonfacility, "NON-FAC PE RVU")?,
                mp: number(c.mp, "MP RVU")?,
            },
        ));
    }
    if columns.is_none() {
        return Err(RowError::at(
            0,
            "no header row starting with HCPCS: not a PPRRVU file",
        ));
    }
    Ok((
        FeeSchedule {
            conversion_factor: conversion_factor.unwrap_or(0.0),
            rvus,
            bundled,
        },
        rows,
    ))
}
