//! Kafka in and out (rdkafka): the only module that sees rdkafka. The rest
//! of the code sees [`Incoming`], [`Outgoing`], [`Ack`] and plain results.
//!
//! - [`config`]: the client configuration (flags and `KAFKA_*`), shared by
//!   the service and the `send` / `read` tools.
//! - [`consumer`]: the group consumer: receive, store offsets, commit.
//! - [`producer`]: the idempotent producer: enqueue, acknowledgements,
//!   flush; topic creation for demos and tests.
//! - [`dead_letter`]: the dead-letter header names, written and read back.

pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod producer;
pub mod tools;

pub use config::KafkaArgs;
pub use consumer::{ConsumerCtx, EventConsumer};
pub use producer::{create_topics, Ack, Delivery, Producer};

/// One consumed message, owned.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// Shared: the batch keeps it for `encounter_payloads` without a copy.
    pub payload: std::sync::Arc<[u8]>,
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
