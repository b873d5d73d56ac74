//! The Kafka side of `claimline send` and `read`: tools for demos and
//! integration engineers, so nothing else (kcat) needs installing. They
//! build their clients through the service's configuration code, so the
//! same `KAFKA_*` settings (TLS, SASL) apply. (`dlq replay` is
//! `pipeline/replay.rs`.)

use std::time::Duration;

use anyhow::Context;

use super::consumer::{IdleClock, Record, TopicReader};
use super::{KafkaArgs, Outgoing, Producer};

/// Sends each message (key, value) in order, waiting for each
/// acknowledgement. Returns how many were sent.
pub async fn send(
    kafka: &KafkaArgs,
    topic: &str,
    messages: &[(String, Vec<u8>)],
) -> anyhow::Result<usize> {
    let producer = Producer::create_plain(kafka)?;
    for (n, (key, value)) in messages.iter().enumerate() {
        let ack = producer
            .enqueue(Outgoing {
                topic,
                key: Some(key.as_bytes()),
                payload: value,
                headers: Vec::new(),
            })
            .await;
        if !ack.acknowledged().await {
            anyhow::bail!("The broker did not acknowledge message {}", n + 1);
        }
    }
    Ok(messages.len())
}

/// Hands a topic's messages from the beginning to `each`, until `max`
/// messages or `idle` without a new one. A closed pipe (`| head`) in
/// `each` just ends the read. Returns how many were handed over.
pub fn read(
    kafka: &KafkaArgs,
    topic: &str,
    max: usize,
    idle: Duration,
    mut each: impl FnMut(&Record) -> std::io::Result<()>,
) -> anyhow::Result<usize> {
    let reader = TopicReader::create(kafka, topic)?;
    let mut n = 0;
    let mut clock = IdleClock::new(idle);
    while n < max && !clock.expired() {
        if let Some(m) = reader.poll(Duration::from_millis(200)) {
            if let Err(e) = each(&m) {
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
