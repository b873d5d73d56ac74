//! `claimline evaluate`'s run: encounter events as JSON lines in, claim
//! lines as JSON lines out, with no broker and no database.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use crate::codec::{decode, JsonWriter};
use crate::domain::kx::{self, YearToDate};
use crate::domain::{evaluate, ClaimLine, RuleBook};

/// What one run saw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub bad: u64,
    pub lines: u64,
}

/// Evaluates every non-blank input line in order, each by the rule set in
/// force on its date of service; Medicare year-to-date therapy amounts (KX)
/// accumulate over the input. A bad line is reported on `errors` with its
/// 1-based line number and reason; the rest still run.
pub fn evaluate_lines(
    input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
    book: &RuleBook,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut ytd = YearToDate::default();
    // Each encounter's newest lines: a later version (or a void) replaces
    // them in the year-to-date amounts rather than adding to them.
    let mut latest: HashMap<Arc<str>, Vec<ClaimLine>> = HashMap::new();
    let mut buf = Vec::with_capacity(4096);
    for (i, line) in input.split(b'\n').enumerate() {
        let mut line = line?;
        if i == 0 && line.starts_with(crate::codec::BOM) {
            // A file may start with a byte-order mark (contract section 6).
            line.drain(..crate::codec::BOM.len());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.events += 1;
        match decode(&line) {
            Ok(encounter) => {
                buf.clear();
                let mut writer = JsonWriter::default();
                let rules = book.for_date(encounter.date_of_service);
                for old in latest.remove(&encounter.encounter_id).unwrap_or_default() {
                    ytd.remove(&old);
                }
                let mut lines = evaluate(&encounter, rules);
                kx::apply(&mut lines, &encounter, rules, &mut ytd);
                latest.insert(encounter.encounter_id.clone(), lines.clone());
                for claim_line in lines {
                    writer.write(&claim_line, &mut buf);
                    buf.push(b'\n');
                    summary.lines += 1;
                }
                output.write_all(&buf)?;
            }
            Err(e) => {
                summary.bad += 1;
                writeln!(errors, "line {}: {} ({})", i + 1, e, e.reason_code())?;
            }
        }
    }
    output.flush()?;
    Ok(summary)
}
