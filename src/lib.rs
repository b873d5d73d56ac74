//! claimline turns finalized therapy encounter events into billable claim
//! lines (the wire format: `docs/wire-format.md`).
//!
//! # Layout
//! - [`domain`]: the billing rules, pure: an encounter to its claim lines.
//!   No tokio, sqlx, rdkafka or wire format. Its data lives in `data/`.
//! - [`codec`]: bytes to domain types and back: decode an event, encode a
//!   claim line, the wire types and their JSON Schemas.
//! - [`ascii`], [`dates`]: leaf helpers both sides share (byte scanning,
//!   decimals, dates and timestamps).
//! - [`offline`]: `claimline evaluate`, the rules over JSON lines.
//! - [`cms`]: CMS's rule files (NCCI PTP, MUE, PPRRVU) read in their own
//!   layouts; [`rules_admin`]: `claimline rules import | list`.
//! - [`cli`], [`config`]: the command line and `claimline run` settings.
//! - [`kafka`]: consumer, producer and their configuration; the only module
//!   that sees rdkafka.
//! - [`store`]: Postgres (sqlx): migrations, the batch transaction, the outbox.
//! - [`pipeline`]: composes them: decode, evaluate, persist, publish, store
//!   the offset; start-up, batch loop, pure plan, settle, retry.
//! - [`http`], [`metrics`], [`telemetry`]: what SREs scrape and read.
//! - [`tools`], [`replay`]: `claimline send` / `read` / `dlq replay`, Kafka
//!   tools for demos and integrators.
//! - [`reprocess`]: `claimline reprocess`, stored encounters re-evaluated
//!   under the rules in force now.

pub mod ascii;
pub mod codec;
pub mod dates;
pub mod domain;
pub mod offline;

pub mod cli;
pub mod cms;
pub mod config;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod replay;
pub mod reprocess;
pub mod rules_admin;
pub mod store;
pub mod telemetry;
pub mod tools;
