//! `claimline evaluate`'s run: encounter events as JSON lines in, claim
//! lines as JSON lines out, with no broker and no database.
//!
//! [`replay_lines`] (the default) runs the input through the service's own
//! plan step ([`super::plan::plan`]) with one in-memory [`Ledger`] over the
//! whole input, in input order: versions, stale, duplicate and conflicting
//! events, amendments and voids, the day's re-allocation and reissues, KX.
//! It prints what the service would publish, in the order it would publish
//! it. [`evaluate_lines`] (`--per-event`) judges each event alone.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use super::plan::{decode_all, plan, Topics};
use crate::codec::{decode, JsonWriter, BOM, MAX_EVENT_BYTES};
use crate::domain::kx::{self, YearToDate};
use crate::domain::ledger::{Ledger, Outcome};
use crate::domain::{evaluate, ClaimLine, RuleBook};
use crate::kafka::Incoming;

/// What one run saw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub bad: u64,
    pub lines: u64,
}

/// Replays every non-blank input line in order as the service would
/// process the same messages on one partition, and writes to `output`
/// exactly the claim-line messages it would publish (voids first, then new
/// and reissued lines). An event the service would dead-letter is reported
/// on `errors` with its 1-based line number, message and reason (and
/// counted bad); a stale or duplicate one is reported there too, as what it
/// is (the service records it and publishes nothing).
pub fn replay_lines(
    input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
    book: &RuleBook,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut ledger = Ledger::default();
    // Where each line would go does not change what is printed.
    let topics = Topics {
        output: "claim-lines".into(),
        review: "claim-lines.review".into(),
    };
    let mut out = Vec::with_capacity(8192);
    for event in events(input) {
        let (i, payload) = event?;
        summary.events += 1;
        let batch = [Incoming {
            topic: String::new(),
            partition: 0,
            offset: i as i64,
            key: None,
            payload: payload.into(),
            timestamp_ms: None,
        }];
        let messages = decode_all(batch.into(), MAX_EVENT_BYTES);
        let planned = plan(&messages, &mut ledger, book, &topics);
        for d in &planned.write.dead_letters {
            summary.bad += 1;
            writeln!(errors, "line {}: {} ({})", i + 1, d.message, d.reason)?;
        }
        for (outcome, _) in &planned.outcomes {
            if matches!(outcome, Outcome::Stale | Outcome::Duplicate) {
                writeln!(
                    errors,
                    "line {}: {} event: the service records it and publishes nothing",
                    i + 1,
                    outcome.as_str()
                )?;
            }
        }
        out.clear();
        for entry in &planned.write.outbox {
            out.extend_from_slice(entry.payload.as_bytes());
            out.push(b'\n');
            summary.lines += 1;
        }
        output.write_all(&out)?;
    }
    output.flush()?;
    Ok(summary)
}

/// Evaluates every non-blank input line in order, each alone by the rule
/// set in force on its date of service (`--per-event`); Medicare year-to-date therapy amounts (KX)
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
    for event in events(input) {
        let (i, line) = event?;
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

/// The input's non-blank lines with their 0-based index; a byte-order mark
/// at the start of the input is skipped (contract section 6).
fn events(input: impl BufRead) -> impl Iterator<Item = io::Result<(usize, Vec<u8>)>> {
    input
        .split(b'\n')
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some(Err(e)),
            Ok(mut line) => {
                if i == 0 && line.starts_with(BOM) {
                    line.drain(..BOM.len());
                }
                (!line.iter().all(u8::is_ascii_whitespace)).then_some(Ok((i, line)))
            }
        })
}
