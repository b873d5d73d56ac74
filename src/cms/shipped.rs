//! The CMS tables claimline ships and uses by default, before anything is
//! imported: excerpts of CMS's own files in CMS's own layouts, in
//! `data/cms/` (each with a `.provenance.md` beside it: where it came from,
//! what is verbatim, what was changed), read by the same parser as
//! `claimline rules import`. An imported table of a kind takes over from
//! its own start date (at the same start, the imported one wins).
//!
//! Which dates each serves:
//! - PPRRVU RVU25D (October 2025 release, CF 32.3465): 2025-01-01 to
//!   2025-12-31. RVU26C (July 2026 release, CF 33.4009): from 2026-01-01.
//!   Each is applied to its whole year as an approximation: the year's
//!   earlier releases were not in reach. Importing one corrects it.
//! - MUEs, 2026 Q2 table: from its effective date, 2026-04-01. Earlier
//!   dates are not MUE-checked unless a table is imported.
//! - NCCI PTP v32.3 (2026 Q4): a third party's rewrite of CMS's rows,
//!   converted back into CMS's layout (derived, not verbatim), for every
//!   date: its rows carry their own effective and deletion dates. It covers
//!   only pairs of [`PTP_COVERAGE`]'s codes; any other pair of the day gets
//!   NCCI_NOT_CHECKED until a full quarter is imported. Its label is
//!   `2026Q4-subset`, so `rules_version` tells it from an imported quarter.

use std::sync::OnceLock;

use chrono::NaiveDate;

use super::read_bytes;
use crate::domain::rulebook::{Origin, Table};
use crate::domain::{Code, RuleBook, Rules};

/// One shipped file and the first date it serves.
struct Shipped {
    file: &'static str,
    bytes: &'static [u8],
    from: (i32, u32, u32),
    coverage: Option<&'static [&'static str]>,
}

/// The catalogue codes whose PTP pairs the shipped v32.3 rows cover: the
/// therapy codes of the third party's 100-code list that are in
/// claimline's catalogue (`data/cms/ccipra-v323r0-therapy-subset-DERIVED.txt.provenance.md`).
pub const PTP_COVERAGE: &[&str] = &[
    "97110", "97112", "97116", "97140", "97161", "97162", "97163", "97530",
];

const FILES: [Shipped; 4] = [
    Shipped {
        file: "ccipra-v323r0-therapy-subset-DERIVED.txt",
        bytes: include_bytes!("../../data/cms/ccipra-v323r0-therapy-subset-DERIVED.txt"),
        // NCCI began in 1996; the rows' own dates decide.
        from: (1996, 1, 1),
        coverage: Some(PTP_COVERAGE),
    },
    Shipped {
        file: "PPRRVU2025_Oct.therapy-excerpt.csv",
        bytes: include_bytes!("../../data/cms/PPRRVU2025_Oct.therapy-excerpt.csv"),
        from: (2025, 1, 1),
        coverage: None,
    },
    Shipped {
        file: "PPRRVU2026_Jul_nonQPP.therapy-excerpt.csv",
        bytes: include_bytes!("../../data/cms/PPRRVU2026_Jul_nonQPP.therapy-excerpt.csv"),
        from: (2026, 1, 1),
        coverage: None,
    },
    Shipped {
        file: "MCR_MUE_PractitionerServices_Eff_04-01-2026.therapy-excerpt.csv",
        bytes: include_bytes!(
            "../../data/cms/MCR_MUE_PractitionerServices_Eff_04-01-2026.therapy-excerpt.csv"
        ),
        from: (2026, 4, 1),
        coverage: None,
    },
];

/// The shipped tables, read once.
pub fn tables() -> &'static [Table] {
    static TABLES: OnceLock<Vec<Table>> = OnceLock::new();
    TABLES.get_or_init(|| {
        FILES
            .iter()
            .map(|f| {
                let mut t = read_bytes(f.file, f.bytes, Default::default(), Rules::builtin())
                    .unwrap_or_else(|e| panic!("data/cms/{} reads (tested): {e}", f.file))
                    .table;
                let (y, m, d) = f.from;
                t.valid_from = NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
                t.origin = Origin::Shipped;
                if f.coverage.is_some() {
                    // Not CMS's whole table: every line judged by it says so.
                    t.label.push_str("-subset");
                }
                t.coverage = f.coverage.map(|codes| {
                    codes
                        .iter()
                        .map(|c| Code::parse(c).expect("a valid code"))
                        .collect()
                });
                t
            })
            .collect()
    })
}

/// Each shipped table with the file it was read from.
pub fn files() -> impl Iterator<Item = (&'static str, &'static Table)> {
    FILES.iter().map(|f| f.file).zip(tables())
}

/// The first date the shipped MUE table serves: earlier dates are not
/// MUE-checked unless an MUE table is imported.
pub fn first_mue_date() -> Option<NaiveDate> {
    tables()
        .iter()
        .filter(|t| t.rows.kind() == crate::domain::rulebook::TableKind::Mue)
        .map(|t| t.valid_from)
        .min()
}

/// The default rule book: the built-in data with the shipped tables.
pub fn book() -> &'static RuleBook {
    static BOOK: OnceLock<RuleBook> = OnceLock::new();
    BOOK.get_or_init(|| with_imported(&[]))
}

/// The rule book of the shipped tables and `imported` over them.
pub fn with_imported(imported: &[Table]) -> RuleBook {
    over(Rules::builtin(), imported)
}

/// The rule book of `base` (the built-in rules, or those a payer policy
/// file makes of them) with the shipped tables and `imported` over it.
pub fn over(base: &'static Rules, imported: &[Table]) -> RuleBook {
    let mut all = tables().to_vec();
    all.extend_from_slice(imported);
    RuleBook::new(base, &all)
}

/// The rule set for a date of service, by the shipped tables alone.
pub fn rules_for(date: NaiveDate) -> &'static Rules {
    book().for_date(date)
}
