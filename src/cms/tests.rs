use super::*;
use crate::domain::rulebook::TableRows;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cms/");

fn read(name: &str) -> Result<Imported, ImportError> {
    read_file(&Path::new(DIR).join(name), None, None, Rules::builtin())
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn ptp_fixture_reads_by_cms_layout_and_name() {
    let i = read("ccipra-v323r0-f1.txt").unwrap();
    assert_eq!(i.table.label, "2026Q4");
    assert_eq!(i.table.valid_from, day("2026-10-01"));
    assert_eq!(i.rows_read, 6);
    let TableRows::Ptp(rows) = &i.table.rows else {
        panic!("not PTP")
    };
    let pairs: Vec<String> = rows
        .iter()
        .map(|e| {
            format!(
                "{}/{} {} {:?} {:?}",
                e.column1, e.column2, e.modifier_indicator, e.effective, e.deleted
            )
        })
        .collect();
    // 0001U/0353U is outside the catalogue; indicator 9 is no edit.
    assert_eq!(
        pairs,
        [
            "97140/97530 1 Some(2020-01-01) None",
            "97161/97140 1 Some(2020-01-01) None",
            "97164/97530 1 Some(2020-01-01) None",
            "97530/97116 0 Some(2026-10-01) None",
        ]
    );
    assert_eq!(i.sha256.len(), 64);
    assert_eq!(read("ccipra-v322r0-f1.txt").unwrap().table.label, "2026Q3");
}

#[test]
fn mue_fixture_reads_quoted_line_breaks() {
    let i = read("MCR_MUE_PractitionerServices_Eff_10-01-2026.csv").unwrap();
    assert_eq!(
        (i.table.label.as_str(), i.table.valid_from, i.rows_read),
        ("2026Q4", day("2026-10-01"), 5)
    );
    let TableRows::Mue(rows) = &i.table.rows else {
        panic!("not MUE")
    };
    let got: Vec<(String, u32, u8)> = rows
        .iter()
        .map(|m| (m.code.to_string(), m.value, m.adjudication_indicator))
        .collect();
    assert_eq!(
        got,
        [
            ("97110".into(), 8, 3),
            ("97140".into(), 6, 3),
            ("97530".into(), 6, 3),
            ("97535".into(), 6, 3)
        ]
    );
}

#[test]
fn pprrvu_fixture_reads_the_two_row_header() {
    let i = read("PPRRVU2026_Jan_nonQPP.csv").unwrap();
    assert_eq!(
        (i.table.label.as_str(), i.table.valid_from, i.rows_read),
        ("2026A", day("2026-01-01"), 8)
    );
    let TableRows::Pfs(f) = &i.table.rows else {
        panic!("not PFS")
    };
    assert_eq!(f.conversion_factor, 33.4009);
    let codes: Vec<String> = f.rvus.iter().map(|(c, _)| c.to_string()).collect();
    // The GP row is another service than the global one; 97014 has status
    // I (not valid for Medicare): no estimate; 0001U is not a therapy code.
    assert_eq!(codes, ["97110", "97112", "97140", "97530", "97535"]);
    let (_, rvu) = f.rvus[3];
    assert_eq!((rvu.work, rvu.pe_nonfacility, rvu.mp), (0.44, 0.62, 0.02));
}

#[test]
fn a_bad_row_is_named_by_its_line() {
    let good = std::fs::read_to_string(Path::new(DIR).join("ccipra-v323r0-f1.txt")).unwrap();
    let rules = Rules::builtin();
    let mut lines: Vec<&str> = good.split("\r\n").collect();
    lines[8] = "97140\t97530\t\t2020-01-01\t*\t1\tx"; // line 9
    let bad = lines.join("\r\n");
    let e = read_bytes("ccipra-v323r0-f1.txt", bad.as_bytes(), None, None, rules).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ccipra-v323r0-f1.txt, line 9: the effective date is not a YYYYMMDD date"
    );

    let mue = "\"HCPCS/\nCPT Code\",\"MUE\",\"MAI\",\"R\"\n\"97530\",\"6\",\"3 Date of Service Edit: Clinical\",\"x\"\n\"97110\",\"lots\",\"3\",\"x\"\n";
    let e = read_bytes(
        "x_MUE_Practitioner_Eff_10-01-2026.csv",
        mue.as_bytes(),
        None,
        None,
        rules,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "x_MUE_Practitioner_Eff_10-01-2026.csv, line 4: the MUE value is not a whole number of units"
    );

    // CRLF line ends, as CMS ships them: still the right line.
    let crlf = mue.replace('\n', "\r\n");
    let e = read_bytes(
        "x_MUE_Practitioner_Eff_10-01-2026.csv",
        crlf.as_bytes(),
        None,
        None,
        rules,
    )
    .unwrap_err();
    assert!(e.to_string().contains(", line 4: "), "{e}");

    let e = read_bytes("rules.txt", b"97530\t97116", None, None, rules).unwrap_err();
    assert!(matches!(e, ImportError::UnknownKind { .. }), "{e}");
    let e = read_bytes(
        "practitioner-ptp-edits.txt",
        b"97530\t97116",
        None,
        None,
        rules,
    )
    .unwrap_err();
    assert!(matches!(e, ImportError::UnknownQuarter { .. }), "{e}");
    let e = read_bytes(
        "practitioner-ptp-edits.txt",
        b"97530\t97116",
        None,
        Some(Quarter::parse("2026Q2").unwrap()),
        rules,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "practitioner-ptp-edits.txt, line 1: expected 7 tab-separated columns (column 1, column 2, prior-to-1996, effective date, deletion date, modifier indicator, rationale), found 2");
    let e = read_bytes(
        "practitioner_ptp_v320r0.txt",
        b"just words\n",
        None,
        None,
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
    let rules = Rules::builtin();
    let e = read_bytes("PPRRVU2026_Jan_QPP.csv", b"", None, None, rules).unwrap_err();
    assert!(e.to_string().contains("import the nonQPP file"), "{e}");
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
fn fixtures_make_a_rule_book_by_date_of_service() {
    use crate::domain::RuleBook;
    let tables: Vec<_> = [
        "ccipra-v322r0-f1.txt",
        "ccipra-v323r0-f1.txt",
        "MCR_MUE_PractitionerServices_Eff_10-01-2026.csv",
        "PPRRVU2026_Jan_nonQPP.csv",
    ]
    .iter()
    .map(|n| read(n).unwrap().table)
    .collect();
    let book = RuleBook::new(Rules::builtin(), &tables);
    let has = |d: &str| {
        book.for_date(day(d))
            .edits
            .ptp
            .iter()
            .any(|e| e.column1.as_str() == "97530" && e.column2.as_str() == "97116")
    };
    assert!(!has("2026-09-30"));
    assert!(has("2026-10-01"));
    assert!(book
        .for_date(day("2026-10-01"))
        .version
        .ends_with("+ptp.2026Q4+mue.2026Q4+pfs.2026A"));
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
                "2026Q4".into(),
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
    assert_eq!(version("2024-06-01"), format!("{base}+ptp.2026Q4"));
    assert_eq!(
        version("2025-06-01"),
        format!("{base}+ptp.2026Q4+pfs.2025D")
    );
    assert_eq!(
        version("2026-03-31"),
        format!("{base}+ptp.2026Q4+pfs.2026C")
    );
    assert_eq!(
        version("2026-04-01"),
        format!("{base}+ptp.2026Q4+mue.2026Q2+pfs.2026C")
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
fn an_imported_release_wins_over_the_shipped_one_from_its_own_start() {
    // A 2026 January release (the fixture's file name and layout) imported
    // over the shipped RVU26C, which is stretched over all of 2026.
    let jan = read("PPRRVU2026_Jan_nonQPP.csv").unwrap().table;
    assert_eq!(jan.valid_from.to_string(), "2026-01-01");
    let book = shipped::with_imported(std::slice::from_ref(&jan));
    assert!(book
        .for_date("2026-02-01".parse().unwrap())
        .version
        .ends_with("+pfs.2026A"));
    // A later PTP quarter imported: every pair covered from its start.
    let q = read("ccipra-v323r0-f1.txt").unwrap().table;
    let book = shipped::with_imported(&[q]);
    assert!(book
        .for_date("2026-10-01".parse().unwrap())
        .edits
        .ptp_coverage
        .is_none());
    assert!(book
        .for_date("2026-09-30".parse().unwrap())
        .edits
        .ptp_coverage
        .is_some());
}
