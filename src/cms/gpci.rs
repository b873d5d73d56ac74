//! The physician fee schedule's geographic practice cost indices by
//! Medicare locality as CMS publishes them each year (PFS Addendum E,
//! `GPCI2025.csv`): CSV, a title row, a blank row, the header
//!
//! | Medicare Administrative Contractor (MAC) | State | Locality Number | Locality Name | 2025 PW GPCI (with 1.0 Floor) | 2025 PE GPCI | 2025 MP GPCI |
//!
//! one row per locality, then notes (the MAC assignments' date, the
//! Alaska and frontier-state floors) in the first cell alone. Columns are
//! found by heading; the year is in the file name.

use std::io::Read;

use super::source::{csv_records, latin1, RowError, Source};
use crate::domain::locality::{Gpci, Locality};

/// `GPCI2025.csv`: 2025.
pub fn year_of(file: &str) -> Option<i32> {
    let f = file.to_ascii_lowercase();
    let rest = &f[f.find("gpci")? + 4..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 4).then(|| digits.parse().ok()).flatten()
}

struct Columns {
    mac: usize,
    locality: usize,
    work: usize,
    pe: usize,
    mp: usize,
}

const HEADINGS: [&str; 5] = [
    "Medicare Administrative Contractor (MAC)",
    "Locality Number",
    "PW GPCI",
    "PE GPCI",
    "MP GPCI",
];

impl Columns {
    fn find(header: &[String]) -> Result<Columns, String> {
        let find = |want: &str| {
            header
                .iter()
                .position(|h| h.to_ascii_uppercase().contains(want))
                .ok_or_else(|| format!("no {want:?} column in the header: not a GPCI file?"))
        };
        Ok(Columns {
            mac: find("(MAC)")?,
            locality: find("LOCALITY NUMBER")?,
            work: find("PW GPCI")?,
            pe: find("PE GPCI")?,
            mp: find("MP GPCI")?,
        })
    }
}

/// Records of title before the header (CMS's: 2).
const PREAMBLE_AT_MOST: usize = 20;

/// Every locality's GPCIs, with the number of data rows.
pub fn parse<R: Read>(source: Source<R>) -> Result<(Vec<Gpci>, usize), RowError> {
    let mut columns: Option<Columns> = None;
    let mut rows = Vec::new();
    for (i, record) in csv_records(source).enumerate() {
        let (line, record) = record?;
        let cells: Vec<String> = record.iter().map(|c| latin1(c).trim().to_owned()).collect();
        let Some(c) = &columns else {
            if cells
                .iter()
                .any(|h| h.to_ascii_uppercase().contains("LOCALITY NUMBER"))
            {
                columns = Some(Columns::find(&cells).map_err(|p| RowError::at(line, p))?);
            } else if i >= PREAMBLE_AT_MOST {
                return Err(RowError::at(line, format!("no header row with a Locality Number column in the first {PREAMBLE_AT_MOST} records: not a GPCI file")));
            }
            continue;
        };
        // Notes and blank rows have nothing past the first cell.
        if cells.iter().skip(1).all(String::is_empty) {
            continue;
        }
        let cell = |i: usize| cells.get(i).map_or("", String::as_str);
        let locality = Locality::from_parts(cell(c.mac), cell(c.locality)).ok_or_else(|| {
            let (col, heading) = if Locality::from_parts(cell(c.mac), "00").is_none() {
                (c.mac, HEADINGS[0])
            } else {
                (c.locality, HEADINGS[1])
            };
            RowError::cell(
                line,
                col,
                heading,
                "not a 5-digit MAC and a locality number of 1-2 digits",
            )
        })?;
        let number = |i: usize, name: &'static str| -> Result<f64, RowError> {
            cell(i)
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (0.1..10.0).contains(v))
                .ok_or_else(|| {
                    RowError::cell(
                        line,
                        i,
                        name,
                        format!("{name} is not an index between 0.1 and 10"),
                    )
                })
        };
        rows.push(Gpci {
            locality,
            work: number(c.work, HEADINGS[2])?,
            pe: number(c.pe, HEADINGS[3])?,
            mp: number(c.mp, HEADINGS[4])?,
        });
    }
    if columns.is_none() {
        return Err(RowError::at(
            0,
            "no header row with a Locality Number column: not a GPCI file",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = rows.iter().find(|g| !seen.insert(g.locality)) {
        return Err(RowError::at(
            0,
            format!("locality {} is listed twice", dup.locality),
        ));
    }
    let n = rows.len();
    Ok((rows, n))
}
