//! Decoding: what breaks the contract is refused, naming the field and never the value.

use super::*;

fn field_of(err: &EventError) -> &str {
    match err {
        EventError::Schema { field, .. } => field,
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

#[test]
fn rejects_what_breaks_the_contract_and_names_the_field() {
    let base = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "missing npi",
            Box::new(|v| {
                v["encounter"]["provider"]
                    .as_object_mut()
                    .unwrap()
                    .remove("npi");
            }),
            "encounter.provider",
        ),
        (
            "bad date",
            Box::new(|v| v["encounter"]["date_of_service"] = json!("2026-02-30")),
            "encounter.date_of_service",
        ),
        (
            "bad timestamp",
            Box::new(|v| v["occurred_at"] = json!("yesterday")),
            "occurred_at",
        ),
        (
            "npi check digit",
            Box::new(|v| v["encounter"]["provider"]["npi"] = json!("1234567890")),
            "encounter.provider.npi",
        ),
        (
            "npi length",
            Box::new(|v| v["encounter"]["provider"]["npi"] = json!("12345")),
            "encounter.provider.npi",
        ),
        (
            "unknown discipline",
            Box::new(|v| v["encounter"]["provider"]["discipline"] = json!("RN")),
            "encounter.provider.discipline",
        ),
        (
            "unknown plan",
            Box::new(|v| v["encounter"]["payer"]["plan"] = json!("cash")),
            "encounter.payer.plan",
        ),
        (
            "unknown event type",
            Box::new(|v| v["event_type"] = json!("deleted")),
            "event_type",
        ),
        (
            "version 0",
            Box::new(|v| v["encounter"]["version"] = json!(0)),
            "encounter.version",
        ),
        (
            "empty event id",
            Box::new(|v| v["event_id"] = json!("")),
            "event_id",
        ),
        (
            "event id too long",
            Box::new(|v| v["event_id"] = json!("x".repeat(129))),
            "event_id",
        ),
        (
            "encounter id too long",
            Box::new(|v| v["encounter"]["encounter_id"] = json!("x".repeat(65))),
            "encounter.encounter_id",
        ),
        (
            "minutes over 1440",
            Box::new(|v| v["encounter"]["services"][0]["minutes"] = json!(1441)),
            "encounter.services[0].minutes",
        ),
        (
            "negative minutes",
            Box::new(|v| v["encounter"]["services"][0]["minutes"] = json!(-5)),
            "encounter.services[0].minutes",
        ),
        (
            "no services",
            Box::new(|v| v["encounter"]["services"] = json!([])),
            "encounter.services",
        ),
        (
            "neither minutes nor times",
            Box::new(|v| v["encounter"]["services"] = json!([{"line_id": "1", "code": "97530"}])),
            "encounter.services[0].minutes",
        ),
        (
            "only a start time",
            Box::new(|v| {
                v["encounter"]["services"] =
                    json!([{"line_id": "1", "code": "97530", "start": "2026-03-02T14:00:00Z"}])
            }),
            "encounter.services[0].minutes",
        ),
        (
            "end before start",
            Box::new(|v| v["encounter"]["services"][0]["end"] = json!("2026-03-02T13:00:00Z")),
            "encounter.services[0].end",
        ),
        (
            "bad code",
            Box::new(|v| v["encounter"]["services"][0]["code"] = json!("9753")),
            "encounter.services[0].code",
        ),
        (
            "bad modifier",
            Box::new(|v| v["encounter"]["services"][0]["modifiers"] = json!(["GPX"])),
            "encounter.services[0].modifiers[0]",
        ),
        (
            "bad diagnosis",
            Box::new(|v| v["encounter"]["diagnoses"] = json!(["hip"])),
            "encounter.diagnoses[0]",
        ),
        (
            "duplicate line id",
            Box::new(|v| {
                v["encounter"]["services"] =
                    json!([minutes_svc("1", "97530", 10), minutes_svc("1", "97110", 10)])
            }),
            "encounter.services[1].line_id",
        ),
        (
            "plan of care backwards",
            Box::new(|v| v["encounter"]["plan_of_care"]["certified_through"] = json!("2026-01-01")),
            "encounter.plan_of_care.certified_through",
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut ev = base.clone();
        mutate(&mut ev);
        let err = reject(&ev);
        assert_eq!(err.reason_code(), "schema_violation", "{name}: {err}");
        assert!(
            field_of(&err).starts_with(expected),
            "{name}: got field {:?} ({err})",
            field_of(&err)
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn bad_json_and_oversized_events_have_their_own_reason() {
    assert_eq!(
        decode(b"{not json").unwrap_err().reason_code(),
        "invalid_json"
    );
    assert_eq!(decode(b"").unwrap_err().reason_code(), "invalid_json");
    let good = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]).to_string();
    assert_eq!(
        decode(format!("{good} trailing").as_bytes())
            .unwrap_err()
            .reason_code(),
        "invalid_json"
    );
    let big = vec![b' '; MAX_EVENT_BYTES + 1];
    assert_eq!(decode(&big).unwrap_err().reason_code(), "too_large");
    assert_eq!(
        decode(b"[1,2]").unwrap_err().reason_code(),
        "schema_violation"
    );
}

#[test]
fn errors_about_the_patient_never_quote_the_patient() {
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["patient"]["id"] = json!(987654321);
    let err = reject(&ev);
    assert!(field_of(&err).starts_with("encounter.patient"));
    assert!(!err.to_string().contains("987654321"), "{err}");
}

#[test]
fn errors_never_repeat_the_offending_value() {
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["provider"]["npi"] = json!(1234567893u64);
    let err = reject(&ev).to_string();
    assert!(
        err.starts_with(
            "encounter.provider.npi: must be a string, not an integer (value not shown)"
        ),
        "{err}"
    );
    // A double-encoded encounter must not echo the patient inside it.
    let inner = ev["encounter"].to_string();
    ev["encounter"] = json!(inner);
    let err = reject(&ev).to_string();
    assert!(
        !err.contains("PAT-SECRET-1") && !err.contains("1948-06-14"),
        "{err}"
    );
    assert!(err.contains("encounter"), "{err}");
}

#[test]
fn unknown_values_and_values_that_fake_the_message_are_not_repeated() {
    let secret = "PAT-SECRET-1, expected nothing";
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["payer"]["plan"] = json!(secret);
    let err = reject(&ev).to_string();
    assert!(!err.contains("PAT-SECRET"), "{err}");
    assert!(err.contains("encounter.payer.plan"), "{err}");
    assert!(err.contains("`medicare`"), "the allowed values stay: {err}");
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["provider"]["npi"] = json!([secret]);
    let err = reject(&ev).to_string();
    assert!(!err.contains("PAT-SECRET"), "{err}");
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["event_type"] = json!({ "x": secret });
    let err = reject(&ev).to_string();
    assert!(
        !err.contains("PAT-SECRET") && !err.contains("nothing"),
        "{err}"
    );
    for field in ["event_id", "encounter.encounter_id"] {
        let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
        if field == "event_id" {
            ev["event_id"] = json!(7);
        } else {
            ev["encounter"]["encounter_id"] = json!(secret.len());
        }
        let err = reject(&ev).to_string();
        assert!(err.contains("(value not shown)"), "{err}");
    }
}

#[test]
fn unknown_fields_are_ignored_and_a_void_may_have_no_services() {
    let mut ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    ev["encounter"]["facility"] = json!("north wing");
    ev["encounter"]["services"][0]["room"] = json!(12);
    assert_eq!(run(&ev).len(), 1);
    ev["event_type"] = json!("voided");
    ev["encounter"]["services"] = json!([]);
    assert!(run(&ev).is_empty(), "a voided event yields no new lines");
}

#[test]
fn npi_check_digit() {
    for good in ["1234567893", "1245319599", "1003000126"] {
        assert!(values::Npi::parse(good).is_ok(), "{good}");
    }
    for bad in ["1234567890", "1245319590", "123456789", "12345678a3"] {
        assert!(values::Npi::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn what_storage_would_refuse_is_refused_at_decode() {
    let base = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    type Mutation = Box<dyn Fn(&mut Value)>;
    let many = |n: usize, f: &dyn Fn(usize) -> Value| Value::Array((0..n).map(f).collect());
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "NUL in event_id",
            Box::new(|v| v["event_id"] = json!("evt\u{0}1")),
            "event_id",
        ),
        (
            "NUL in line_id",
            Box::new(|v| v["encounter"]["services"][0]["line_id"] = json!("a\u{0}")),
            "encounter.services[0].line_id",
        ),
        (
            "escape character in encounter_id",
            Box::new(|v| v["encounter"]["encounter_id"] = json!("E\u{1b}[31m")),
            "encounter.encounter_id",
        ),
        (
            "control character in patient id",
            Box::new(|v| v["encounter"]["patient"]["id"] = json!("P\u{7f}")),
            "encounter.patient.id",
        ),
        (
            "payer id over 128 characters",
            Box::new(|v| v["encounter"]["payer"]["id"] = json!("é".repeat(129))),
            "encounter.payer.id",
        ),
        (
            "year 0000",
            Box::new(|v| v["encounter"]["date_of_service"] = json!("0000-03-02")),
            "encounter.date_of_service",
        ),
        (
            "year 2101",
            Box::new(|v| v["encounter"]["date_of_service"] = json!("2101-01-01")),
            "encounter.date_of_service",
        ),
        (
            "birth date before 1900",
            Box::new(|v| v["encounter"]["patient"]["birth_date"] = json!("1899-12-31")),
            "encounter.patient.birth_date",
        ),
        (
            "occurred_at in year 9999",
            Box::new(|v| v["occurred_at"] = json!("9999-01-01T00:00:00Z")),
            "occurred_at",
        ),
        (
            "service start in 1800",
            Box::new(|v| {
                v["encounter"]["services"][0]["start"] = json!("1800-03-02T14:00:00Z");
                v["encounter"]["services"][0]["end"] = json!("1800-03-02T14:20:00Z");
            }),
            "encounter.services[0].start",
        ),
        (
            "plan of care through 3000",
            Box::new(|v| v["encounter"]["plan_of_care"]["certified_through"] = json!("3000-01-01")),
            "encounter.plan_of_care.certified_through",
        ),
        (
            "version over a Postgres integer",
            Box::new(|v| v["encounter"]["version"] = json!(2_147_483_648u64)),
            "encounter.version",
        ),
        (
            "101 services",
            Box::new(move |v| {
                v["encounter"]["services"] =
                    many(101, &|i| minutes_svc(&i.to_string(), "97110", 10))
            }),
            "encounter.services",
        ),
        (
            "101 diagnoses",
            Box::new(move |v| v["encounter"]["diagnoses"] = many(101, &|_| json!("S72.001D"))),
            "encounter.diagnoses",
        ),
    ];
    for (name, mutate, field) in cases {
        let mut ev = base.clone();
        mutate(&mut ev);
        let err = reject(&ev);
        assert_eq!(field_of(&err), field, "{name}: {err}");
        assert_eq!(err.reason_code(), "schema_violation", "{name}");
    }
    // The limits themselves are accepted.
    let mut ev = base.clone();
    ev["encounter"]["version"] = json!(2_147_483_647u64);
    ev["event_id"] = json!("e".repeat(128));
    ev["encounter"]["date_of_service"] = json!("2100-12-31");
    ev["encounter"]["plan_of_care"]["certified_through"] = json!("2100-12-31");
    ev["encounter"]["diagnoses"] = many(100, &|_| json!("S72.001D"));
    ev["encounter"]["services"] = many(100, &|i| minutes_svc(&i.to_string(), "97110", 10));
    assert!(decode(ev.to_string().as_bytes()).is_ok());
}

#[test]
fn messages_speak_json_not_rust() {
    let base = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut e = base.clone();
                e["encounter"]["version"] = json!(-3);
                e
            },
            "encounter.version: must be an integer from 1 to 2147483647 (value not shown)",
        ),
        (
            {
                let mut e = base.clone();
                e["encounter"]["version"] = json!(99_999_999_999u64);
                e
            },
            "encounter.version: must be an integer from 1 to 2147483647 (value not shown)",
        ),
        (
            {
                let mut e = base.clone();
                e["encounter"]["version"] = json!("1");
                e
            },
            "encounter.version: must be an integer from 1 to 2147483647, not a string (value not shown)",
        ),
        (
            {
                let mut e = base.clone();
                e["encounter"]["version"] = json!(0);
                e
            },
            "encounter.version: must be an integer from 1 to 2147483647",
        ),
        (
            {
                let mut e = base.clone();
                e["encounter"]["services"][0]["minutes"] = json!(1.5);
                e
            },
            "encounter.services[0].minutes: must be an integer from 0 to 1440, not a number with a fraction (value not shown)",
        ),
        (
            {
                let mut e = base.clone();
                e["encounter"] = json!("ENC-1");
                e
            },
            "encounter: must be a JSON object, not a string (value not shown)",
        ),
        (json!([1, 2]), ".: an event must be a JSON object"),
        (json!("text"), ".: an event must be a JSON object"),
        (json!(42), ".: an event must be a JSON object"),
    ];
    for (ev, want) in cases {
        let err = reject(&ev).to_string();
        assert!(err.starts_with(want), "{err}\nwanted: {want}");
        for rust in [
            "u32",
            "i32",
            "struct",
            "EncounterEvent",
            "Option",
            "floating",
        ] {
            assert!(!err.contains(rust), "a Rust name in: {err}");
        }
    }
}

#[test]
fn a_message_that_starts_with_a_byte_order_mark_is_invalid_json_naming_the_mark() {
    let ev = event("medicare", vec![svc("1", "97530", "14:00", "14:24")]);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(ev.to_string().as_bytes());
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_json");
    assert!(err.to_string().contains("byte-order mark"), "{err}");
}
