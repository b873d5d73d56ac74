//! claimline turns finalized therapy encounter events into billable claim
//! lines (contract: `../shared/contract/README.md`).
//!
//! # Layout
//! - [`domain`]: the billing rules, pure: parse an event, evaluate it into
//!   claim lines. No tokio, sqlx or rdkafka. Its data lives in `data/`.
//! - [`offline`]: `claimline evaluate`, the rules over JSON lines.
//! - [`schema`]: the JSON Schemas of the wire types, as published in `schemas/`.

pub mod domain;
pub mod offline;
pub mod schema;
