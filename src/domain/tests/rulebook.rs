//! Rule sets by date of service: which imported or shipped table is in
//! force, PTP quarters with their four parts, a year's GPCIs.

use crate::domain::rulebook::*;
use crate::domain::rules::{Mue, PtpEdit, Rules, Rvu};
use crate::domain::Code;
use chrono::NaiveDate;

fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Part `part` of an imported PTP quarter.
fn ptp(label: &str, from: &str, part: u8, pairs: &[(&str, &str)]) -> Table {
    Table {
        label: label.into(),
        valid_from: day(from),
        origin: Origin::Imported,
        coverage: None,
        part: Some(part),
        rows: TableRows::Ptp(
            pairs
                .iter()
                .map(|(a, b)| PtpEdit {
                    column1: code(a),
                    column2: code(b),
                    modifier_indicator: 1,
                    effective: None,
                    deleted: None,
                })
                .collect(),
        ),
    }
}

/// The quarter's other parts, without the catalogue's codes.
fn rest(label: &str, from: &str, parts: &[u8]) -> Vec<Table> {
    parts.iter().map(|&p| ptp(label, from, p, &[])).collect()
}

#[test]
fn each_date_gets_the_tables_in_force_on_it() {
    let mut tables = vec![
        ptp("2026Q3", "2026-07-01", 1, &[("97140", "97530")]),
        ptp("2026Q4", "2026-10-01", 1, &[("97530", "97116")]),
        // The second part of the Q4 table: one table with the first.
        ptp("2026Q4", "2026-10-01", 2, &[("97530", "97112")]),
        Table {
            label: "2026Q4".into(),
            valid_from: day("2026-10-01"),
            origin: Origin::Imported,
            coverage: None,
            part: None,
            rows: TableRows::Mue(vec![Mue {
                code: code("97530"),
                value: 6,
                adjudication_indicator: 3,
            }]),
        },
        Table {
            label: "2026A".into(),
            valid_from: day("2026-01-01"),
            origin: Origin::Imported,
            coverage: None,
            part: None,
            rows: TableRows::Pfs(FeeSchedule {
                conversion_factor: 33.4009,
                bundled: Vec::new(),
                rvus: vec![(
                    code("97530"),
                    Rvu {
                        work: 0.44,
                        pe_nonfacility: 0.6,
                        mp: 0.02,
                    },
                )],
            }),
        },
    ];
    tables.extend(rest("2026Q3", "2026-07-01", &[2, 3, 4]));
    tables.extend(rest("2026Q4", "2026-10-01", &[3, 4]));
    let book = RuleBook::new(Rules::builtin(), &tables);
    let base = Rules::builtin();

    let before = book.for_date(day("2025-12-31"));
    assert_eq!(before.version, base.version);
    assert_eq!(before.edits.ptp, base.edits.ptp);

    let q2 = book.for_date(day("2026-06-30"));
    assert_eq!(q2.version, format!("{}+pfs.2026A", base.version));
    assert_eq!(q2.edits.ptp, base.edits.ptp, "no PTP table yet");
    assert_eq!(q2.catalogue.get("97530").unwrap().rvu.unwrap().work, 0.44);
    assert!(
        q2.catalogue.get("97110").unwrap().rvu.is_none(),
        "a code the imported schedule lacks gets no estimate"
    );

    let q3 = book.for_date(day("2026-07-01"));
    assert_eq!(q3.version, format!("{}+ptp.2026Q3+pfs.2026A", base.version));
    assert_eq!(q3.edits.ptp.len(), 1);
    assert_eq!(q3.edits.ptp[0].column2, code("97530"));
    assert_eq!(q3.edits.mue, base.edits.mue);

    let q4 = book.for_date(day("2026-10-01"));
    assert_eq!(
        q4.version,
        format!("{}+ptp.2026Q4+mue.2026Q4+pfs.2026A", base.version)
    );
    let mut pairs: Vec<String> = q4
        .edits
        .ptp
        .iter()
        .map(|e| format!("{}/{}", e.column1, e.column2))
        .collect();
    pairs.sort();
    assert_eq!(pairs, ["97530/97112", "97530/97116"]);
    assert_eq!(q4.edits.mue(code("97530")).unwrap().value, 6);
    // The last table stays in force after its quarter.
    assert_eq!(book.for_date(day("2027-03-01")).version, q4.version);
}

#[test]
fn a_revision_or_a_corrected_file_replaces_the_table_it_corrects() {
    let mue = |label: &str, value: u32| Table {
        label: label.into(),
        valid_from: day("2026-10-01"),
        origin: Origin::Imported,
        coverage: None,
        part: None,
        rows: TableRows::Mue(vec![Mue {
            code: code("97530"),
            value,
            adjudication_indicator: 3,
        }]),
    };
    let mut tables = vec![
        ptp("2026Q4", "2026-10-01", 1, &[("97140", "97530")]),
        ptp("2026Q4", "2026-10-01", 2, &[("97530", "97116")]),
        // Revision 1 of the quarter's PTP table.
        ptp("2026Q4r1", "2026-10-01", 1, &[("97530", "97112")]),
        mue("2026Q4", 6),
        // A corrected MUE file of the same quarter, loaded later.
        mue("2026Q4", 8),
    ];
    tables.extend(rest("2026Q4", "2026-10-01", &[3, 4]));
    tables.extend(rest("2026Q4r1", "2026-10-01", &[2, 3, 4]));
    let book = RuleBook::new(Rules::builtin(), &tables);
    let r = book.for_date(day("2026-11-01"));
    let pairs: Vec<String> = r
        .edits
        .ptp
        .iter()
        .map(|e| format!("{}/{}", e.column1, e.column2))
        .collect();
    assert_eq!(pairs, ["97530/97112"]);
    assert_eq!(r.edits.mue.len(), 1);
    assert_eq!(r.edits.mue(code("97530")).unwrap().value, 8);
    assert!(
        r.version.ends_with("+ptp.2026Q4r1+mue.2026Q4"),
        "{}",
        r.version
    );
}

#[test]
fn no_tables_is_the_builtin_rule_set() {
    let book = RuleBook::new(Rules::builtin(), &[]);
    assert_eq!(
        book.for_date(day("2026-05-05")).version,
        crate::domain::RULES_VERSION
    );
    assert_eq!(book.periods().count(), 0);
}

#[test]
fn a_ptp_quarter_is_in_force_only_with_all_four_parts() {
    let mut tables = vec![
        ptp("2026Q3", "2026-07-01", 1, &[("97140", "97530")]),
        ptp("2026Q4", "2026-10-01", 1, &[("97530", "97116")]),
        ptp("2026Q4", "2026-10-01", 3, &[]),
    ];
    tables.extend(rest("2026Q3", "2026-07-01", &[2, 3, 4]));
    let pending = pending_ptp(&tables);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].missing, [2, 4]);
    assert_eq!(
        pending[0].to_string(),
        "the 2026Q4 PTP table is not in force: CMS publishes it in four parts and parts f2, f4 are missing"
    );
    // Q3 stays in force past Q4's start while Q4 is pending.
    let book = RuleBook::new(Rules::builtin(), &tables);
    let r = book.for_date(day("2026-11-01"));
    assert!(r.version.ends_with("+ptp.2026Q3"), "{}", r.version);
    assert_eq!(r.edits.ptp.len(), 1);
    assert_eq!(r.edits.ptp[0].column1, code("97140"));

    // A file that names no part never completes a quarter.
    let mut unnumbered = ptp("2026Q4", "2026-10-01", 2, &[]);
    unnumbered.part = None;
    tables.push(unnumbered);
    let pending = pending_ptp(&tables);
    assert_eq!(pending[0].missing, [2, 4]);
    assert_eq!(pending[0].unnumbered, 1);

    // The last parts arrive: Q4 takes over from its first day.
    tables.extend(rest("2026Q4", "2026-10-01", &[2, 4]));
    assert!(pending_ptp(&tables).is_empty());
    let book = RuleBook::new(Rules::builtin(), &tables);
    let r = book.for_date(day("2026-11-01"));
    assert!(r.version.ends_with("+ptp.2026Q4"), "{}", r.version);
    assert_eq!(r.edits.ptp.len(), 1);
    assert_eq!(r.edits.ptp[0].column2, code("97116"));
}

#[test]
fn a_years_gpcis_price_that_year_only() {
    use crate::domain::locality::{Gpci, Locality, ProviderLocalities};
    let la = Locality::parse("01182-18").unwrap();
    let tables = [Table {
        label: "2025".into(),
        valid_from: day("2025-01-01"),
        origin: Origin::Imported,
        coverage: None,
        part: None,
        rows: TableRows::Gpci(vec![Gpci {
            locality: la,
            work: 1.042,
            pe: 1.194,
            mp: 0.69,
        }]),
    }];
    let npi = crate::domain::Npi::parse("1234567893").unwrap();
    let book = RuleBook::new(Rules::builtin(), &tables)
        .located(ProviderLocalities::parse("1234567893=01182-18").unwrap());
    assert!(book.for_date(day("2024-12-31")).gpci.is_none());
    let r = book.for_date(day("2025-12-31"));
    assert!(r.version.ends_with("+gpci.2025"), "{}", r.version);
    assert_eq!(r.gpci.as_ref().unwrap().get(la).unwrap().pe, 1.194);
    assert_eq!(r.localities.get(&npi), Some(la));
    let next = book.for_date(day("2026-01-01"));
    assert!(next.gpci.is_none(), "2025's GPCIs do not price 2026");
    assert!(!next.version.contains("gpci"), "{}", next.version);
    assert_eq!(next.localities.get(&npi), Some(la));
    assert_eq!(
        book.for_date(day("2024-01-01")).localities.get(&npi),
        Some(la)
    );
}
