//! Bytes to domain types and back, beside the rules and not inside them.
//!
//! - [`decode`]: an encounter event's bytes to a domain
//!   [`Encounter`](crate::domain::Encounter), or an [`EventError`] naming the
//!   field and the rule. `reader.rs` is its fast path for the usual shape;
//!   serde_json over [`wire`] decides everything else; `explain.rs` says
//!   serde's errors in the contract's words.
//! - [`wire`]: the event as sent (serde), which [`schema`] publishes as JSON
//!   Schema in `schemas/`.
//! - [`encode`]: a claim line to its JSON bytes, written by hand, byte for
//!   byte what serde would write ([`JsonWriter`] reuses what the lines of one
//!   event share).

mod decode;
pub mod encode;
mod explain;
mod reader;
pub mod schema;
pub mod wire;

pub use decode::{decode, decode_limited, EventError, BOM, MAX_EVENT_BYTES};
pub use encode::JsonWriter;
