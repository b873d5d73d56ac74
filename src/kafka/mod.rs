//! Kafka in and out (rdkafka): the only module that sees rdkafka. The rest
//! of the code sees [`Incoming`], [`Outgoing`], [`Ack`] and plain results.
//!
//! - [`config`]: the client configuration (flags and `KAFKA_*`), shared by
//!   the service and the `send` / `read` tools.
//! - [`consumer`]: the group consumer: receive, store offsets, commit.
//! - [`producer`]: the idempotent producer: enqueue, acknowledgements,
//!   flush; topic creation for demos and tests.

pub mod config;
pub mod consumer;
pub mod producer;
pub mod properties;

pub use config::{Client, KafkaArgs};
pub use consumer::{ConsumerCtx, EventConsumer};
pub use producer::{create_topics, Ack, Delivery, Producer};

/// One consumed message, owned.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// A message to publish. Header values are plain text (contract section 2:
/// short, and never a value from the event).
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: Vec<(&'static str, String)>,
}

/// The dead-letter headers of contract section 2 for a message from `source`.
pub fn dlq_headers(reason: &str, message: &str, source: &Incoming) -> Vec<(&'static str, String)> {
    vec![
        ("error.reason", reason.to_owned()),
        ("error.message", message.to_owned()),
        ("source.topic", source.topic.clone()),
        ("source.partition", source.partition.to_string()),
        ("source.offset", source.offset.to_string()),
    ]
}
