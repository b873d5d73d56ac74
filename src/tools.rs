//! `claimline send` and `claimline read`: small Kafka tools for demos and
//! integration engineers, so nothing else (kcat) needs installing.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

/// Sends each non-blank line as one message, keyed by its
/// `encounter.encounter_id` when it has one. Returns how many were sent.
pub async fn send(bootstrap: &str, topic: &str, input: impl BufRead) -> anyhow::Result<usize> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .context("invalid Kafka configuration")?;
    let mut n = 0;
    for line in input.lines() {
        let line = line.context("Failed to read input")?;
        if line.trim().is_empty() {
            continue;
        }
        let key = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["encounter"]["encounter_id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&line),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .context("The broker did not acknowledge a message")?;
        n += 1;
    }
    Ok(n)
}

/// Prints the values of a topic from the beginning, one per line, until
/// `max` messages or `idle` without a new one.
pub fn read(bootstrap: &str, topic: &str, max: usize, idle: Duration) -> anyhow::Result<usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("claimline-read-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("invalid Kafka configuration")?;
    consumer
        .subscribe(&[topic])
        .context("Failed to subscribe")?;
    let mut n = 0;
    let mut out = std::io::stdout().lock();
    let mut last = std::time::Instant::now();
    while n < max && last.elapsed() < idle {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let line = [m.payload().unwrap_or_default(), b"\n"].concat();
                if let Err(e) = out.write_all(&line) {
                    // A closed pipe (e.g. `| head`) just ends the read.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(n);
                    }
                    return Err(e).context("Failed to write to stdout");
                }
                n += 1;
                last = std::time::Instant::now();
            }
            Some(Err(e)) => tracing::debug!(error = %e, "read"),
            None => {}
        }
    }
    Ok(n)
}
