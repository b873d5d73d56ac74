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
