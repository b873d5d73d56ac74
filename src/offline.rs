//! `claimline evaluate`: encounter events as JSON lines in, claim lines as
//! JSON lines out, with no broker and no database.

use std::io::{self, BufRead, Write};

use crate::domain::{decode, evaluate, Rules};

/// What one run saw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub bad: u64,
    pub lines: u64,
}

/// Evaluates every non-blank input line in order. A bad line is reported on
/// `errors` with its 1-based line number and reason; the rest still run.
pub fn evaluate_lines(
    input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
    rules: &Rules,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.events += 1;
        match decode(&line) {
            Ok(encounter) => {
                for claim_line in evaluate(&encounter, rules) {
                    serde_json::to_writer(&mut output, &claim_line)?;
                    output.write_all(b"\n")?;
                    summary.lines += 1;
                }
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
