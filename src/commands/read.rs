//! `claimline read`: a topic's messages from the beginning, one a line
//! ([`crate::kafka::tools::read`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use super::report;
use crate::kafka::consumer::Record;
use crate::kafka::{tools, KafkaArgs};

#[derive(clap::Args)]
pub(super) struct ReadArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Topic to read.
    #[arg(long, default_value = "claim-lines")]
    topic: String,
    /// Stop after this many messages.
    #[arg(long, default_value_t = usize::MAX)]
    max: usize,
    /// Stop after this many seconds without a message (at least 15 s
    /// for the first one).
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// `full`: partition, offset, key, headers and value as one JSON
    /// object a message (a dead letter's reason is in its headers);
    /// `values`: the values alone.
    #[arg(long, value_enum, default_value = "full")]
    format: ReadFormat,
}

/// What `read` prints of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReadFormat {
    /// One JSON object a message: partition, offset, key, headers and the
    /// value (as JSON when it is JSON, else as text).
    Full,
    /// The value alone, one a line (for piping claim lines into jq).
    Values,
}

pub(super) fn read(args: ReadArgs) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let idle = Duration::from_secs(args.idle_secs);
    let printed = tools::read(&args.kafka, &args.topic, args.max, idle, |m| {
        let mut line = match args.format {
            ReadFormat::Values => m.payload.clone(),
            ReadFormat::Full => envelope(m).to_string().into_bytes(),
        };
        line.push(b'\n');
        out.write_all(&line)
    });
    match printed {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => report("read", Err(e)),
    }
}

/// A message as one JSON object.
fn envelope(m: &Record) -> Value {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let headers: serde_json::Map<String, Value> = m
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(text(v))))
        .collect();
    let value = serde_json::from_slice::<Value>(&m.payload)
        .unwrap_or_else(|_| Value::String(text(&m.payload)));
    json!({
        "partition": m.partition,
        "offset": m.offset,
        "timestamp_ms": m.timestamp_ms,
        "key": m.key.as_deref().map(text),
        "headers": headers,
        "value": value,
    })
}
