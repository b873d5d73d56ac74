//! `claimline send`: JSON lines from a file or stdin to a topic
//! ([`crate::kafka::tools::send`]), keyed by encounter id. Each line is
//! first checked as the service would check it: bad lines are reported
//! with their line numbers and nothing is sent, unless `--allow-invalid`
//! (to test the dead-letter path). A line without an encounter id is never
//! sent: a message without its key would break per-encounter order.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::{report, runtime};
use crate::codec::{decode_limited, BOM};
use crate::kafka::{tools, KafkaArgs};

#[derive(clap::Args)]
pub(super) struct SendArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Topic to send to.
    #[arg(long, default_value = "encounters")]
    topic: String,
    /// Send lines the service would dead-letter too (each still needs an
    /// encounter id for its key).
    #[arg(long)]
    allow_invalid: bool,
    /// Check lines against this size limit, as the service's
    /// CLAIMLINE_MAX_MESSAGE_BYTES does.
    #[arg(long, env = "CLAIMLINE_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_message_bytes: u64,
    /// File of messages, one a line (a UTF-8 byte-order mark at the start
    /// is skipped); `-` for stdin.
    #[arg(default_value = "-")]
    path: PathBuf,
}

pub(super) fn send(args: SendArgs) -> ExitCode {
    report(
        "send",
        runtime().block_on(async move {
            let input: Box<dyn Read> = if args.path.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(
                    std::fs::File::open(&args.path)
                        .with_context(|| format!("cannot open {}", args.path.display()))?,
                )
            };
            let max = usize::try_from(args.max_message_bytes).unwrap_or(usize::MAX);
            let messages = checked(std::io::BufReader::new(input), max, args.allow_invalid)?;
            let n = tools::send(&args.kafka, &args.topic, &messages).await?;
            Ok(format!("{n} messages sent to {}", args.topic))
        }),
    )
}

/// The input's lines as (encounter id, value), each checked as the service
/// would; problems on stderr, one a line with its line number.
fn checked(
    input: impl BufRead,
    max: usize,
    allow_invalid: bool,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let (mut messages, mut bad, mut unkeyed) = (Vec::new(), 0, 0);
    for (i, line) in input.split(b'\n').enumerate() {
        let mut line = line.context("Failed to read input")?;
        if i == 0 && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let key = match decode_limited(&line, max) {
            Ok(enc) => Some(enc.encounter_id.to_string()),
            Err(e) => {
                bad += 1;
                eprintln!("line {}: {e} ({})", i + 1, e.reason_code());
                serde_json::from_slice::<Value>(&line)
                    .ok()
                    .and_then(|v| v["encounter"]["encounter_id"].as_str().map(str::to_owned))
                    .filter(|k| !k.is_empty())
            }
        };
        match key {
            Some(key) => messages.push((key, line)),
            None => {
                unkeyed += 1;
                eprintln!(
                    "line {}: no encounter.encounter_id to key it by; not sent",
                    i + 1
                );
            }
        }
    }
    if bad > 0 && !allow_invalid {
        anyhow::bail!(
            "{bad} line(s) would be dead-lettered by the service (above); nothing sent. \
             Fix them, or pass --allow-invalid to send them anyway"
        );
    }
    if unkeyed > 0 && messages.is_empty() {
        anyhow::bail!("no line has an encounter id; nothing sent");
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../examples/hip-fracture.json");

    fn one_line(json: &str) -> String {
        serde_json::from_str::<Value>(json).unwrap().to_string()
    }

    #[test]
    fn good_lines_are_keyed_by_encounter_and_a_leading_bom_is_skipped() {
        let line = one_line(GOOD);
        let input = format!("\u{feff}{line}\r\n\n{line}\n");
        let m = checked(input.as_bytes(), 1 << 20, false).unwrap();
        assert_eq!(m.len(), 2);
        let id = serde_json::from_str::<Value>(&line).unwrap()["encounter"]["encounter_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(m.iter().all(|(k, v)| *k == id && v == line.as_bytes()));
    }

    #[test]
    fn a_bad_line_stops_the_send_unless_allowed_and_an_unkeyed_one_never_goes() {
        let line = one_line(GOOD);
        let mut bad: Value = serde_json::from_str(&line).unwrap();
        bad["encounter"]["version"] = "1".into();
        let input = format!("{line}\n{bad}\n[1,2]\n");
        let err = checked(input.as_bytes(), 1 << 20, false).unwrap_err();
        assert!(err.to_string().contains("2 line(s)"), "{err}");
        let m = checked(input.as_bytes(), 1 << 20, true).unwrap();
        // The bad line with an encounter id goes; the array has no key.
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].1, bad.to_string().into_bytes());
    }
}
