//! The NCCI practitioner services MUE table as CMS distributes it
//! (`MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv`): CSV, a quoted
//! copyright notice and a header whose cells hold line breaks, then one code
//! a row:
//!
//! | HCPCS/CPT Code | Practitioner Services MUE Values | MUE Adjudication Indicator | MUE Rationale |
//!
//! The indicator cell reads like `3 Date of Service Edit: Clinical` (1 line
//! edit, 2 date of service edit: policy, 3 date of service edit: clinical).
//! Sources: Noridian JF, "Medically Unlikely Edits" (column meanings,
//! indicator values); the notice and the header's line breaks as
//! independent parsers of the distributed files describe them (secondary:
//! CMS's own file was not in reach here).

use std::io::Read;

use super::code_cell;
use super::source::{csv_records, latin1, RowError, Source};
use crate::domain::rules::Mue;
use crate::domain::Code;

const HEADINGS: [&str; 4] = [
    "HCPCS/CPT Code",
    "Practitioner Services MUE Values",
    "MUE Adjudication Indicator",
    "MUE Rationale",
];

/// Records of notice and header before the first code (CMS's: 2).
const PREAMBLE_AT_MOST: usize = 20;

/// The kept MUEs and the number of data rows.
pub fn parse<R: Read>(
    source: Source<R>,
    keep: impl Fn(Code) -> bool,
) -> Result<(Vec<Mue>, usize), RowError> {
    let mut mues = Vec::new();
    let mut rows = 0;
    let (mut in_data, mut headed) = (false, false);
    for (i, record) in csv_records(source).enumerate() {
        let (line, record) = record?;
        if !in_data {
            if code_cell(&latin1(record.get(0).unwrap_or(b""))).is_none() {
                headed |= record
                    .iter()
                    .any(|c| latin1(c).to_ascii_uppercase().contains("MUE"));
                if i >= PREAMBLE_AT_MOST {
                    return Err(RowError::at(line, format!("no code in the first {PREAMBLE_AT_MOST} records: not an MUE table (HCPCS/CPT code, MUE value, adjudication indicator, rationale)")));
                }
                continue;
            }
            if !headed {
                return Err(RowError::at(line, "a code before any header naming MUE values: not an MUE table (HCPCS/CPT code, MUE value, adjudication indicator, rationale)"));
            }
            in_data = true;
        }
        if record.iter().all(|c| c.trim_ascii().is_empty()) {
            continue;
        }
        rows += 1;
        let mue = row(&record).map_err(|(column, problem)| match column {
            Some(c) => RowError::cell(line, c, HEADINGS[c], problem),
            None => RowError::at(line, problem),
        })?;
        if keep(mue.code) {
            mues.push(mue);
        }
    }
    Ok((mues, rows))
}

fn row(r: &csv::ByteRecord) -> Result<Mue, (Option<usize>, String)> {
    if r.len() < 3 {
        return Err((None, format!(
            "expected 4 columns (code, MUE value, adjudication indicator, rationale), found {} (a truncated file?)",
            r.len()
        )));
    }
    let cell = |i: usize| latin1(r.get(i).unwrap_or(b""));
    let bad = |c: usize, p: &str| (Some(c), p.to_owned());
    let code = code_cell(&cell(0)).ok_or_else(|| bad(0, "not a 5-character HCPCS/CPT code"))?;
    let value: u32 = cell(1)
        .trim()
        .parse()
        .ok()
        .filter(|v| *v <= 100_000)
        .ok_or_else(|| bad(1, "the MUE value is not a whole number of units"))?;
    let adjudication_indicator = match cell(2).trim().as_bytes().first() {
        Some(b'1') => 1,
        Some(b'2') => 2,
        Some(b'3') => 3,
        _ => {
            return Err(bad(
                2,
                "the adjudication indicator does not start with 1, 2 or 3",
            ))
        }
    };
    Ok(Mue {
        code,
        value,
        adjudication_indicator,
    })
}
