//! `claimline evaluate`: encounter events as JSON lines in, claim lines as
//! JSON lines out, with no broker and no database.

use std::io::{self, BufRead, Write};

use crate::domain::{decode, evaluate, JsonWriter, Rules};

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
    let mut buf = Vec::with_capacity(4096);
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.events += 1;
        match decode(&line) {
            Ok(encounter) => {
                buf.clear();
                let mut writer = JsonWriter::default();
                for claim_line in evaluate(&encounter, rules) {
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
