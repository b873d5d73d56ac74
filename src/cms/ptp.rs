//! The NCCI practitioner PTP edit table as CMS distributes it
//! (`ccipra-vNNNrN-fN.txt`, four files a quarter): tab-separated, a
//! preamble of copyright and column-heading lines, then one edit a line:
//!
//! | Column 1 | Column 2 | * = in existence prior to 1996 | Effective Date | Deletion Date (* = no data) | Modifier (0 = not allowed, 1 = allowed, 9 = not applicable) | PTP Edit Rationale |
//!
//! Dates are YYYYMMDD. Sources: the column meanings from Palmetto GBA,
//! "NCCI Procedure-to-Procedure Edits"; the file's headings, delimiter and
//! preamble as independent parsers of the distributed files describe them
//! (secondary: CMS's own files, cms.gov/medicare/coding-billing/national-
//! correct-coding-initiative-ncci-edits, were not in reach here; check the
//! first import of a real file against its README). A row with indicator 9 is not an edit (CMS
//! uses it for edits deleted as of their effective date): counted, not kept.

use std::io::BufRead;

use super::source::{text_lines, RowError};
use super::{code_cell, yyyymmdd};
use crate::domain::rules::PtpEdit;
use crate::domain::Code;

/// The columns, as CMS heads them.
const HEADINGS: [&str; 7] = [
    "Column 1",
    "Column 2",
    "* = in existence prior to 1996",
    "Effective Date",
    "Deletion Date",
    "Modifier",
    "PTP Edit Rationale",
];

/// Lines of preamble before the first edit (CMS's own: 2 title lines and a
/// header wrapped over 4); past this many, the file is not a PTP table.
const PREAMBLE_AT_MOST: u64 = 50;

/// The kept edits and the number of data rows, read line by line.
pub fn parse(
    reader: impl BufRead,
    keep: impl Fn(Code) -> bool,
) -> Result<(Vec<PtpEdit>, usize), RowError> {
    let mut edits = Vec::new();
    let mut rows = 0;
    let (mut in_data, mut headed) = (false, false);
    for line in text_lines(reader) {
        let (line_no, line) = line?;
        let fields: Vec<&str> = line.split('\t').collect();
        if !in_data {
            // The preamble ends at the first line that starts with a code.
            if code_cell(fields[0]).is_none() {
                headed |= line.to_ascii_lowercase().contains("column");
                if line_no > PREAMBLE_AT_MOST {
                    return Err(RowError::at(
                        line_no,
                        format!("no edit in the first {PREAMBLE_AT_MOST} lines: not a tab-separated PTP table (column 1, column 2, ...)"),
                    ));
                }
                continue;
            }
            if !headed || fields.len() < 6 {
                return Err(RowError::at(
                    line_no,
                    "not a tab-separated PTP table: no column headings before the first edit, or too few columns (column 1, column 2, ...)",
                ));
            }
            in_data = true;
        }
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        let edit = row(&fields).map_err(|(column, problem)| match column {
            Some(c) => RowError::cell(line_no, c, HEADINGS[c], problem),
            None => RowError::at(line_no, problem),
        })?;
        if let Some(e) = edit.filter(|e| keep(e.column1) && keep(e.column2)) {
            edits.push(e);
        }
    }
    Ok((edits, rows))
}

/// One edit; or the column at fault and what is wrong.
fn row(f: &[&str]) -> Result<Option<PtpEdit>, (Option<usize>, String)> {
    if f.len() < 6 {
        return Err((None, format!(
            "expected 7 tab-separated columns (column 1, column 2, prior-to-1996, effective date, deletion date, modifier indicator, rationale), found {} (a truncated file?)",
            f.len()
        )));
    }
    let bad = |c: usize, p: &str| (Some(c), p.to_owned());
    let column1 = code_cell(f[0]).ok_or_else(|| bad(0, "not a 5-character HCPCS/CPT code"))?;
    let column2 = code_cell(f[1]).ok_or_else(|| bad(1, "not a 5-character HCPCS/CPT code"))?;
    let effective =
        yyyymmdd(f[3]).ok_or_else(|| bad(3, "the effective date is not a YYYYMMDD date"))?;
    let deleted = match f[4].trim() {
        "*" | "" => None,
        d => Some(
            yyyymmdd(d)
                .ok_or_else(|| bad(4, "the deletion date is neither * nor a YYYYMMDD date"))?,
        ),
    };
    let modifier_indicator = match f[5].trim() {
        "0" => 0,
        "1" => 1,
        "9" => return Ok(None),
        _ => return Err(bad(5, "the modifier indicator is not 0, 1 or 9")),
    };
    if deleted.is_some_and(|d| d < effective) {
        return Err(bad(4, "the deletion date is before the effective date"));
    }
    Ok(Some(PtpEdit {
        column1,
        column2,
        modifier_indicator,
        effective: Some(effective),
        deleted,
    }))
}
