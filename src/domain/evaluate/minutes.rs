//! Which documented minutes count as timed minutes. Only one-on-one
//! minutes do (a one-on-one procedure documented as group or not
//! one-on-one counts none: group therapy is 97150), and a clock minute
//! counts once: minutes that a timed service's documented times share with
//! a group session or an untimed service with documented times (an
//! evaluation, a re-evaluation, a supervised modality) go to that service,
//! whatever the order (the patient cannot be in a group, or in an
//! evaluation, and one-on-one at once: Pub 100-02, ch. 15, sec. 230.1;
//! minutes of untimed services are not timed minutes: Pub 100-04, ch. 5,
//! sec. 20.2); minutes two timed services share go to the one listed
//! first (contract section 3).
//! Medicare Claims Processing Manual (Pub 100-04), ch. 5, sec. 20.2: the
//! total timed minutes are the minutes of direct one-on-one timed services.

use crate::domain::encounter::{Interval, Service};
use crate::domain::rules::{CodeInfo, CodeKind, Rules};

/// The minutes each service counts for, and why some count less.
#[derive(Debug, Default)]
pub struct Counted<'r> {
    /// Per service: its code's catalogue entry, if any.
    pub info: Vec<Option<&'r CodeInfo>>,
    /// Per service, in order: the timed minutes it counts for.
    pub minutes: Vec<u32>,
    /// Per service: a one-on-one procedure documented as group or not
    /// one-on-one.
    pub not_one_on_one: Vec<bool>,
    /// (earlier service, later service, minutes they both document): two
    /// timed services.
    pub shared: Vec<(usize, usize, u32)>,
    /// (group or untimed service, timed service, minutes they both
    /// document): the timed service lost those minutes.
    pub yielded: Vec<(usize, usize, u32)>,
}

/// Whether service `s` was documented as group or not one-on-one.
pub fn documented_as_group(s: &Service) -> bool {
    !s.one_on_one || s.group_size.is_some_and(|g| g > 1)
}

pub fn count<'r>(services: &[Service], rules: &'r Rules) -> Counted<'r> {
    let mut out = Counted {
        info: Vec::with_capacity(services.len()),
        minutes: Vec::with_capacity(services.len()),
        not_one_on_one: Vec::with_capacity(services.len()),
        shared: Vec::new(),
        yielded: Vec::new(),
    };
    // Group sessions and untimed services with documented times keep their
    // minutes whatever the order.
    let holding: Vec<(usize, Interval)> = services
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            rules
                .catalogue
                .get_code(&s.code)
                .is_some_and(|i| !i.timed || i.kind == Some(CodeKind::Group))
        })
        .filter_map(|(k, s)| Some((k, s.interval?)))
        .collect();
    // The documented intervals of the timed services counted so far.
    let mut taken: Vec<(usize, Interval)> = Vec::new();
    for (j, s) in services.iter().enumerate() {
        let info = rules.catalogue.get_code(&s.code);
        out.info.push(info);
        let timed = info.is_some_and(|i| i.timed);
        let group_code = info.is_some_and(|i| i.kind == Some(CodeKind::Group));
        let excluded = info.is_some_and(|i| i.one_on_one) && documented_as_group(s);
        out.not_one_on_one.push(excluded);
        if excluded || !timed || group_code {
            out.minutes.push(if excluded { 0 } else { s.minutes });
            continue;
        }
        let Some(iv) = s.interval else {
            out.minutes.push(s.minutes);
            continue;
        };
        let mut overlaps = false;
        for (i, other) in &holding {
            let m = iv.overlap_minutes(other);
            if m > 0 {
                out.yielded.push((*i, j, m));
                overlaps = true;
            }
        }
        for (i, other) in &taken {
            let m = iv.overlap_minutes(other);
            if m > 0 {
                out.shared.push((*i, j, m));
                overlaps = true;
            }
        }
        let shared_secs = if overlaps {
            overlap_with_union(&iv, holding.iter().chain(&taken).map(|(_, t)| *t))
        } else {
            0
        };
        let own_secs = (iv.end - iv.start).num_seconds() - shared_secs;
        out.minutes
            .push(u32::try_from(own_secs.max(0) / 60).unwrap_or(u32::MAX));
        taken.push((j, iv));
    }
    out
}

/// Two services of two encounters of one provider's day that document the
/// same clock minutes: (encounter, service) of each, and the minutes.
#[derive(Debug, Clone, Copy)]
pub struct Across {
    /// The service that kept the minutes: the earlier one in the day's
    /// order, or the group or untimed service.
    pub kept: (usize, usize),
    /// The service that lost them.
    pub lost: (usize, usize),
    pub minutes: u32,
    /// Whether `kept` is a group session or an untimed service.
    pub holder: bool,
}

/// [`count`] over the services of a provider's day, the encounters in the
/// day's order (the earlier visit first): a clock minute counts once across
/// the day's encounters as within one (contract section 3). Each
/// encounter's own [`Counted`] keeps its pairs within it; the pairs across
/// two encounters come back apart.
pub fn count_day<'r>(encs: &[&[Service]], rules: &'r Rules) -> (Vec<Counted<'r>>, Vec<Across>) {
    let all: Vec<Service> = encs.iter().flat_map(|s| s.iter().cloned()).collect();
    let whole = count(&all, rules);
    // Service k of the day is service k - starts[e] of encounter e.
    let mut starts = Vec::with_capacity(encs.len());
    let mut at = 0;
    for s in encs {
        starts.push(at);
        at += s.len();
    }
    let locate = |k: usize| {
        let e = starts.partition_point(|&s| s <= k) - 1;
        (e, k - starts[e])
    };
    let mut out: Vec<Counted<'r>> = encs
        .iter()
        .zip(&starts)
        .map(|(s, &o)| Counted {
            info: whole.info[o..o + s.len()].to_vec(),
            minutes: whole.minutes[o..o + s.len()].to_vec(),
            not_one_on_one: whole.not_one_on_one[o..o + s.len()].to_vec(),
            shared: Vec::new(),
            yielded: Vec::new(),
        })
        .collect();
    let mut across = Vec::new();
    for (pairs, holder) in [(&whole.shared, false), (&whole.yielded, true)] {
        for &(i, j, m) in pairs {
            let ((ei, i), (ej, j)) = (locate(i), locate(j));
            if ei == ej {
                let c = &mut out[ei];
                if holder {
                    &mut c.yielded
                } else {
                    &mut c.shared
                }
                .push((i, j, m));
            } else {
                across.push(Across {
                    kept: (ei, i),
                    lost: (ej, j),
                    minutes: m,
                    holder,
                });
            }
        }
    }
    (out, across)
}

/// Seconds of `iv` that the union of `others` covers (each second once).
fn overlap_with_union(iv: &Interval, others: impl Iterator<Item = Interval>) -> i64 {
    let mut parts: Vec<(i64, i64)> = others
        .filter_map(|o| {
            let start = iv.start.max(o.start);
            let end = iv.end.min(o.end);
            (end > start).then(|| (start.timestamp(), end.timestamp()))
        })
        .collect();
    parts.sort_unstable();
    let mut total = 0;
    let mut reach = i64::MIN;
    for (start, end) in parts {
        let start = start.max(reach);
        if end > start {
            total += end - start;
        }
        reach = reach.max(end);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn iv(a: (u32, u32), b: (u32, u32)) -> Interval {
        Interval {
            start: Utc.with_ymd_and_hms(2026, 3, 2, a.0, a.1, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 3, 2, b.0, b.1, 0).unwrap(),
        }
    }

    #[test]
    fn the_union_counts_each_second_once() {
        let x = iv((14, 0), (14, 30));
        let others = [
            iv((14, 10), (14, 20)),
            iv((14, 15), (14, 40)),
            iv((13, 0), (13, 5)),
        ];
        assert_eq!(overlap_with_union(&x, others.into_iter()), 20 * 60);
        assert_eq!(overlap_with_union(&x, [].into_iter()), 0);
    }
}
