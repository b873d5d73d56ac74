//! claimline turns finalized therapy encounter events into billable claim
//! lines (contract: `../shared/contract/README.md`).
//!
//! # Layout
//! - [`domain`]: the billing rules, pure: parse an event, evaluate it into
//!   claim lines. No tokio, sqlx or rdkafka. Its data lives in `data/`.
//! - [`offline`]: `claimline evaluate`, the rules over JSON lines.
//! - [`schema`]: the JSON Schemas of the wire types, as published in `schemas/`.
//! - [`config`]: `claimline run` settings from flags and the environment.
//! - [`kafka`]: consumer and producer (rdkafka); the only module that sees rdkafka.
//! - [`store`]: Postgres (sqlx): migrations, the batch transaction, the outbox.
//! - [`pipeline`]: composes them: decode, evaluate, persist, publish, store the offset.
//! - [`http`], [`metrics`], [`telemetry`]: what SREs scrape and read.
//! - [`tools`]: `claimline send` / `read`, Kafka tools for demos.

pub mod domain;
pub mod offline;
pub mod schema;

pub mod config;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod store;
pub mod telemetry;
pub mod tools;
