//! The rules on CMS's own rows, as shipped in `data/cms/`: prices by year,
//! the bundled status, SLP in the year-to-date amounts.

use super::*;
use crate::domain::kx::{self, YearToDate};
use crate::domain::values::Discipline;

/// CMS's PPRRVU rows as the file has them, read here independently of the
/// importer: (status, work, non-facility PE, MP, conversion factor) by code,
/// for the global service (no modifier).
fn cms_rows(text: &str) -> Vec<(String, String, [f64; 4])> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let records: Vec<::csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let h = records.iter().position(|r| &r[0] == "HCPCS").unwrap();
    // Headings over two rows: "WORK" over "RVU", "NON-FAC" over "PE RVU"...
    let heading = |i: usize| format!("{} {}", &records[h - 1][i], &records[h][i]);
    let col = |want: &str| {
        (0..records[h].len())
            .find(|&i| heading(i).trim() == want)
            .unwrap_or_else(|| panic!("no {want} column"))
    };
    let (status, work, pe, mp, cf) = (
        col("STATUS CODE"),
        col("WORK RVU"),
        col("NON-FAC PE RVU"),
        col("MP RVU"),
        col("CONV FACTOR"),
    );
    records[h + 1..]
        .iter()
        .filter(|r| r.len() > cf && !r[0].is_empty() && r[1].is_empty())
        .map(|r| {
            let n = |i: usize| r[i].trim().parse::<f64>().unwrap();
            (
                r[0].to_owned(),
                r[status].to_owned(),
                [n(work), n(pe), n(mp), n(cf)],
            )
        })
        .collect()
}

fn on(date: &str, ev: &mut Value) {
    ev["encounter"]["date_of_service"] = json!(date);
    ev["occurred_at"] = json!(format!("{date}T15:10:00Z"));
    ev["encounter"]["plan_of_care"]["certified_from"] = json!(date);
    ev["encounter"]["plan_of_care"]["certified_through"] = json!(date);
    for s in ev["encounter"]["services"].as_array_mut().unwrap() {
        for k in ["start", "end"] {
            if let Some(t) = s[k].as_str().map(str::to_owned) {
                s[k] = json!(format!("{date}{}", &t[10..]));
            }
        }
    }
}

/// One unit of `code` on `date`, by a provider of the code's discipline.
fn one_unit(code: &str, date: &str, plan: &str) -> ClaimLine {
    let info = Rules::builtin().catalogue.get(code).unwrap();
    let service = if info.timed {
        svc("1", code, "10:00", "10:15")
    } else {
        minutes_svc("1", code, 30)
    };
    let mut ev = event(plan, vec![service]);
    on(date, &mut ev);
    let discipline = match info.discipline {
        Some(Discipline::OT) => "OT",
        Some(Discipline::SLP) => "SLP",
        _ => "PT",
    };
    ev["encounter"]["provider"]["discipline"] = json!(discipline);
    let lines = run(&ev);
    assert_eq!(lines.len(), 1, "{code}");
    lines.into_iter().next().unwrap()
}

#[test]
fn one_unit_pays_cms_s_row_times_that_year_s_conversion_factor() {
    let files = [
        (
            "2025-06-15",
            include_str!("../../../data/cms/PPRRVU2025_Oct.therapy-excerpt.csv"),
            32.3465,
        ),
        (
            "2026-06-15",
            include_str!("../../../data/cms/PPRRVU2026_Jul_nonQPP.therapy-excerpt.csv"),
            33.4009,
        ),
    ];
    for (date, text, conversion_factor) in files {
        let rows = cms_rows(text);
        let mut priced = 0;
        for info in Rules::builtin().catalogue.codes() {
            let code = info.code.to_string();
            let Some((_, status, [work, pe, mp, cf])) = rows.iter().find(|r| r.0 == code) else {
                panic!("{code}: no CMS row for {date} in data/cms");
            };
            let line = one_unit(&code, date, "commercial");
            assert_eq!(line.units, 1, "{code} {date}");
            if matches!(status.as_str(), "A" | "R" | "T") {
                assert_eq!(*cf, conversion_factor, "{code}: the year's CF");
                let want = ((work + pe + mp) * cf * 100.0).round() as i64;
                assert_eq!(
                    line.expected_payment_cents,
                    Some(want),
                    "{code} on {date}: ({work} + {pe} + {mp}) x {cf}"
                );
                priced += 1;
            } else {
                assert_eq!(line.expected_payment_cents, None, "{code} status {status}");
            }
        }
        // Every status-A code of the catalogue, SLP included.
        assert!(priced >= 48, "{date}: {priced} priced");
    }
    // 97530, 2026: 1.05 RVU x 33.4009 = $35.07 (CMS RVU26C); 2025: 1.07 x
    // 32.3465 = $34.61 (RVU25D).
    assert_eq!(
        one_unit("97530", "2026-03-02", "commercial").expected_payment_cents,
        Some(3507)
    );
    assert_eq!(
        one_unit("97530", "2025-03-02", "commercial").expected_payment_cents,
        Some(3461)
    );
}

#[test]
fn mppr_pays_in_full_the_unit_with_cms_s_highest_practice_expense() {
    // CMS 2026 non-facility PE: 97530 0.60, 97110 0.41. One unit each on a
    // Medicare date: 97530's unit is paid in full, 97110's loses half its PE.
    let lines = run(&event(
        "medicare",
        vec![
            svc("1", "97110", "10:00", "10:15"),
            svc("2", "97530", "10:15", "10:30"),
        ],
    ));
    let cents = |rvus: f64| (rvus * 33.4009 * 100.0).round() as i64;
    assert_eq!(
        line(&lines, "97530").expected_payment_cents,
        Some(cents(0.44 + 0.60 + 0.01))
    );
    assert_eq!(
        line(&lines, "97110").expected_payment_cents,
        Some(cents(0.45 + 0.41 / 2.0 + 0.01))
    );
}

#[test]
fn a_bundled_code_gets_a_warning_and_no_payment_under_medicare() {
    // 97010: PFS status B in both years' files.
    for date in ["2025-03-02", "2026-03-02"] {
        let l = one_unit("97010", date, "medicare");
        let f = flag(&l, FlagCode::BundledCode).expect("status B");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(l.expected_payment_cents, None);
        assert_eq!(l.status, Status::Validated, "a warning alone holds nothing");
    }
    let l = one_unit("97010", "2026-03-02", "commercial");
    assert!(flag(&l, FlagCode::BundledCode).is_none());
    // Status I (97014) keeps its own path under Medicare.
    let l = one_unit("97014", "2026-03-02", "medicare");
    assert!(flag(&l, FlagCode::NotRecognizedByPayer).is_some());
    assert!(flag(&l, FlagCode::BundledCode).is_none());
}

#[test]
fn slp_sessions_count_toward_the_pt_and_slp_threshold() {
    // 36 sessions of 92507 at 2026 rates (2.28 RVU x 33.4009 = $76.15) are
    // $2,741: the 33rd crosses $2,480.
    let mut ytd = YearToDate::default();
    let mut first_kx = None;
    for n in 1..=36u32 {
        let mut ev = event("medicare", vec![minutes_svc("1", "92507", 45)]);
        ev["encounter"]["provider"]["discipline"] = json!("SLP");
        ev["encounter"]["encounter_id"] = json!(format!("ENC-SLP-{n}"));
        ev["event_id"] = json!(format!("evt-slp-{n}"));
        ev["encounter"]["payer"]["id"] = json!(format!("MEDICARE-{n}"));
        let enc = decode(ev.to_string().as_bytes()).unwrap();
        let rules = rules_on(enc.date_of_service);
        let mut lines = evaluate(&enc, rules);
        assert_eq!(lines[0].expected_payment_cents, Some(7615));
        kx::apply(&mut lines, &enc, rules, &mut ytd);
        if first_kx.is_none() && lines[0].modifiers.contains(&Modifier::KX) {
            first_kx = Some(n);
        }
    }
    assert_eq!(first_kx, Some(33));
}
