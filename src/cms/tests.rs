//! The importer against CMS's own rows (tests/fixtures/cms/README.md says
//! where each fixture comes from, and which one is derived).

use super::*;
use crate::domain::rulebook::TableRows;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cms/");

/// The first 160 lines of CMS's ccipra-v322r0-f1.TXT (real layout; no
/// catalogue code among them). In a subdirectory: `--rules DIR` reads only
/// DIR's own files, and one part's first lines are not the Q3 table.
const PTP_LAYOUT: &str = "ptp-layout/ccipra-v322r0-f1.excerpt.txt";
/// The derived v32.3 therapy rows cut into four synthetic parts (the
/// fixtures' README): the quarter as `rules import` takes it.
const PTP_Q4: &str = "ccipra-v323r0-f1.therapy-subset-DERIVED.txt";
const PTP_Q4_PARTS: [&str; 4] = [
    PTP_Q4,
    "ccipra-v323r0-f2.therapy-subset-DERIVED.txt",
    "ccipra-v323r0-f3.therapy-subset-DERIVED.txt",
    "ccipra-v323r0-f4.therapy-subset-DERIVED.txt",
];
const MUE_Q2: &str = "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv";
const RVU25D: &str = "PPRRVU2025_Oct.csv";
const RVU26C: &str = "PPRRVU2026_Jul_nonQPP.csv";

fn read(name: &str) -> Result<Imported, ImportError> {
    read_file(
        &Path::new(DIR).join(name),
        Given::default(),
        Rules::builtin(),
    )
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DIR).join(name)).unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn pairs(rows: &[crate::domain::rules::PtpEdit]) -> Vec<String> {
    rows.iter()
        .map(|e| {
            format!(
                "{}/{} {} {:?} {:?}",
                e.column1, e.column2, e.modifier_indicator, e.effective, e.deleted
            )
        })
        .collect()
}

#[test]
fn ptp_files_read_by_cms_layout_and_name() {
    // CMS's own first lines: a copyright line and the title padded with
    // tabs, the header wrapped over four lines, CRLF; 154 rows, of codes
    // 0001A-0001U, none in the catalogue.
    let layout = read(PTP_LAYOUT).unwrap();
    assert_eq!(layout.file_name, "ccipra-v322r0-f1.excerpt.txt");
    assert_eq!(
        (layout.table.label.as_str(), layout.table.valid_from),
        ("2026Q3", day("2026-07-01"))
    );
    assert_eq!(layout.rows_read, 154);
    assert!(layout.table.rows.is_empty());
    // Every row parses to CMS's values: indicator 9 (6 rows) is no edit.
    let text: String = bytes(PTP_LAYOUT).iter().map(|&b| b as char).collect();
    let (all, n) = ptp::parse(text.as_bytes(), |_| true).unwrap();
    assert_eq!((n, all.len()), (154, 148));
    let all = pairs(&all);
    assert_eq!(all[0], "0001A/0591T 1 Some(2022-01-01) Some(2023-12-31)");
    assert!(all.contains(&"0001U/0030U 1 Some(2018-07-01) None".to_owned()));
    assert!(
        !all.iter().any(|p| p.starts_with("0001A/90473")),
        "indicator 9"
    );
    assert_eq!(all[147], "0001U/81166 1 Some(2019-01-01) None");

    // The v32.3 therapy rows (derived: a third party's rewrite put back
    // into CMS's layout): 24 rows, 16 of them indicator 9.
    let mut rows = Vec::new();
    let mut read_rows = 0;
    for (n, name) in PTP_Q4_PARTS.iter().enumerate() {
        let part = read(name).unwrap();
        assert_eq!(
            (
                part.table.label.as_str(),
                part.table.valid_from,
                part.table.part
            ),
            ("2026Q4", day("2026-10-01"), Some(n as u8 + 1))
        );
        read_rows += part.rows_read;
        let TableRows::Ptp(r) = part.table.rows else {
            panic!("not PTP")
        };
        rows.extend(r);
    }
    assert_eq!(read_rows, 24);
    // Row for row the table claimline ships (data/cms/).
    let shipped_rows = shipped::tables()
        .iter()
        .find_map(|t| match &t.rows {
            TableRows::Ptp(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(rows, shipped_rows);
    let rows = &rows;
    assert_eq!(
        pairs(rows),
        [
            "97140/97530 1 Some(2000-07-01) Some(2019-12-31)",
            "97162/97161 0 Some(2020-10-01) None",
            "97162/97161 0 Some(2017-01-01) Some(2019-12-31)",
            "97163/97161 0 Some(2020-10-01) None",
            "97163/97161 0 Some(2017-01-01) Some(2019-12-31)",
            "97163/97162 0 Some(2020-10-01) None",
            "97163/97162 0 Some(2017-01-01) Some(2019-12-31)",
            "97530/97116 1 Some(1999-07-01) Some(2019-12-31)",
        ]
    );
    // In force in Q4 2026: the evaluation pairs only; 97530 with 97140 or
    // 97116 was deleted on 2019-12-31.
    let in_force: Vec<String> = pairs(
        &rows
            .iter()
            .filter(|e| e.in_effect(day("2026-10-01")))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        in_force,
        [
            "97162/97161 0 Some(2020-10-01) None",
            "97163/97161 0 Some(2020-10-01) None",
            "97163/97162 0 Some(2020-10-01) None",
        ]
    );
    let on_2019 = rows
        .iter()
        .filter(|e| e.in_effect(day("2019-06-01")))
        .count();
    assert_eq!(on_2019, 5, "97140/97530, 97530/97116 and the 2017 pairs");
}

#[test]
fn mue_file_reads_quoted_line_breaks_and_a_latin1_notice() {
    let raw = bytes(MUE_Q2);
    // CMS's notice has a Latin-1 (R) sign, 0xAE: not UTF-8.
    assert!(raw.contains(&0xAE) && std::str::from_utf8(&raw).is_err());
    let i = read(MUE_Q2).unwrap();
    assert_eq!(
        (i.table.label.as_str(), i.table.valid_from, i.rows_read),
        ("2026Q2", day("2026-04-01"), 58)
    );
    let TableRows::Mue(rows) = &i.table.rows else {
        panic!("not MUE")
    };
    assert_eq!(rows.len(), 58, "every row is a catalogue code");
    let get = |code: &str| {
        rows.iter()
            .find(|m| m.code.as_str() == code)
            .map(|m| (m.value, m.adjudication_indicator))
    };
    assert_eq!(
        rows[0].code.as_str(),
        "92507",
        "the first row after the header"
    );
    assert_eq!(rows[57].code.as_str(), "G0283", "and the last");
    assert_eq!(
        [
            get("97530"),
            get("97110"),
            get("97112"),
            get("97116"),
            get("97150"),
            get("92521"),
            get("97014")
        ],
        [
            Some((6, 3)),
            Some((6, 3)),
            Some((4, 3)),
            Some((4, 3)),
            Some((1, 3)),
            Some((1, 2)),
            Some((0, 3)),
        ]
    );
}

#[test]
fn pprrvu_files_of_each_year_read_by_their_headings() {
    // 2025 (CRLF) and 2026 (LF): ten notice and header lines; 2026 adds a
    // column (PRIC IND) before CONV FACTOR, so the columns are found by
    // heading, not by position.
    for (name, label, from, cf, rvu_97530) in [
        (RVU25D, "2025D", "2025-10-01", 32.3465, (0.44, 0.62, 0.01)),
        (RVU26C, "2026C", "2026-07-01", 33.4009, (0.44, 0.60, 0.01)),
    ] {
        let i = read(name).unwrap();
        assert_eq!(
            (i.table.label.as_str(), i.table.valid_from, i.rows_read),
            (label, day(from), 58),
            "{name}"
        );
        let TableRows::Pfs(f) = &i.table.rows else {
            panic!("not PFS")
        };
        assert_eq!(f.conversion_factor, cf, "{name}");
        // Status A (49 rows) and R (97026) are paid; B (97010) is bundled;
        // I (97014), C (97039, 97139) and N (97169-97172) give no estimate.
        assert_eq!(f.rvus.len(), 50, "{name}");
        let codes = |v: &[Code]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(codes(&f.bundled), ["97010"], "{name}");
        let paid: Vec<Code> = f.rvus.iter().map(|(c, _)| *c).collect();
        let paid = codes(&paid);
        for absent in ["97010", "97014", "97039", "97139", "97169", "97172"] {
            assert!(!paid.contains(&absent.to_owned()), "{name}: {absent}");
        }
        assert!(paid.contains(&"97026".to_owned()), "{name}: status R");
        let (_, rvu) = f.rvus.iter().find(|(c, _)| c.as_str() == "97530").unwrap();
        assert_eq!((rvu.work, rvu.pe_nonfacility, rvu.mp), rvu_97530, "{name}");
    }
}

/// `name`'s bytes with `from` replaced by `to` once (it must occur).
fn altered(name: &str, from: &str, to: &str) -> String {
    let text: String = bytes(name).iter().map(|&b| b as char).collect();
    assert_eq!(text.matches(from).count(), 1, "{name}: {from:?}");
    text.replacen(from, to, 1)
}

fn error_of(name: &str, text: &str) -> String {
    let bytes: Vec<u8> = text.chars().map(|c| c as u8).collect();
    read_bytes(name, &bytes, Given::default(), Rules::builtin())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_bad_row_is_named_by_its_line() {
    // CRLF PTP files: the derived Q4 rows and CMS's own v32.2 lines.
    let bad = altered(
        PTP_Q4,
        "97140\t97530\t\t20000701",
        "97140\t97530\t\t2000-07-01",
    );
    assert_eq!(
        error_of(PTP_Q4, &bad),
        "ccipra-v323r0-f1.therapy-subset-DERIVED.txt, line 10, column 4 (Effective Date): the effective date is not a YYYYMMDD date"
    );
    let bad = altered(
        PTP_LAYOUT,
        "0001U\t81166\t\t20190101\t*\t1",
        "0001U\t81166\t\t20190101\t*\tx",
    );
    assert_eq!(
        error_of("ccipra-v322r0-f1.excerpt.txt", &bad),
        "ccipra-v322r0-f1.excerpt.txt, line 160, column 6 (Modifier): the modifier indicator is not 0, 1 or 9"
    );

    // The MUE file: the notice (7 lines) and the header (2) are quoted
    // cells with line breaks; 97140's row is on line 43.
    let bad = altered(MUE_Q2, "\n97140,6,", "\n97140,six,");
    let want = "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv, line 43, column 2 (Practitioner Services MUE Values): the MUE value is not a whole number of units";
    assert_eq!(error_of(MUE_Q2, &bad), want);
    // CRLF line ends: still the right line.
    assert_eq!(error_of(MUE_Q2, &bad.replace('\n', "\r\n")), want);

    // PPRRVU: 97530 is on line 58 of each year's file (CRLF in 2025, LF in
    // 2026).
    for name in [RVU25D, RVU26C] {
        let bad = altered(name, "\n97530,,,A,,0.44,", "\n97530,,,A,,x.44,");
        assert_eq!(
            error_of(name, &bad),
            format!("{name}, line 58, column 6 (WORK RVU): WORK RVU is not a number")
        );
    }

    let rules = Rules::builtin();
    let e = read_bytes("rules.txt", b"97530\t97116", Given::default(), rules).unwrap_err();
    assert!(matches!(e, ImportError::UnknownKind { .. }), "{e}");
    let e = read_bytes(
        "practitioner-ptp-edits.txt",
        b"97530\t97116",
        Given::default(),
        rules,
    )
    .unwrap_err();
    assert!(matches!(e, ImportError::UnknownQuarter { .. }), "{e}");
    let e = read_bytes(
        "practitioner-ptp-edits.txt",
        b"97530\t97116",
        Given {
            quarter: Some(Quarter::parse("2026Q2").unwrap()),
            ..Given::default()
        },
        rules,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "practitioner-ptp-edits.txt, line 1: not a tab-separated PTP table: no column headings before the first edit, or too few columns (column 1, column 2, ...)");
    let e = read_bytes(
        "practitioner_ptp_v320r0.txt",
        b"just words\n",
        Given::default(),
        rules,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no ptp rows found"), "{e}");
}

#[test]
fn names_give_kind_and_quarter() {
    for (name, kind, quarter) in [
        ("ccipra-v320r0-f4.TXT", TableKind::Ptp, "2026Q1"),
        (
            "medicare-ncci-2026q2-practitioner-ptp-edits-ccipra-v321r0-f1.txt",
            TableKind::Ptp,
            "2026Q2",
        ),
        ("ccipra-v313r1-f2.txt", TableKind::Ptp, "2025Q4"),
        ("ccipra-v322r0-f1.excerpt.txt", TableKind::Ptp, "2026Q3"),
        (PTP_Q4, TableKind::Ptp, "2026Q4"),
        (MUE_Q2, TableKind::Mue, "2026Q2"),
        (
            "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv",
            TableKind::Mue,
            "2026Q3",
        ),
    ] {
        assert_eq!(kind_of(name), Some(kind), "{name}");
        let (q, _) = quarter_of(kind, name).unwrap();
        assert_eq!(q.label(), quarter, "{name}");
    }
    assert_eq!(
        quarter_of(TableKind::Ptp, "ccipra-v322r1-f1.txt")
            .unwrap()
            .1,
        1
    );
    // Other settings' tables are other edits: not taken for practitioners'.
    assert_eq!(
        kind_of("MCR_MUE_OutpatientHospitalServices_Eff_07-01-2026.csv"),
        None
    );
    assert_eq!(kind_of("MCR_MUE_DMESupplier_Eff_07-01-2026.csv"), None);
    assert_eq!(kind_of("ccioph-v321r0-f1.txt"), None);
    assert_eq!(kind_of("README.md"), None);
    let rules = Rules::builtin();
    let e = read_bytes("PPRRVU2026_Jan_QPP.csv", b"", Given::default(), rules).unwrap_err();
    assert!(e.to_string().contains("import the nonQPP file"), "{e}");
    assert_eq!(kind_of(RVU25D), Some(TableKind::Pfs));
    assert_eq!(
        pprrvu::release_of(RVU25D),
        Some(("2025D".into(), day("2025-10-01")))
    );
    assert_eq!(
        pprrvu::release_of(RVU26C),
        Some(("2026C".into(), day("2026-07-01")))
    );
    assert_eq!(
        pprrvu::release_of("PPRRVU2026_Jan_nonQPP.csv"),
        Some(("2026A".into(), day("2026-01-01")))
    );
    assert_eq!(
        pprrvu::release_of("PPRRVU25_OCT.csv"),
        Some(("2025D".into(), day("2025-10-01")))
    );
    assert_eq!(pprrvu::release_of("PPRRVU2026.csv"), None);
    assert!(Quarter::parse("2026Q5").is_err());
    assert!(Quarter::parse("26Q1").is_err());
}

#[test]
fn the_fixture_dir_makes_a_rule_book_by_date_of_service() {
    // What `claimline evaluate --rules tests/fixtures/cms` uses: the
    // shipped tables with the directory's files over them.
    let book = book_from_dir(Path::new(DIR), Rules::builtin()).unwrap();
    let base = crate::domain::RULES_VERSION;
    let on = |d: &str| book.for_date(day(d));
    assert_eq!(
        on("2025-11-01").version,
        format!("{base}+ptp.2026Q4-subset+pfs.2025D")
    );
    assert_eq!(
        on("2026-03-02").version,
        format!("{base}+ptp.2026Q4-subset+pfs.2026C")
    );
    assert_eq!(
        on("2026-10-01").version,
        format!("{base}+ptp.2026Q4+mue.2026Q2+pfs.2026C")
    );
    // Until the imported Q4 table, the shipped rows and their coverage (8
    // codes); from 2026-10-01 the imported table, taken to cover every pair.
    assert_eq!(
        on("2026-09-30").edits.ptp_coverage.as_ref().map(Vec::len),
        Some(8)
    );
    assert_eq!(on("2026-10-01").edits.ptp_coverage, None);
    let live = |d: &str| {
        let r = on(d);
        let mut p: Vec<String> = r
            .edits
            .ptp
            .iter()
            .filter(|e| e.in_effect(day(d)))
            .map(|e| format!("{}/{}", e.column1, e.column2))
            .collect();
        p.sort();
        p
    };
    assert_eq!(
        live("2026-10-01"),
        ["97162/97161", "97163/97161", "97163/97162"]
    );
    // Prices by year: RVU25D and its conversion factor, then RVU26C's.
    let cf = |d: &str| on(d).catalogue.conversion_factor;
    assert_eq!((cf("2025-11-01"), cf("2026-10-01")), (32.3465, 33.4009));
    let cents = |d: &str| on(d).catalogue.unit_payment_cents("97530");
    // 1.07 x 32.3465 and 1.05 x 33.4009.
    assert_eq!(
        (cents("2025-11-01"), cents("2026-10-01")),
        (Some(3461), Some(3507))
    );
    // MUEs from the Q2 table's date on.
    assert!(on("2026-03-31").edits.mue.is_empty());
    assert_eq!(
        on("2026-04-01")
            .edits
            .mue(Code::parse("97530").unwrap())
            .unwrap()
            .value,
        6
    );
    // The imported tables' own starts, and none from ptp-layout/ (the
    // directory's files only).
    let starts: Vec<String> = book.periods().map(|(d, _)| d.to_string()).collect();
    for d in ["2025-10-01", "2026-07-01", "2026-10-01"] {
        assert!(starts.contains(&d.to_owned()), "{d}: {starts:?}");
    }
    assert!(book.periods().all(|(_, v)| !v.contains("2026Q3")));
}

#[test]
fn the_shipped_tables_serve_the_dates_their_provenance_states() {
    let tables = shipped::tables();
    let summary: Vec<(TableKind, String, String, Option<usize>)> = tables
        .iter()
        .map(|t| {
            (
                t.rows.kind(),
                t.label.clone(),
                t.valid_from.to_string(),
                t.coverage.as_ref().map(Vec::len),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                TableKind::Ptp,
                "2026Q4-subset".into(),
                "1996-01-01".into(),
                Some(8)
            ),
            (TableKind::Pfs, "2025D".into(), "2025-01-01".into(), None),
            (TableKind::Pfs, "2026C".into(), "2026-01-01".into(), None),
            (TableKind::Mue, "2026Q2".into(), "2026-04-01".into(), None),
        ]
    );
    assert!(tables.iter().all(|t| t.origin == Origin::Shipped));
    let version = |d: &str| shipped::rules_for(d.parse().unwrap()).version.to_string();
    let base = crate::domain::RULES_VERSION;
    assert_eq!(version("2024-06-01"), format!("{base}+ptp.2026Q4-subset"));
    assert_eq!(
        version("2025-06-01"),
        format!("{base}+ptp.2026Q4-subset+pfs.2025D")
    );
    assert_eq!(
        version("2026-03-31"),
        format!("{base}+ptp.2026Q4-subset+pfs.2026C")
    );
    assert_eq!(
        version("2026-04-01"),
        format!("{base}+ptp.2026Q4-subset+mue.2026Q2+pfs.2026C")
    );
    // 2025 dates: RVU25D and its conversion factor; 2026: RVU26C's.
    let cf = |d: &str| {
        shipped::rules_for(d.parse().unwrap())
            .catalogue
            .conversion_factor
    };
    assert_eq!(cf("2025-12-31"), 32.3465);
    assert_eq!(cf("2026-01-01"), 33.4009);
    // CMS's Q2 2026 MUEs (shared/cms README): 97530 6, 97150 1, 97112 4.
    let mue = |code: &str| {
        shipped::rules_for("2026-05-01".parse().unwrap())
            .edits
            .mue(Code::parse(code).unwrap())
            .map(|m| m.value)
    };
    assert_eq!(
        [
            mue("97530"),
            mue("97110"),
            mue("97150"),
            mue("97112"),
            mue("97116")
        ],
        [Some(6), Some(6), Some(1), Some(4), Some(4)]
    );
}

#[test]
fn an_imported_table_wins_over_the_shipped_one_from_its_own_start() {
    // The fixtures are the shipped tables' files under CMS's names, so
    // their labels match the shipped ones; which table is in force shows
    // in its origin (and, for PTP, in its coverage).
    let imported: Vec<Table> = [RVU26C, MUE_Q2]
        .iter()
        .chain(&PTP_Q4_PARTS)
        .map(|n| read(n).unwrap().table)
        .collect();
    let mut all = shipped::tables().to_vec();
    all.extend(imported.iter().cloned());
    let origin = |kind: TableKind, d: &str| {
        let t = RuleBook::table_on(&all, kind, day(d)).unwrap();
        (t.label.clone(), t.origin)
    };
    // RVU26C: shipped from 2026-01-01, the imported file from its name's
    // release date, 2026-07-01.
    assert_eq!(
        origin(TableKind::Pfs, "2026-06-30"),
        ("2026C".into(), Origin::Shipped)
    );
    assert_eq!(
        origin(TableKind::Pfs, "2026-07-01"),
        ("2026C".into(), Origin::Imported)
    );
    // The MUE table: both from 2026-04-01; at the same start, the imported.
    assert_eq!(
        origin(TableKind::Mue, "2026-04-01"),
        ("2026Q2".into(), Origin::Imported)
    );
    assert_eq!(
        origin(TableKind::Ptp, "2026-09-30"),
        ("2026Q4-subset".into(), Origin::Shipped)
    );
    assert_eq!(
        origin(TableKind::Ptp, "2026-10-01"),
        ("2026Q4".into(), Origin::Imported)
    );
    // An imported PTP quarter: every pair covered from its start.
    let book = shipped::with_imported(&imported);
    assert!(book
        .for_date(day("2026-10-01"))
        .edits
        .ptp_coverage
        .is_none());
    assert!(book
        .for_date(day("2026-09-30"))
        .edits
        .ptp_coverage
        .is_some());
}

#[test]
fn the_gpci_file_reads_every_locality_of_its_year() {
    let f = read("gpci/GPCI2025.csv").unwrap();
    assert_eq!(
        (f.table.label.as_str(), f.table.valid_from),
        ("2025", day("2025-01-01"))
    );
    let TableRows::Gpci(rows) = &f.table.rows else {
        panic!("not GPCI")
    };
    // 116 lines: title, blank, header, 109 localities, 4 lines of notes.
    assert_eq!((rows.len(), f.rows_read), (109, 109));
    let find = |l: &str| {
        let l = crate::domain::locality::Locality::parse(l).unwrap();
        rows.iter()
            .find(|g| g.locality == l)
            .map(|g| (g.work, g.pe, g.mp))
    };
    assert_eq!(find("01182-18"), Some((1.042, 1.194, 0.69)), "line 13");
    assert_eq!(
        find("02102-01"),
        Some((1.5, 1.081, 0.592)),
        "Alaska's 1.5 work floor"
    );
    assert_eq!(
        find("10112-00"),
        Some((1.0, 0.869, 0.575)),
        "Alabama, locality 00"
    );
    // A bad index names its line and column, never the row.
    let bad = altered(
        "gpci/GPCI2025.csv",
        "01182,CA,18,LOS ANGELES-LONG BEACH-ANAHEIM (LOS ANGELES/ORANGE CNTY),1.042",
        "01182,CA,18,LOS ANGELES-LONG BEACH-ANAHEIM (LOS ANGELES/ORANGE CNTY),1.O42",
    );
    let e = error_of("GPCI2025.csv", &bad);
    assert_eq!(
        e,
        "GPCI2025.csv, line 13, column 5 (PW GPCI): PW GPCI is not an index between 0.1 and 10"
    );
    assert!(!e.contains("LOS ANGELES"));
}

/// Quirks of CMS's releases not in a file at hand, on synthetic copies of
/// real ones (labelled as such here): trailing empty rows (the January
/// 2022 PPRRVU file ends with one), a DOS end-of-file byte, LF instead of
/// CRLF, a header of 32 columns (2026 adds PRIC IND) against 31.
#[test]
fn synthetic_copies_with_each_release_quirk_read_as_the_original() {
    let want = read(RVU25D).unwrap().table.rows;
    let text: String = bytes(RVU25D).iter().map(|&b| b as char).collect();
    for (quirk, copy) in [
        (
            "trailing empty rows",
            format!("{text},,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\r\n\r\n,,,\r\n"),
        ),
        ("a DOS end-of-file byte", format!("{text}\u{1a}")),
        ("a row of blanks", format!("{text}  ,  ,\r\n")),
        ("LF line ends", text.replace("\r\n", "\n")),
    ] {
        let bytes: Vec<u8> = copy.chars().map(|c| c as u8).collect();
        let got = read_bytes(RVU25D, &bytes, Given::default(), Rules::builtin())
            .unwrap_or_else(|e| panic!("{quirk}: {e}"));
        assert_eq!(got.table.rows, want, "{quirk}");
    }
    // The MUE file with LF line ends and a trailing blank row.
    let mue = read(MUE_Q2).unwrap().table.rows;
    let text: String = bytes(MUE_Q2).iter().map(|&b| b as char).collect();
    let copy: Vec<u8> = format!("{}\n,,,\n", text.replace("\r\n", "\n"))
        .chars()
        .map(|c| c as u8)
        .collect();
    assert_eq!(
        read_bytes(MUE_Q2, &copy, Given::default(), Rules::builtin())
            .unwrap()
            .table
            .rows,
        mue
    );
}

#[test]
fn a_file_that_is_not_the_table_its_name_says_or_is_cut_short_is_refused() {
    let rules = Rules::builtin();
    let as_named = |name: &str, content: &[u8]| {
        read_bytes(name, content, Given::default(), rules)
            .unwrap_err()
            .to_string()
    };
    // The MUE table under a PPRRVU name, the RVU file under an MUE name,
    // the RVU file under a PTP name, the GPCI file under a PPRRVU name.
    let e = as_named("PPRRVU2026_Jan_nonQPP.csv", &bytes(MUE_Q2));
    assert!(
        e.starts_with("PPRRVU2026_Jan_nonQPP.csv, line ") && e.contains("not a PPRRVU file"),
        "{e}"
    );
    let e = as_named(
        "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv",
        &bytes(RVU25D),
    );
    assert!(e.contains("not an MUE table"), "{e}");
    let e = as_named("ccipra-v323r0-f1.txt", &bytes(RVU25D));
    assert!(e.contains("not a tab-separated PTP table"), "{e}");
    let e = as_named("PPRRVU2025_Oct.csv", &bytes("gpci/GPCI2025.csv"));
    assert!(e.contains("not a PPRRVU file"), "{e}");

    // Truncated: in the middle of a row, of each kind.
    let cut = |name: &str, marker: &str| {
        let b = bytes(name);
        let m = marker.as_bytes();
        let at = b.windows(m.len()).position(|w| w == m).unwrap() + m.len();
        b[..at].to_vec()
    };
    let e = as_named(RVU25D, &cut(RVU25D, "\n97530,,,A,,0.44"));
    assert_eq!(e, "PPRRVU2025_Oct.csv, line 58: 6 columns where the header has at least 25 (a truncated file?)");
    let e = as_named(MUE_Q2, &cut(MUE_Q2, "\n97140,6"));
    assert!(
        e.starts_with(
            "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv, line 43: expected 4 columns"
        ),
        "{e}"
    );
    let e = as_named(PTP_Q4, &cut(PTP_Q4, "97140\t97530\t\t2000"));
    assert!(
        e.starts_with(&format!(
            "{PTP_Q4}, line 10: expected 7 tab-separated columns"
        )),
        "{e}"
    );
    // Cut inside the MUE file's quoted notice: no rows at all.
    let e = as_named(MUE_Q2, &bytes(MUE_Q2)[..200]);
    assert!(e.contains("no mue rows found"), "{e}");
}

#[test]
fn ptp_parts_come_from_the_name_or_the_command_line() {
    assert_eq!(part_of("ccipra-v323r0-f1.txt"), Some(1));
    assert_eq!(part_of("CCIPRA-V323R0-F4.TXT"), Some(4));
    assert_eq!(
        part_of("medicare-ncci-2026q4-practitioner-ptp-edits-ccipra-v323r0-f2.txt"),
        Some(2)
    );
    assert_eq!(part_of("ccipra-v323r0-f5.txt"), None);
    assert_eq!(part_of("ccipra-v323r0.txt"), None);
    assert_eq!(part_of("ccipra-v323r0-f12.txt"), None);
    let given = Given {
        part: Some(3),
        ..Given::default()
    };
    let renamed = read_bytes(
        "q4-ptp.txt",
        &bytes(PTP_Q4),
        Given {
            kind: Some(TableKind::Ptp),
            quarter: Some(Quarter::parse("2026Q4").unwrap()),
            ..given
        },
        Rules::builtin(),
    )
    .unwrap();
    assert_eq!(renamed.table.part, Some(3));
}
