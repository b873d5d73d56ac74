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

use chrono::NaiveDate;

use super::code_cell;
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
    fn find(above: &[String], header: &csv::StringRecord) -> Result<Columns, String> {
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
                .ok_or_else(|| format!("no {want:?} column in the header"))
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
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// The kept codes' RVUs and the conversion factor, with the number of data
/// rows; or (line, problem).
pub fn parse(
    text: &str,
    keep: impl Fn(Code) -> bool,
) -> Result<(FeeSchedule, usize), (u64, String)> {
    let mut previous: Vec<String> = Vec::new();
    let mut columns: Option<Columns> = None;
    let mut rvus = Vec::new();
    let mut bundled = Vec::new();
    let mut conversion_factor: Option<f64> = None;
    let mut rows = 0;
    for record in super::csv_records(text) {
        let (line, record) = record?;
        let Some(c) = &columns else {
            if normalize(record.get(0).unwrap_or("")) == "HCPCS" {
                columns = Some(Columns::find(&previous, &record).map_err(|p| (line, p))?);
            } else {
                previous = record.iter().map(str::to_owned).collect();
            }
            continue;
        };
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        rows += 1;
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let code =
            code_cell(cell(c.hcpcs)).ok_or((line, "HCPCS is not a 5-character code".to_owned()))?;
        // The global service only: -26/-TC and other modifiers' rows are
        // other services.
        if !cell(c.modifier).is_empty() || !keep(code) {
            continue;
        }
        let number = |i: usize, name: &str| -> Result<f64, (u64, String)> {
            cell(i)
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (0.0..10_000.0).contains(v))
                .ok_or((line, format!("{name} is not a number")))
        };
        let cf = number(c.conversion_factor, "CONV FACTOR")?;
        match conversion_factor {
            None if cf > 0.0 => conversion_factor = Some(cf),
            Some(prev) if cf > 0.0 && (prev - cf).abs() > 1e-9 => {
                return Err((line, "CONV FACTOR differs from the rows above".into()))
            }
            _ => {}
        }
        match cell(c.status) {
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
        return Err((0, "no header row starting with HCPCS".into()));
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
