//! claimline turns finalized therapy encounter events into billable claim
//! lines (the wire format: `docs/wire-format.md`).
//!
//! # Layout
//! - [`domain`]: the billing rules, pure: an encounter to its claim lines.
//!   No tokio, sqlx or rdkafka; its data lives in `data/`. Claim lines
//!   carry their serde derives (the wire and stored form); events are
//!   decoded by `codec`.
//! - [`codec`]: bytes to domain types and back: decode an event, encode a
//!   claim line, the wire types and their JSON Schemas.
//! - [`cms`]: CMS's rule files (NCCI PTP, MUE, PPRRVU, GPCI) read in their own
//!   layouts, into the domain's rule tables.
//! - [`ascii`], [`dates`]: leaf helpers both sides share (byte scanning,
//!   decimals, dates and timestamps).
//! - Adapters: [`kafka`] (the only module that sees rdkafka), [`store`]
//!   (the only module that sees sqlx), [`http`] (axum: /metrics, /healthz,
//!   /readyz), [`metrics`], [`telemetry`].
//! - [`pipeline`]: composes them: the service (decode, evaluate, persist,
//!   publish, store the offset), and the flows the tools run: `evaluate`
//!   offline, `rules import`, `reprocess`, `dlq replay`.
//! - [`export`]: `claimline export`, claim lines as CSV for billers.
//! - [`web`]: `claimline web`, the signed-in read-only pages (axum,
//!   minijinja templates compiled in) over the views `store::web` reads.
//! - [`commands`]: the command line, one file per subcommand; [`config`]:
//!   `claimline run`'s settings and the flags several commands share.

pub(crate) mod ascii;
pub mod codec;
pub(crate) mod dates;
pub mod domain;
pub(crate) mod export;

pub mod cms;
pub mod commands;
pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod kafka;
pub(crate) mod metrics;
pub(crate) mod pipeline;
pub(crate) mod store;
pub(crate) mod telemetry;
pub(crate) mod web;
