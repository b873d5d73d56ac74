//! The expected payment of each line, in cents: an estimate, never a
//! promise. The catalogue's national rate; the multiple procedure payment
//! reduction where the payer applies it (Pub 100-04, ch. 5, sec. 10.7: the
//! unit with the highest practice expense of the day is paid in full, every
//! other unit loses half its practice-expense share); CQ/CO units paid the
//! payer's assistant percentage (Medicare: 85%, SSA 1834(v)). Medicare's
//! amount is the locality's where the line's locality is known and the
//! year's GPCIs are loaded (each RVU component times its GPCI, 42 CFR
//! 414.22), else national ([`crate::domain::locality`]).

use super::{Draft, Part};
use crate::domain::locality::Gpci;
use crate::domain::rules::{PayerPolicy, Rules};
use crate::domain::{Encounter, Plan};

/// The GPCIs that price a Medicare encounter: its own locality, else its
/// NPI's from the settings, in the year's GPCI table; `None`: national.
pub(super) fn gpci<'r>(enc: &Encounter, rules: &'r Rules) -> Option<&'r Gpci> {
    if enc.plan != Plan::Medicare {
        return None;
    }
    let locality = enc.locality.or_else(|| rules.localities.get(&enc.npi))?;
    rules.gpci.as_ref()?.get(locality)
}

pub(super) fn expected(
    parts: &[Part],
    drafts: &[Draft],
    rules: &Rules,
    policy: &PayerPolicy,
    gpci: Option<&Gpci>,
) -> Vec<Option<i64>> {
    // National: every index 1.
    let (gw, gpe, gmp) = gpci.map_or((1.0, 1.0, 1.0), |g| (g.work, g.pe, g.mp));
    let cf = rules.catalogue.conversion_factor;
    // A bundled code (PFS status B) has no RVUs here: the fee schedule's
    // parser keeps it as bundled, not priced, so it is paid nothing.
    let rvu = |p: &Part| drafts[p.draft].info.and_then(|i| i.rvu.as_ref());
    let full_unit_part = if policy.mppr {
        parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.units > 0)
            .filter_map(|(i, p)| Some((i, rvu(p)?.pe_nonfacility)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)
    } else {
        None
    };
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let rvu = rvu(p)?;
            // Fee schedules are quoted per unit in cents: round there.
            let cents = |rvus: f64| (rvus * cf * 100.0).round() as i64;
            let full = cents(rvu.work * gw + rvu.pe_nonfacility * gpe + rvu.mp * gmp);
            let units = i64::from(p.units);
            let base = if policy.mppr {
                let reduced = cents(rvu.work * gw + rvu.pe_nonfacility * 0.5 * gpe + rvu.mp * gmp);
                let full_units = i64::from(full_unit_part == Some(i)).min(units);
                full_units * full + (units - full_units) * reduced
            } else {
                units * full
            };
            let percent = if p.assistant {
                f64::from(policy.assistant_payment_percent)
            } else {
                100.0
            };
            Some((base as f64 * percent / 100.0).round() as i64)
        })
        .collect()
}
