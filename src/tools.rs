//! `claimline send`, `read` and `dlq replay`: Kafka tools for demos and
//! integration engineers, so nothing else (kcat) needs installing. They
//! build their clients through the service's configuration code, so the
//! same `KAFKA_*` settings (TLS, SASL) apply.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::kafka::consumer::{IdleClock, Record, TopicReader};
use crate::kafka::{KafkaArgs, Outgoing, Producer};

/// Sends each non-blank line as one message, keyed by its
/// `encounter.encounter_id` when it has one. Returns how many were sent.
pub async fn send(kafka: &KafkaArgs, topic: &str, input: impl BufRead) -> anyhow::Result<usize> {
    let producer = Producer::create_plain(kafka)?;
    let mut n = 0;
    for line in input.lines() {
        let line = line.context("Failed to read input")?;
        if line.trim().is_empty() {
            continue;
        }
        let key = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["encounter"]["encounter_id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let ack = producer
            .enqueue(Outgoing {
                topic,
                key: Some(key.as_bytes()),
                payload: line.as_bytes(),
                headers: Vec::new(),
            })
            .await;
        if !ack.acknowledged().await {
            anyhow::bail!("The broker did not acknowledge message {}", n + 1);
        }
        n += 1;
    }
    Ok(n)
}

/// [`send`] from a file, or stdin for `-`.
pub async fn send_path(
    kafka: &KafkaArgs,
    topic: &str,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    if path.as_os_str() == "-" {
        send(kafka, topic, std::io::stdin().lock()).await
    } else {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        send(kafka, topic, std::io::BufReader::new(f)).await
    }
}

/// What `read` prints of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFormat {
    /// One JSON object a message: partition, offset, key, headers and the
    /// value (as JSON when it is JSON, else as text).
    Full,
    /// The value alone, one a line (for piping claim lines into jq).
    Values,
}

/// Prints a topic's messages from the beginning, one per line, until `max`
/// messages or `idle` without a new one.
pub fn read(
    kafka: &KafkaArgs,
    topic: &str,
    max: usize,
    idle: Duration,
    format: ReadFormat,
) -> anyhow::Result<usize> {
    let reader = TopicReader::create(kafka, topic)?;
    let mut n = 0;
    let mut out = std::io::stdout().lock();
    let mut clock = IdleClock::new(idle);
    while n < max && !clock.expired() {
        if let Some(m) = reader.poll(Duration::from_millis(200)) {
            let mut line = match format {
                ReadFormat::Values => m.payload.clone(),
                ReadFormat::Full => envelope(&m).to_string().into_bytes(),
            };
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                // A closed pipe (e.g. `| head`) just ends the read.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(n);
                }
                return Err(e).context("Failed to write to stdout");
            }
            n += 1;
            clock.message();
        }
    }
    Ok(n)
}

/// A message as one JSON object.
pub fn envelope(m: &Record) -> Value {
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
