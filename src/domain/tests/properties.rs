//! Properties over generated events.

use super::*;

fn arb_service() -> impl Strategy<Value = Value> {
    let codes = prop::sample::select(vec![
        "97530", "97110", "97112", "97140", "97535", "97150", "97161", "G0283",
    ]);
    (
        codes,
        0u32..600,
        0u32..90,
        prop::option::of(0u32..100),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["59", "XU", "KX"])),
    )
        .prop_map(|(code, start, minutes, documented, one_on_one, modifier)| {
            let start_t = chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap()
                + chrono::Duration::minutes(start.into());
            let mut s = json!({
                "code": code,
                "start": start_t.to_rfc3339(),
                "end": (start_t + chrono::Duration::minutes(minutes.into())).to_rfc3339(),
                "one_on_one": one_on_one,
                "activities": ["transfers"]
            });
            if let Some(d) = documented {
                s["minutes"] = json!(d);
            }
            if let Some(m) = modifier {
                s["modifiers"] = json!([m]);
            }
            s
        })
}

fn arb_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["medicare", "medicaid", "commercial", "other"]),
        prop::collection::vec(arb_service(), 1..6),
    )
        .prop_map(|(plan, services)| {
            let services = services
                .into_iter()
                .enumerate()
                .map(|(i, mut s)| {
                    s["line_id"] = json!(i.to_string());
                    s
                })
                .collect();
            event(plan, services)
        })
}

proptest! {
    #[test]
    fn evaluation_is_deterministic_and_consistent(ev in arb_event()) {
        let a = run(&ev);
        let b = run(&ev);
        prop_assert_eq!(&a, &b);
        for l in &a {
            let held = l.flags.iter().any(|f| f.severity == Severity::Error);
            prop_assert_eq!(l.status == Status::NeedsReview, held);
            prop_assert!(l.modifiers[0] == "GP");
        }
        let plan = ev["encounter"]["payer"]["plan"].as_str().unwrap();
        if plan == "medicare" || plan == "medicaid" {
            let timed_minutes: u32 = a.iter().filter(|l| Rules::builtin().catalogue.get_code(&l.code).unwrap().timed).map(|l| l.minutes).sum();
            let timed_units: u32 = a.iter().filter(|l| Rules::builtin().catalogue.get_code(&l.code).unwrap().timed).map(|l| l.units).sum();
            prop_assert_eq!(timed_units, crate::domain::units::units_for_minutes(timed_minutes));
        }
    }

    #[test]
    fn decoding_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_never_panics_on_damaged_events(ev in arb_event(), cut in 0usize..4000, byte in any::<u8>()) {
        let mut bytes = ev.to_string().into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        if let Ok(enc) = decode(&bytes) {
            let _ = evaluate(&enc, Rules::builtin());
        }
        bytes.truncate(at);
        let _ = decode(&bytes);
    }
}
