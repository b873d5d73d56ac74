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
