//! The ledger: what an event does to the lines already in force.

use crate::codec::decode;
use crate::domain::ledger::*;
use crate::domain::Encounter;
use crate::domain::Status;

fn enc(event_id: &str, event_type: &str, version: u32) -> Encounter {
    let mut ev: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/hip-fracture.json")).unwrap();
    ev["event_id"] = event_id.into();
    ev["event_type"] = event_type.into();
    ev["encounter"]["version"] = version.into();
    decode(ev.to_string().as_bytes()).unwrap()
}

#[test]
fn finalize_amend_redeliver_stale_void() {
    let rules = crate::cms::shipped::book();
    let mut ledger = Ledger::default();
    let d = ledger.apply(&enc("e1", "finalized", 1), rules);
    assert_eq!(
        (d.outcome, d.voided.len(), d.lines.len()),
        (Outcome::Processed, 0, 2)
    );

    let d = ledger.apply(&enc("e1", "finalized", 1), rules);
    assert_eq!(
        (d.outcome, d.voided.len(), d.lines.len()),
        (Outcome::Duplicate, 0, 0)
    );

    let d = ledger.apply(&enc("e2", "amended", 2), rules);
    assert_eq!(d.outcome, Outcome::Processed);
    let voided: Vec<_> = d
        .voided
        .iter()
        .map(|l| (l.claim_line_id.as_str(), l.status, &*l.event_id))
        .collect();
    assert_eq!(
        voided,
        vec![
            ("ENC-000101:1:1", Status::Void, "e2"),
            ("ENC-000101:1:2", Status::Void, "e2")
        ]
    );
    assert_eq!(d.lines[0].claim_line_id, "ENC-000101:2:1");

    let d = ledger.apply(&enc("e-late", "amended", 1), rules);
    assert_eq!(
        (d.outcome, d.voided.len(), d.lines.len()),
        (Outcome::Stale, 0, 0)
    );

    // The same version under another event id: a conflict, and so is
    // an event id reused for another version.
    let d = ledger.apply(&enc("e2-again", "amended", 2), rules);
    assert_eq!(
        (d.outcome, d.voided.len(), d.lines.len()),
        (Outcome::VersionConflict, 0, 0)
    );
    let d = ledger.apply(&enc("e2", "amended", 3), rules);
    assert_eq!(d.outcome, Outcome::EventIdConflict);
    assert_eq!(ledger.versions["ENC-000101"], 2, "conflicts change nothing");

    // A void of the current version voids it.
    let d = ledger.apply(&enc("e3", "voided", 2), rules);
    assert_eq!(d.outcome, Outcome::Voided);
    assert_eq!(
        d.voided
            .iter()
            .map(|l| l.claim_line_id.as_str())
            .collect::<Vec<_>>(),
        ["ENC-000101:2:1", "ENC-000101:2:2"]
    );
    assert!(d.lines.is_empty());
    assert!(!ledger.active.contains_key("ENC-000101"));
}
