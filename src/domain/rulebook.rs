//! Rule sets by date of service. CMS publishes the NCCI PTP edits and the
//! MUEs each quarter and the physician fee schedule's RVU file (PPRRVU)
//! each year with quarterly revisions; a claim is judged by the tables in
//! force on its date of service. An imported table is in force from its
//! first day until the next imported table of its kind; before the first
//! one of a kind, the built-in data of that kind applies. Pure: the store
//! and `claimline evaluate --rules` load the tables.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Datelike;

use super::locality::{Gpci, GpciYear, ProviderLocalities};
use super::rules::{Mue, PtpEdit, Rules, Rvu};
use super::values::Code;

/// Which CMS table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// NCCI practitioner procedure-to-procedure edits.
    Ptp,
    /// NCCI practitioner medically unlikely edits.
    Mue,
    /// Physician fee schedule relative value units (PPRRVU).
    Pfs,
    /// Geographic practice cost indices by Medicare locality, for a year.
    Gpci,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Ptp => "ptp",
            TableKind::Mue => "mue",
            TableKind::Pfs => "pfs",
            TableKind::Gpci => "gpci",
        }
    }
}

/// The rows of one imported file, reduced to the catalogue's codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "rows")]
pub enum TableRows {
    Ptp(Vec<PtpEdit>),
    Mue(Vec<Mue>),
    Pfs(FeeSchedule),
    Gpci(Vec<Gpci>),
}

impl TableRows {
    pub fn kind(&self) -> TableKind {
        match self {
            TableRows::Ptp(_) => TableKind::Ptp,
            TableRows::Mue(_) => TableKind::Mue,
            TableRows::Pfs(_) => TableKind::Pfs,
            TableRows::Gpci(_) => TableKind::Gpci,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TableRows::Ptp(r) => r.len(),
            TableRows::Mue(r) => r.len(),
            TableRows::Pfs(f) => f.rvus.len(),
            TableRows::Gpci(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The PPRRVU rows of the catalogue's codes (global service, no modifier)
/// and the file's conversion factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeSchedule {
    pub conversion_factor: f64,
    /// The paid codes (status A, R, T).
    pub rvus: Vec<(Code, Rvu)>,
    /// Status B: bundled, never paid separately (tables stored before this
    /// field have none).
    #[serde(default)]
    pub bundled: Vec<Code>,
}

/// One CMS table: `label` names its quarter or release (`2026Q4`,
/// `2026A`); it is in force from `valid_from`. Several files with the same
/// kind and label (CMS splits the PTP table in four) are one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub label: String,
    pub valid_from: NaiveDate,
    pub rows: TableRows,
    /// Where it came from: shipped with claimline (`data/cms/`) or imported
    /// by `claimline rules import`. At the same start, an imported table
    /// wins over a shipped one.
    pub origin: Origin,
    /// PTP: the codes whose pairs the rows cover; `None`: every code (a
    /// whole CMS quarter, all four parts).
    pub coverage: Option<Vec<Code>>,
    /// An imported PTP file: which of the quarter's four parts (f1-f4) it
    /// is. An imported quarter is in force only once all four are loaded.
    pub part: Option<u8>,
}

/// The parts CMS splits a quarter's practitioner PTP table into.
pub const PTP_PARTS: [u8; 4] = [1, 2, 3, 4];

/// An imported PTP quarter (or revision) not all of whose parts are
/// loaded: not in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPtp {
    pub label: String,
    pub valid_from: NaiveDate,
    pub missing: Vec<u8>,
    /// Files of the quarter whose name gives no part.
    pub unnumbered: usize,
}

impl std::fmt::Display for PendingPtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let missing: Vec<String> = self.missing.iter().map(|p| format!("f{p}")).collect();
        write!(
            f,
            "the {} PTP table is not in force: CMS publishes it in four parts and {} missing",
            self.label,
            match missing.len() {
                1 => format!("part {} is", missing[0]),
                _ => format!("parts {} are", missing.join(", ")),
            }
        )?;
        if self.unnumbered > 0 {
            write!(
                f,
                " ({} file(s) of it name no part: import them with --part)",
                self.unnumbered
            )?;
        }
        Ok(())
    }
}

/// The imported PTP quarters with parts missing.
pub fn pending_ptp(tables: &[Table]) -> Vec<PendingPtp> {
    let mut pending: Vec<PendingPtp> = Vec::new();
    for t in tables {
        if t.rows.kind() != TableKind::Ptp || t.origin != Origin::Imported {
            continue;
        }
        if pending
            .iter()
            .any(|p| p.label == t.label && p.valid_from == t.valid_from)
        {
            continue;
        }
        let group = tables.iter().filter(|o| {
            o.rows.kind() == TableKind::Ptp
                && o.origin == Origin::Imported
                && o.label == t.label
                && o.valid_from == t.valid_from
        });
        let (mut have, mut unnumbered) = (Vec::new(), 0);
        for o in group {
            match o.part {
                Some(p) => have.push(p),
                None => unnumbered += 1,
            }
        }
        let missing: Vec<u8> = PTP_PARTS
            .into_iter()
            .filter(|p| !have.contains(p))
            .collect();
        if !missing.is_empty() {
            pending.push(PendingPtp {
                label: t.label.clone(),
                valid_from: t.valid_from,
                missing,
                unnumbered,
            });
        }
    }
    pending
}

/// Where a table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Shipped with claimline, read from `data/cms/` (see its README).
    Shipped,
    Imported,
}

/// The built-in rules and the rule sets the imported tables make of them,
/// by the date each takes over.
#[derive(Debug)]
pub struct RuleBook {
    base: Cow<'static, Rules>,
    /// Sorted by date: from each date on (until the next), that rule set.
    periods: Vec<(NaiveDate, Rules)>,
}

impl RuleBook {
    /// The rule sets `tables` make of `base`.
    pub fn new(base: &'static Rules, tables: &[Table]) -> RuleBook {
        let mut starts: BTreeSet<NaiveDate> = tables.iter().map(|t| t.valid_from).collect();
        // A year's GPCIs serve that year only.
        starts.extend(
            tables
                .iter()
                .filter(|t| t.rows.kind() == TableKind::Gpci)
                .filter_map(|t| NaiveDate::from_ymd_opt(t.valid_from.year() + 1, 1, 1)),
        );
        let pending = pending_ptp(tables);
        let periods = starts
            .into_iter()
            .map(|day| (day, Self::rules_on(base, tables, &pending, day)))
            .collect();
        RuleBook {
            base: Cow::Borrowed(base),
            periods,
        }
    }

    /// The same book, with the service's billing NPIs' localities.
    pub fn located(mut self, localities: ProviderLocalities) -> RuleBook {
        if localities.is_empty() {
            return self;
        }
        let localities = Arc::new(localities);
        self.base.to_mut().localities = localities.clone();
        for (_, rules) in &mut self.periods {
            rules.localities = localities.clone();
        }
        self
    }

    /// The rule set for a date of service.
    pub fn for_date(&self, date: NaiveDate) -> &Rules {
        match self.periods.partition_point(|(from, _)| *from <= date) {
            0 => &self.base,
            i => &self.periods[i - 1].1,
        }
    }

    /// The built-in rules (the catalogue every rule set shares).
    pub fn base(&self) -> &Rules {
        &self.base
    }

    /// Each rule set after the built-in one, with the date it takes over.
    pub fn periods(&self) -> impl Iterator<Item = (NaiveDate, &str)> {
        self.periods.iter().map(|(d, r)| (*d, &*r.version))
    }

    /// The table of `kind` in force on `day`: of those that started by
    /// then (an imported PTP quarter only with all four parts), the latest
    /// start, then an imported one over a shipped one, then the latest
    /// label (a revision, `2026Q3r1`, after `2026Q3`), then the last loaded.
    pub fn table_on(tables: &[Table], kind: TableKind, day: NaiveDate) -> Option<&Table> {
        Self::in_force(tables, &pending_ptp(tables), kind, day)
    }

    fn in_force<'t>(
        tables: &'t [Table],
        pending: &[PendingPtp],
        kind: TableKind,
        day: NaiveDate,
    ) -> Option<&'t Table> {
        tables
            .iter()
            .enumerate()
            .filter(|(_, t)| t.rows.kind() == kind && t.valid_from <= day)
            .filter(|(_, t)| {
                t.origin != Origin::Imported
                    || kind != TableKind::Ptp
                    || !pending
                        .iter()
                        .any(|p| p.label == t.label && p.valid_from == t.valid_from)
            })
            .max_by(|(i, a), (j, b)| {
                (a.valid_from, a.origin, &a.label, i).cmp(&(b.valid_from, b.origin, &b.label, j))
            })
            .map(|(_, t)| t)
    }

    /// Base, with each kind's newest table that started by `day`.
    fn rules_on(base: &Rules, tables: &[Table], pending: &[PendingPtp], day: NaiveDate) -> Rules {
        let mut rules = base.clone();
        let mut version = base.version.to_string();
        for kind in [
            TableKind::Ptp,
            TableKind::Mue,
            TableKind::Pfs,
            TableKind::Gpci,
        ] {
            let Some(latest) = Self::in_force(tables, pending, kind, day) else {
                continue;
            };
            if kind == TableKind::Gpci && latest.valid_from.year() != day.year() {
                // Last year's GPCIs do not price this year's services.
                continue;
            }
            version.push('+');
            version.push_str(kind.as_str());
            version.push('.');
            version.push_str(&latest.label);
            match &latest.rows {
                // CMS splits the PTP table into parts (f1-f4): every file of
                // the label is the table.
                TableRows::Ptp(_) => {
                    rules.edits.ptp_coverage = latest.coverage.clone();
                    rules.edits.ptp = tables
                        .iter()
                        .filter(|t| {
                            t.label == latest.label
                                && t.valid_from == latest.valid_from
                                && t.origin == latest.origin
                                && t.rows.kind() == TableKind::Ptp
                        })
                        .flat_map(|t| match &t.rows {
                            TableRows::Ptp(rows) => rows.as_slice(),
                            _ => &[],
                        })
                        .cloned()
                        .collect();
                }
                // An MUE or RVU file is whole: a later load of the same label
                // (a corrected file) replaces it.
                TableRows::Mue(rows) => rules.edits.mue = rows.clone(),
                TableRows::Pfs(f) => {
                    let cf = if f.conversion_factor > 0.0 {
                        f.conversion_factor
                    } else {
                        base.catalogue.conversion_factor
                    };
                    rules.catalogue.set_fee_schedule(
                        cf,
                        |code| f.rvus.iter().find(|(c, _)| *c == code).map(|(_, rvu)| *rvu),
                        |code| f.bundled.contains(&code),
                    );
                }
                TableRows::Gpci(rows) => {
                    rules.gpci = Some(Arc::new(GpciYear::new(
                        latest.label.clone(),
                        latest.valid_from.year(),
                        rows,
                    )));
                }
            }
        }
        rules.version = Cow::Owned(version);
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
