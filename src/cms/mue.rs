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

use super::code_cell;
use crate::domain::rules::Mue;
use crate::domain::Code;

/// The kept MUEs and the number of data rows; or (line, problem).
pub fn parse(text: &str, keep: impl Fn(Code) -> bool) -> Result<(Vec<Mue>, usize), (u64, String)> {
    let mut mues = Vec::new();
    let mut rows = 0;
    let mut in_data = false;
    for record in super::csv_records(text) {
        let (line, record) = record?;
        let first = record.get(0).unwrap_or("");
        if !in_data {
            if code_cell(first).is_none() {
                continue;
            }
            in_data = true;
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows += 1;
        let mue = row(&record).map_err(|p| (line, p))?;
        if keep(mue.code) {
            mues.push(mue);
        }
    }
    Ok((mues, rows))
}

fn row(r: &csv::StringRecord) -> Result<Mue, String> {
    if r.len() < 3 {
        return Err(format!(
            "expected 4 columns (code, MUE value, adjudication indicator, rationale), found {}",
            r.len()
        ));
    }
    let code = code_cell(&r[0]).ok_or("the code is not a 5-character HCPCS/CPT code")?;
    let value: u32 = r[1]
        .trim()
        .parse()
        .ok()
        .filter(|v| *v <= 100_000)
        .ok_or("the MUE value is not a whole number of units")?;
    let adjudication_indicator = match r[2].trim().as_bytes().first() {
        Some(b'1') => 1,
        Some(b'2') => 2,
        Some(b'3') => 3,
        _ => return Err("the adjudication indicator does not start with 1, 2 or 3".into()),
    };
    Ok(Mue {
        code,
        value,
        adjudication_indicator,
    })
}
