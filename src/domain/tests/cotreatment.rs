//! Co-treatment and a provider's two visits: the encounters of one patient
//! and payer on one date are judged together. Under two providers (NPIs)
//! the same clock minutes are CO_TREATMENT on both sides (each line keeps
//! its minutes, both are held); under one provider they are one day, where
//! a minute counts once (SHARED_MINUTES). A later encounter that creates
//! or removes an overlap voids and reissues the earlier one's lines.

use super::*;
use crate::domain::ledger::{Decision, Ledger};

const PT_NPI: &str = "1234567893";
const OT_NPI: &str = "9876543213";
const PT2_NPI: &str = "1111111112";

/// An encounter of the usual patient on 2026-03-02 under `npi`.
fn enc(
    id: &str,
    event_id: &str,
    version: u32,
    npi: &str,
    discipline: &str,
    services: Vec<Value>,
) -> Value {
    let mut ev = event("medicare", services);
    ev["event_id"] = event_id.into();
    ev["event_type"] = if version == 1 { "finalized" } else { "amended" }.into();
    ev["encounter"]["encounter_id"] = id.into();
    ev["encounter"]["version"] = version.into();
    ev["encounter"]["provider"]["npi"] = npi.into();
    ev["encounter"]["provider"]["discipline"] = discipline.into();
    ev
}

fn apply(ledger: &mut Ledger, ev: &Value) -> Decision {
    let e = decode(ev.to_string().as_bytes()).expect("valid event");
    ledger.apply(&e, crate::cms::shipped::book())
}

fn co(l: &ClaimLine) -> Option<&Flag> {
    flag(l, FlagCode::CoTreatment)
}

fn pt(services: Vec<Value>) -> Value {
    enc("ENC-PT", "e-pt", 1, PT_NPI, "PT", services)
}

fn ot(services: Vec<Value>) -> Value {
    enc("ENC-OT", "e-ot", 1, OT_NPI, "OT", services)
}

#[test]
fn two_disciplines_over_the_same_minutes_are_co_treatment_on_both_sides() {
    let mut ledger = Ledger::default();
    let d = apply(&mut ledger, &pt(vec![svc("1", "97530", "10:00", "10:30")]));
    assert_eq!(d.lines[0].status, Status::Validated);
    assert!(co(&d.lines[0]).is_none(), "alone: no co-treatment");

    let d = apply(&mut ledger, &ot(vec![svc("1", "97530", "10:00", "10:30")]));
    // The PT line published validated is voided, then reissued with the flag
    // under a new line number; the OT line carries it too.
    assert_eq!(
        d.voided
            .iter()
            .map(|l| l.claim_line_id.as_str())
            .collect::<Vec<_>>(),
        ["ENC-PT:1:1"]
    );
    let ids: Vec<&str> = d.lines.iter().map(|l| l.claim_line_id.as_str()).collect();
    assert_eq!(ids, ["ENC-OT:1:1", "ENC-PT:1:2"]);
    for (l, other) in d.lines.iter().zip(["PT", "OT"]) {
        let f = co(l).expect("CO_TREATMENT");
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.contains(&format!("({other}, 97530)")),
            "{}",
            f.message
        );
        assert!(f.message.contains("billed once between"), "{}", f.message);
        assert!(!f.message.contains("PAT-SECRET"), "no patient value");
        assert_eq!(l.status, Status::NeedsReview);
        // Each keeps its minutes and units: the split is the clinicians'.
        assert_eq!((l.minutes, l.units), (30, 2));
    }
    // Nothing doubled: one line in force per encounter.
    assert_eq!(ledger.active.values().map(Vec::len).sum::<usize>(), 2);
}

#[test]
fn the_same_discipline_under_two_npis_is_co_treatment_too() {
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97110", "10:00", "10:30")]));
    let other = enc(
        "ENC-PT2",
        "e-pt2",
        1,
        PT2_NPI,
        "PT",
        vec![svc("1", "97140", "10:20", "10:50")],
    );
    let d = apply(&mut ledger, &other);
    let own = line(&d.lines, "97140");
    let f = co(own).expect("CO_TREATMENT");
    assert!(
        f.message.contains("(PT, 97110)") && f.message.contains("10 clock minute"),
        "{}",
        f.message
    );
    assert_eq!(f.related_codes, ["97110"]);
    assert!(co(line(&d.lines, "97110")).is_some());
}

#[test]
fn touching_minutes_are_not_co_treatment_and_one_shared_minute_is() {
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97530", "10:00", "10:30")]));
    let d = apply(&mut ledger, &ot(vec![svc("1", "97530", "10:30", "11:00")]));
    assert!(d.voided.is_empty(), "touching: the PT line stands");
    assert!(d
        .lines
        .iter()
        .all(|l| co(l).is_none() && l.status == Status::Validated));

    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97530", "10:00", "10:30")]));
    let d = apply(&mut ledger, &ot(vec![svc("1", "97530", "10:29", "11:00")]));
    assert_eq!(d.voided.len(), 1);
    assert!(d
        .lines
        .iter()
        .all(|l| co(l).is_some_and(|f| f.message.contains(" 1 clock minute"))));
}

#[test]
fn another_payer_or_another_date_is_not_co_treatment() {
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97530", "10:00", "10:30")]));
    let mut other_payer = ot(vec![svc("1", "97530", "10:00", "10:30")]);
    other_payer["encounter"]["payer"]["id"] = "PAYER-2".into();
    let d = apply(&mut ledger, &other_payer);
    assert!(d.voided.is_empty());
    assert!(co(&d.lines[0]).is_none());

    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97530", "10:00", "10:30")]));
    let mut next_day = ot(vec![json!({
        "line_id": "1", "code": "97530", "activities": ["stairs"],
        "start": "2026-03-03T10:00:00Z", "end": "2026-03-03T10:30:00Z"
    })]);
    next_day["encounter"]["date_of_service"] = "2026-03-03".into();
    let d = apply(&mut ledger, &next_day);
    assert!(d.voided.is_empty());
    assert!(co(&d.lines[0]).is_none());
}

#[test]
fn a_void_or_an_amendment_that_removes_the_overlap_clears_the_flag() {
    for removal in ["void", "amend"] {
        let mut ledger = Ledger::default();
        apply(&mut ledger, &pt(vec![svc("1", "97530", "10:00", "10:30")]));
        apply(&mut ledger, &ot(vec![svc("1", "97530", "10:00", "10:30")]));
        let ev = match removal {
            "void" => {
                let mut v = ot(vec![]);
                v["event_id"] = "e-ot-void".into();
                v["event_type"] = "voided".into();
                v
            }
            _ => enc(
                "ENC-OT",
                "e-ot-2",
                2,
                OT_NPI,
                "OT",
                vec![svc("1", "97530", "11:00", "11:30")],
            ),
        };
        let d = apply(&mut ledger, &ev);
        // The OT line and the flagged PT line (line 2) are voided; PT is
        // reissued (line 3) without the flag, validated again.
        let voided: Vec<&str> = d.voided.iter().map(|l| l.claim_line_id.as_str()).collect();
        assert_eq!(voided, ["ENC-OT:1:1", "ENC-PT:1:2"], "{removal}");
        let pt_line = d
            .lines
            .iter()
            .find(|l| &*l.encounter_id == "ENC-PT")
            .expect("PT reissued");
        assert_eq!(pt_line.claim_line_id, "ENC-PT:1:3");
        assert!(co(pt_line).is_none());
        assert_eq!(pt_line.status, Status::Validated, "{removal}");
        assert!(d.lines.iter().all(|l| co(l).is_none()));
    }
}

#[test]
fn two_visits_of_one_provider_share_no_minute() {
    // Same NPI: one day. The afternoon visit repeats 10 of the morning's
    // minutes: counted once, for the earlier visit; both lines flagged
    // SHARED_MINUTES, neither CO_TREATMENT.
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97110", "10:00", "10:30")]));
    let second = enc(
        "ENC-PT-B",
        "e-pt-b",
        1,
        PT_NPI,
        "PT",
        vec![svc("1", "97140", "10:20", "10:50")],
    );
    let d = apply(&mut ledger, &second);
    let later = line(&d.lines, "97140");
    assert_eq!(
        later.minutes, 20,
        "10 of its 30 minutes were the earlier visit's"
    );
    let earlier = line(&d.lines, "97110");
    assert_eq!(earlier.minutes, 30);
    for l in [earlier, later] {
        assert!(co(l).is_none());
        assert!(flag(l, FlagCode::SharedMinutes).is_some(), "{l:?}");
        assert_eq!(l.status, Status::NeedsReview);
    }
    // 50 clock minutes on the day: 3 units, not 4.
    let units: u32 = ledger.active.values().flatten().map(|l| l.units).sum();
    assert_eq!(units, 3);

    // Touching visits: nothing shared, nothing flagged.
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97110", "10:00", "10:30")]));
    let second = enc(
        "ENC-PT-B",
        "e-pt-b",
        1,
        PT_NPI,
        "PT",
        vec![svc("1", "97140", "10:30", "11:00")],
    );
    let d = apply(&mut ledger, &second);
    assert!(d
        .lines
        .iter()
        .all(|l| flag(l, FlagCode::SharedMinutes).is_none()));
}

#[test]
fn a_group_session_of_another_visit_keeps_its_minutes_whatever_the_order() {
    // The one-on-one service is in the earlier visit, the group session in
    // the later one: the group keeps the minutes.
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97110", "09:50", "10:30")]));
    let group = enc(
        "ENC-PT-B",
        "e-pt-b",
        1,
        PT_NPI,
        "PT",
        vec![svc("1", "97150", "10:00", "10:30")],
    );
    let d = apply(&mut ledger, &group);
    let timed = line(&d.lines, "97110");
    assert_eq!(
        timed.minutes, 10,
        "the 30 minutes inside the group are the group's"
    );
    assert!(
        flag(timed, FlagCode::SharedMinutes).is_some_and(|f| f.message.contains("group session"))
    );
    assert!(flag(line(&d.lines, "97150"), FlagCode::SharedMinutes).is_some());
}

#[test]
fn an_evaluation_under_one_provider_and_timed_minutes_under_another_are_co_treatment() {
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![svc("1", "97161", "10:00", "10:40")]));
    let d = apply(&mut ledger, &ot(vec![svc("1", "97530", "10:30", "11:00")]));
    let ot_line = line(&d.lines, "97530");
    assert!(co(ot_line).is_some_and(|f| f.message.contains("(PT, 97161)")));
    // Its minutes are not taken away: the split is the clinicians'.
    assert_eq!(ot_line.minutes, 30);
    assert!(co(line(&d.lines, "97161")).is_some());
}

#[test]
fn minutes_without_clock_times_are_not_compared() {
    let mut ledger = Ledger::default();
    apply(&mut ledger, &pt(vec![minutes_svc("1", "97530", 30)]));
    let d = apply(&mut ledger, &ot(vec![svc("1", "97530", "10:00", "10:30")]));
    assert!(d.voided.is_empty());
    assert!(co(&d.lines[0]).is_none());
}

#[test]
fn the_order_of_arrival_does_not_change_the_flags() {
    let (p, o) = (
        pt(vec![svc("1", "97530", "10:00", "10:30")]),
        ot(vec![svc("1", "97530", "10:15", "10:45")]),
    );
    let in_force = |first: &Value, second: &Value| {
        let mut ledger = Ledger::default();
        apply(&mut ledger, first);
        apply(&mut ledger, second);
        let mut out: Vec<(String, Vec<Flag>, u32)> = ledger
            .active
            .values()
            .flatten()
            .map(|l| (l.encounter_id.to_string(), l.flags.clone(), l.units))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(in_force(&p, &o), in_force(&o, &p));
}

/// (encounter slot, services as (code, start minute, length, one-on-one), void)
type Step = (usize, Vec<(&'static str, u32, u32, bool)>, bool);

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    let service = (
        prop::sample::select(vec![
            "97530", "97110", "97112", "97140", "97535", "97150", "97161", "G0283",
        ]),
        0u32..180,
        1u32..60,
        prop::bool::weighted(0.85),
    );
    prop::collection::vec(
        (
            0usize..4,
            prop::collection::vec(service, 1..4),
            prop::bool::weighted(0.15),
        ),
        1..6,
    )
}

/// The encounter slots: two under the PT NPI (one provider's day), one
/// under an OT NPI, one under a second PT NPI.
const SLOTS: [(&str, &str); 4] = [
    (PT_NPI, "PT"),
    (OT_NPI, "OT"),
    (PT_NPI, "PT"),
    (PT2_NPI, "PT"),
];

fn step_event(n: usize, step: &Step, version: u32) -> Value {
    let (slot, services, void) = step;
    let (npi, discipline) = SLOTS[*slot];
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let services = services
        .iter()
        .enumerate()
        .map(|(i, (code, start, len, one_on_one))| {
            let s = base + chrono::Duration::minutes((*start).into());
            json!({
                "line_id": i.to_string(), "code": code, "one_on_one": one_on_one,
                "start": s.to_rfc3339(),
                "end": (s + chrono::Duration::minutes((*len).into())).to_rfc3339(),
                "activities": ["transfers"]
            })
        })
        .collect();
    let mut ev = enc(
        &format!("ENC-{slot}"),
        &format!("e-{n}"),
        version,
        npi,
        discipline,
        services,
    );
    if *void && version > 1 {
        ev["event_type"] = "voided".into();
    }
    ev
}

/// Seconds of the union of `spans`, less those `minus` covers.
fn union_less(spans: &[(i64, i64)], minus: &[(i64, i64)]) -> i64 {
    let covered = |t: i64, set: &[(i64, i64)]| set.iter().any(|&(a, b)| a <= t && t < b);
    // Whole minutes: every interval starts and ends on one.
    let lo = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let hi = spans.iter().map(|s| s.1).max().unwrap_or(0);
    (lo..hi)
        .step_by(60)
        .filter(|&t| covered(t, spans) && !covered(t, minus))
        .count() as i64
        * 60
}

proptest! {
    /// (a) No clock minute of the patient's (payer's, date's) day is counted
    /// twice across the lines not flagged CO_TREATMENT; (b) the timed units
    /// of a provider's day never exceed what the union of its one-on-one
    /// minutes allows; every line in force is held exactly when it has an
    /// error flag, and ids are never reused.
    #[test]
    fn a_clock_minute_of_the_day_counts_once(steps in arb_steps()) {
        let rules = rules();
        let mut ledger = Ledger::default();
        let mut versions = [0u32; 4];
        let mut latest: [Option<Encounter>; 4] = Default::default();
        let mut ids = std::collections::HashSet::new();
        for (n, step) in steps.iter().enumerate() {
            versions[step.0] += 1;
            let ev = step_event(n, step, versions[step.0]);
            let e = decode(ev.to_string().as_bytes()).expect("valid event");
            let d = ledger.apply(&e, crate::cms::shipped::book());
            for l in &d.lines {
                prop_assert!(ids.insert(l.claim_line_id.clone()), "{} issued twice", l.claim_line_id);
            }
            latest[step.0] = (e.event_type != values::EventType::Voided).then_some(e);
        }
        let lines: Vec<&ClaimLine> = ledger.active.values().flatten().collect();
        let timed = |c: &values::Code| rules.catalogue.get_code(c).is_some_and(|i| i.timed);
        let holder = |c: &values::Code| rules.catalogue.get_code(c).is_some_and(|i| !i.timed || i.kind == Some(crate::domain::rules::CodeKind::Group));
        let spans = |npi: Option<&str>, keep: &dyn Fn(&crate::domain::encounter::Service) -> bool| -> Vec<(i64, i64)> {
            latest.iter().flatten()
                .filter(|e| npi.is_none_or(|n| e.npi.as_str() == n))
                .flat_map(|e| e.services.iter())
                .filter(|s| keep(s))
                .filter_map(|s| s.interval.map(|i| (i.start.timestamp(), i.end.timestamp())))
                .collect()
        };
        let one_on_one = |s: &crate::domain::encounter::Service| timed(&s.code) && !holder(&s.code) && s.one_on_one;
        let holders = spans(None, &|s| holder(&s.code));
        let clock = union_less(&spans(None, &one_on_one), &holders);
        let counted: u32 = lines.iter()
            .filter(|l| timed(&l.code) && l.flags.iter().all(|f| f.code != FlagCode::CoTreatment))
            .map(|l| l.minutes)
            .sum();
        prop_assert!(i64::from(counted) * 60 <= clock, "{} minutes counted for {} s of one-on-one clock time", counted, clock);
        for npi in [PT_NPI, OT_NPI, PT2_NPI] {
            let own = union_less(&spans(Some(npi), &one_on_one), &spans(Some(npi), &|s| holder(&s.code)));
            let units: u32 = lines.iter()
                .filter(|l| l.provider_npi.as_str() == npi && timed(&l.code))
                .map(|l| l.units)
                .sum();
            prop_assert!(units <= crate::domain::units::units_for_minutes((own / 60) as u32), "{} units for {} s", units, own);
        }
        for l in &lines {
            let held = l.flags.iter().any(|f| f.severity == Severity::Error);
            prop_assert_eq!(l.status == Status::NeedsReview, held);
        }
    }
}
