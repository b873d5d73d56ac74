//! JSON Schemas generated from the wire types, so the published files in
//! `schemas/` cannot drift from the code (a test compares them). Each gets
//! an `$id` naming the schema and its version, and only the formats JSON
//! Schema defines (schemars writes `uint32` and the like, which strict
//! validators refuse): an integer format becomes the bounds it stands for.

use serde_json::Value;

use super::wire::EncounterEvent;
use crate::domain::ClaimLine;

/// The published schemas' version: raised on a breaking change.
pub const SCHEMA_VERSION: u32 = 1;

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
        (
            "encounter-event.schema.json",
            publish("encounter-event", encounter),
        ),
        ("claim-line.schema.json", publish("claim-line", claim_line)),
    ]
}

fn publish(name: &str, schema: schemars::Schema) -> String {
    let mut v = schema.to_value();
    standard_formats(&mut v);
    if let Value::Object(m) = &mut v {
        // `$id` first after `$schema`, as readers expect.
        let mut out = serde_json::Map::new();
        if let Some(s) = m.remove("$schema") {
            out.insert("$schema".into(), s);
        }
        out.insert(
            "$id".into(),
            format!("urn:claimline:schema:{name}:{SCHEMA_VERSION}").into(),
        );
        out.append(m);
        v = Value::Object(out);
    }
    let mut s = serde_json::to_string_pretty(&v).expect("a schema serializes");
    s.push('\n');
    s
}

/// Replaces the integer formats schemars writes with the bounds they mean.
fn standard_formats(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let bounds = match m.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, u64::from(u8::MAX))),
                Some("uint16") => Some((0, u64::from(u16::MAX))),
                Some("uint32") => Some((0, u64::from(u32::MAX))),
                Some("uint64" | "uint") => Some((0, u64::MAX)),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                m.remove("format");
                m.entry("minimum").or_insert(min.into());
                m.entry("maximum").or_insert(max.into());
            } else if matches!(
                m.get("format").and_then(Value::as_str),
                Some("int8" | "int16" | "int32" | "int64" | "int" | "float" | "double")
            ) {
                m.remove("format");
            }
            m.values_mut().for_each(standard_formats);
        }
        Value::Array(a) => a.iter_mut().for_each(standard_formats),
        _ => {}
    }
}
