//! The committed JSON Schemas match the Rust wire types, and every shipped
//! example validates against them.

use std::path::Path;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Set UPDATE_SCHEMAS=1 to rewrite `schemas/` from the code.
#[test]
fn committed_schemas_are_generated_from_the_wire_types() {
    for (name, generated) in claimline::codec::schema::all() {
        let path = root().join("schemas").join(name);
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/{name} is stale: run `UPDATE_SCHEMAS=1 cargo test --test it schemas` and commit it"
        );
    }
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas").join(name)).unwrap())
            .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn example_events() -> Vec<Value> {
    let mut events: Vec<Value> = std::fs::read_to_string(root().join("examples/encounters.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    events.push(
        serde_json::from_str(
            &std::fs::read_to_string(root().join("examples/hip-fracture.json")).unwrap(),
        )
        .unwrap(),
    );
    events
}

#[test]
fn shipped_examples_validate_against_the_encounter_schema() {
    let v = validator("encounter-event.schema.json");
    let events = example_events();
    assert!(events.len() >= 8);
    for ev in &events {
        let errors: Vec<String> = v.iter_errors(ev).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", ev["event_id"]);
    }
    // And the schema does reject: a bad discipline and a short NPI.
    let mut bad = events[0].clone();
    bad["encounter"]["provider"]["discipline"] = "RN".into();
    assert!(!v.is_valid(&bad));
    let mut bad = events[0].clone();
    bad["encounter"]["provider"]["npi"] = "123".into();
    assert!(!v.is_valid(&bad));
}

#[test]
fn claim_lines_of_the_examples_validate_against_the_claim_line_schema() {
    let v = validator("claim-line.schema.json");
    let rules = claimline::domain::Rules::builtin();
    let mut n = 0;
    for ev in example_events() {
        let enc = claimline::codec::decode(ev.to_string().as_bytes()).unwrap();
        for line in claimline::domain::evaluate(&enc, rules) {
            let value = serde_json::to_value(&line).unwrap();
            let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", line.claim_line_id);
            n += 1;
        }
    }
    assert!(n > 10);
}

/// Every field the schemas publish, and every dead-letter reason the
/// service uses, is described in the integrators' page `docs/wire-format.md`.
#[test]
fn the_integrators_page_names_every_published_field() {
    let doc = std::fs::read_to_string(root().join("docs/wire-format.md")).unwrap();
    fn fields(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|v| fields(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| fields(v, out)),
            _ => {}
        }
    }
    // The names inside the page's code spans (`encounter.patient.id`,
    // `{code, severity, message, related_codes}`, ...).
    let documented: std::collections::HashSet<&str> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .collect();
    let mut missing = Vec::new();
    for name in ["encounter-event.schema.json", "claim-line.schema.json"] {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("schemas").join(name)).unwrap(),
        )
        .unwrap();
        let mut names = Vec::new();
        fields(&schema, &mut names);
        assert!(!names.is_empty());
        missing.extend(
            names
                .into_iter()
                .filter(|f| !documented.contains(f.as_str()))
                .map(|f| format!("{name}: {f}")),
        );
    }
    for reason in [
        "invalid_json",
        "schema_violation",
        "too_large",
        "version_conflict",
        "event_id_conflict",
        "rejected_by_storage",
    ] {
        if !doc.contains(&format!("`{reason}`")) {
            missing.push(format!("reason {reason}"));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "not in docs/wire-format.md: {missing:?}"
    );
}
