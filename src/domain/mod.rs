//! The billing rules: pure functions over domain types. Nothing here does
//! I/O or knows about Kafka, Postgres or tokio. Events are decoded by the
//! codec, beside this module; the claim line carries its own serde derives
//! ([`claim`]), which are its wire and stored form.
//!
//! - [`values`]: codes, modifiers, NPI, diagnoses, patient id, the event's
//!   closed sets; each parses or does not exist.
//! - [`encounter`]: the encounter as the rules see it.
//! - [`rules`]: the data the rules read: code catalogue, payer policies, edit table.
//! - [`policy`]: a payer policy file, checked and merged over the built-in policies.
//! - [`rulebook`]: the rule set in force on a date of service (imported CMS tables).
//! - [`locality`]: Medicare payment localities and their GPCIs.
//! - [`units`]: minutes to units, per code or by CMS total time.
//! - [`evaluate`]: one encounter to its claim lines, with flags and payment.
//! - [`kx`]: Medicare's year-to-date therapy amounts and the KX modifier.
//! - [`ledger`]: what an event does to the lines already in force; the
//!   encounters of one patient, payer and date judged together (each
//!   provider's day for the units, co-treatment across providers).
//! - [`claim`]: the claim line as published and stored.

pub mod claim;
pub mod encounter;
pub mod evaluate;
pub mod kx;
pub mod ledger;
pub mod locality;
pub mod policy;
pub mod rulebook;
pub mod rules;
pub mod units;
pub mod values;

pub use claim::{ClaimLine, Flag, FlagCode, KxGroup, Severity, Status, UnitMethod};
pub use encounter::{Encounter, Interval, PlanOfCare, Service};
pub use evaluate::evaluate;
pub use rulebook::RuleBook;
pub use rules::{Rules, RULES_VERSION};
pub use values::{
    Code, Credential, Diagnosis, Discipline, EventType, Modifier, Npi, PatientId, Plan,
};

#[cfg(test)]
mod tests;
