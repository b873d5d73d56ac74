//! JSON Schemas generated from the wire types, so the published files in
//! `schemas/` cannot drift from the code (a test compares them).

use super::wire::EncounterEvent;
use crate::domain::ClaimLine;

/// (file name under `schemas/`, schema text) for every published schema.
pub fn all() -> Vec<(&'static str, String)> {
    let encounter = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<EncounterEvent>();
    let claim_line = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<ClaimLine>();
    vec![
        ("encounter-event.schema.json", pretty(&encounter)),
        ("claim-line.schema.json", pretty(&claim_line)),
    ]
}

fn pretty(schema: &schemars::Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("a schema serializes");
    s.push('\n');
    s
}
