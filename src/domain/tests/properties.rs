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
        prop::option::of(0u32..100),
    )
        .prop_map(
            |(code, start, minutes, documented, one_on_one, modifier, assistant)| {
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
                if let Some(a) = assistant {
                    s["assistant_minutes"] = json!(a);
                }
                s
            },
        )
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

    /// No clock minute is billed twice, only one-on-one minutes are timed
    /// minutes, and CQ/CO units never exceed what the assistant's minutes
    /// can earn.
    #[test]
    fn a_minute_counts_once_and_assistant_units_are_earned(ev in arb_event()) {
        let lines = run(&ev);
        let enc = decode(ev.to_string().as_bytes()).unwrap();
        let rules = rules();
        let timed = |code: &values::Code| rules.catalogue.get_code(code).is_some_and(|i| i.timed);
        // The union of the one-on-one timed services' documented intervals.
        let mut spans: Vec<(i64, i64)> = enc
            .services
            .iter()
            .filter(|s| timed(&s.code) && s.code != "97150")
            .filter(|s| s.one_on_one && s.group_size.is_none_or(|g| g <= 1))
            .filter_map(|s| s.interval.map(|i| (i.start.timestamp(), i.end.timestamp())))
            .collect();
        spans.sort_unstable();
        let (mut union, mut reach) = (0i64, i64::MIN);
        for (a, b) in spans {
            let a = a.max(reach);
            if b > a {
                union += b - a;
            }
            reach = reach.max(b);
        }
        let line_minutes: u32 = lines.iter().filter(|l| timed(&l.code)).map(|l| l.minutes).sum();
        prop_assert!(i64::from(line_minutes) * 60 <= union, "{} minutes billed for a union of {} s", line_minutes, union);
        let units: u32 = lines.iter().filter(|l| timed(&l.code)).map(|l| l.units).sum();
        let plan = ev["encounter"]["payer"]["plan"].as_str().unwrap();
        if plan == "medicare" || plan == "medicaid" {
            prop_assert!(units <= crate::domain::units::units_for_minutes((union / 60) as u32));
        }
        for code in enc.services.iter().map(|s| s.code) {
            let assistant: u32 = enc.services.iter().filter(|s| s.code == code).map(|s| s.assistant_minutes).sum();
            let cq: u32 = lines
                .iter()
                .filter(|l| l.code == code && timed(&code) && l.modifiers.iter().any(|m| m.is_assistant()))
                .map(|l| l.units)
                .sum();
            prop_assert!(cq <= assistant.div_ceil(15), "{} CQ units of {} for {} assistant minutes", cq, code, assistant);
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
            let _ = evaluate(&enc, rules_on(enc.date_of_service));
        }
        bytes.truncate(at);
        let _ = decode(&bytes);
    }
}
