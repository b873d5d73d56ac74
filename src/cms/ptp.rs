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

use super::{code_cell, yyyymmdd};
use crate::domain::rules::PtpEdit;
use crate::domain::Code;

/// The kept edits and the number of data rows; or (line, problem).
pub fn parse(
    text: &str,
    keep: impl Fn(Code) -> bool,
) -> Result<(Vec<PtpEdit>, usize), (u64, String)> {
    let mut edits = Vec::new();
    let mut rows = 0;
    let mut in_data = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        if !in_data {
            // The preamble ends at the first line that starts with a code.
            if code_cell(fields[0]).is_none() {
                continue;
            }
            in_data = true;
        }
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        let edit = row(&fields).map_err(|p| (line_no, p))?;
        if let Some(e) = edit.filter(|e| keep(e.column1) && keep(e.column2)) {
            edits.push(e);
        }
    }
    Ok((edits, rows))
}

fn row(f: &[&str]) -> Result<Option<PtpEdit>, String> {
    if f.len() < 6 {
        return Err(format!(
            "expected 7 tab-separated columns (column 1, column 2, prior-to-1996, effective date, deletion date, modifier indicator, rationale), found {}",
            f.len()
        ));
    }
    let column1 = code_cell(f[0]).ok_or("column 1 is not a 5-character HCPCS/CPT code")?;
    let column2 = code_cell(f[1]).ok_or("column 2 is not a 5-character HCPCS/CPT code")?;
    let effective = yyyymmdd(f[3]).ok_or("the effective date is not a YYYYMMDD date")?;
    let deleted = match f[4].trim() {
        "*" | "" => None,
        d => Some(yyyymmdd(d).ok_or("the deletion date is neither * nor a YYYYMMDD date")?),
    };
    let modifier_indicator = match f[5].trim() {
        "0" => 0,
        "1" => 1,
        "9" => return Ok(None),
        _ => return Err("the modifier indicator is not 0, 1 or 9".into()),
    };
    if deleted.is_some_and(|d| d < effective) {
        return Err("the deletion date is before the effective date".into());
    }
    Ok(Some(PtpEdit {
        column1,
        column2,
        modifier_indicator,
        effective: Some(effective),
        deleted,
    }))
}
