//! The billing rules: pure functions over domain types. Nothing here does
//! I/O or knows about Kafka, Postgres or tokio.
//!
//! - [`wire`]: the encounter event as sent (serde + JSON Schema).
//! - [`encounter`]: parse the wire event into a valid [`Encounter`], or say why not
//!   (`reader.rs` is its fast path for the usual shape; serde_json decides the rest).
//! - [`rules`]: the data the rules read: code catalogue, payer policies, edit table.
//! - [`units`]: minutes to units, per code or by CMS total time.
//! - [`evaluate`]: one encounter to its claim lines, with flags and payment.
//! - [`claim`]: the claim line as published and stored (its JSON written by
//!   hand in `json.rs`, byte for byte what serde would write).

pub mod claim;
pub mod encounter;
pub mod evaluate;
mod json;
pub mod ledger;
mod reader;
pub mod rules;
pub mod units;
pub mod wire;

pub use claim::{ClaimLine, Flag, FlagCode, Severity, Status, UnitMethod};
pub use encounter::{decode, Encounter, EventError, MAX_EVENT_BYTES};
pub use evaluate::evaluate;
pub use json::{decimal, JsonWriter};
pub use rules::{Rules, RULES_VERSION};
#[cfg(test)]
mod tests;
