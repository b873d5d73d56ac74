//! One encounter in, its claim lines out: units, modifiers, flags, status
//! and an expected payment. Pure: no I/O, no clock, no randomness.
//!
//! - [`minutes`]: which documented minutes count as timed minutes;
//! - [`assistant`]: CQ/CO per 15-minute unit;
//! - [`flags`]: the checks that raise flags, per line and per pair;
//! - [`modifiers`]: a line's modifiers, in billing order;
//! - [`ncci`]: NCCI procedure-to-procedure pairs and their coverage;
//! - [`who`]: who may furnish a service and what the payer pays for it;
//! - [`payment`]: the expected payment of each line;
//! - [`across`]: minutes two encounters of one date share (a provider's
//!   two visits; two providers' co-treatment).

mod across;
mod assistant;
mod flags;
mod minutes;
mod modifiers;
mod ncci;
mod payment;
mod who;

pub use across::co_treatment;

use super::claim::{ClaimLine, Flag, FlagCode, Severity, Status};
use super::encounter::{Encounter, Service};
use super::rules::{CodeInfo, PayerPolicy, Rules};
use super::units;
use super::values::{Code, EventType, Modifier};
use modifiers::{assign_modifiers, assistant_modifier, therapy_modifier};

/// The services of one code on the date of service.
struct Draft<'a> {
    code: Code,
    info: Option<&'a CodeInfo>,
    /// Indexes of this code's services in the encounter, in order.
    services: Vec<usize>,
    /// Timed minutes (see [`minutes`]), and the assistant's share of them.
    minutes: u32,
    assistant_minutes: u32,
    units: u32,
    /// The code's units on the date of service over every encounter of the
    /// day (the limits compare these); `units` when the encounter is alone.
    day_units: u32,
    flags: Vec<Flag>,
}

impl<'a> Draft<'a> {
    fn services<'s>(&'s self, all: &'a [Service]) -> impl Iterator<Item = &'a Service> + 's {
        self.services.iter().map(move |&i| &all[i])
    }

    fn timed(&self) -> bool {
        self.info.is_some_and(|i| i.timed)
    }

    fn flag(&mut self, code: FlagCode, severity: Severity, message: String, related: &[Code]) {
        self.flags.push(Flag {
            code,
            severity,
            message,
            related_codes: related.to_vec(),
        });
    }
}

/// A claim line to be: a draft's units, all of them or the part with (or
/// without) CQ/CO.
struct Part {
    draft: usize,
    units: u32,
    minutes: u32,
    assistant: bool,
    modifiers: Vec<Modifier>,
    flags: Vec<Flag>,
}

/// Evaluates one encounter. A `voided` event yields no lines: voiding what
/// was published before is the pipeline's job, since only it knows what was.
pub fn evaluate(enc: &Encounter, rules: &Rules) -> Vec<ClaimLine> {
    if enc.event_type == EventType::Voided {
        return Vec::new();
    }
    let policy = rules.policies.for_payer(&enc.payer_id, enc.plan);
    let counted = minutes::count(&enc.services, rules);
    let mut drafts = group_by_code(enc, &counted);
    assign_units(&mut drafts, policy);
    finish(enc, drafts, &counted, rules)
}

/// Evaluates the encounters of one day: one patient, one provider (NPI),
/// one payer, one date of service (contract section 3). CMS counts units
/// on the day's total timed minutes, so the units are handed out over the
/// day's codes first; each code's units then go to the encounters that
/// furnished its minutes, in proportion to them (largest remainder; equal
/// remainders to the encounter listed first). Everything else (flags,
/// modifiers, payment) is each encounter's own; the limits compare the
/// day's units. Lines come back per encounter, in the order given.
pub fn evaluate_day(encs: &[&Encounter], rules: &Rules) -> Vec<Vec<ClaimLine>> {
    if let [one] = encs {
        return vec![evaluate(one, rules)];
    }
    let live: Vec<bool> = encs
        .iter()
        .map(|e| e.event_type != EventType::Voided)
        .collect();
    // A clock minute counts once across the day's visits (contract
    // section 3), the earlier visit first: the services of the day as one.
    let services: Vec<&[Service]> = encs
        .iter()
        .zip(&live)
        .map(|(e, l)| if *l { &e.services[..] } else { &[][..] })
        .collect();
    let (counted, across) = minutes::count_day(&services, rules);
    let mut drafts: Vec<Vec<Draft>> = encs
        .iter()
        .zip(&counted)
        .zip(&live)
        .map(|((e, c), live)| {
            if *live {
                group_by_code(e, c)
            } else {
                Vec::new()
            }
        })
        .collect();
    let Some(first) = encs.iter().zip(&live).find(|(_, l)| **l).map(|(e, _)| e) else {
        return vec![Vec::new(); encs.len()];
    };
    let policy = rules.policies.for_payer(&first.payer_id, first.plan);
    assign_day_units(&mut drafts, policy);
    ncci::day_pair_flags(&mut drafts, encs, rules);
    across::shared_flags(&mut drafts, encs, &across);
    encs.iter()
        .zip(drafts)
        .zip(&counted)
        .map(|((e, d), c)| {
            if d.is_empty() {
                Vec::new()
            } else {
                finish(e, d, c, rules)
            }
        })
        .collect()
}

/// Flags, the CQ/CO split, modifiers and payment of an encounter whose
/// drafts have their units.
fn finish<'a>(
    enc: &'a Encounter,
    mut drafts: Vec<Draft<'a>>,
    counted: &minutes::Counted<'a>,
    rules: &Rules,
) -> Vec<ClaimLine> {
    let policy = rules.policies.for_payer(&enc.payer_id, enc.plan);
    for d in &mut drafts {
        flags::line_flags(d, enc, policy, rules, counted);
    }
    flags::pair_flags(&mut drafts, enc, rules, policy, counted);
    let mut parts = split_assistant_units(&drafts, enc, policy);
    for p in &mut parts {
        assign_modifiers(p, &drafts[p.draft], enc, policy);
    }
    let payments = payment::expected(&parts, &drafts, rules, policy, payment::gpci(enc, rules));
    // The code's flags go on each of its lines: moved to its last one,
    // copied to a split's first.
    let last_of_draft: Vec<bool> = (0..parts.len())
        .map(|i| {
            parts
                .get(i + 1)
                .is_none_or(|next| next.draft != parts[i].draft)
        })
        .collect();

    parts
        .into_iter()
        .zip(payments)
        .enumerate()
        .map(|(i, (p, payment))| {
            let line_no = i as u32 + 1;
            let mut flags = if last_of_draft[i] {
                std::mem::take(&mut drafts[p.draft].flags)
            } else {
                drafts[p.draft].flags.clone()
            };
            flags.extend(p.flags);
            let status = if flags.iter().any(|f| f.severity == Severity::Error) {
                Status::NeedsReview
            } else {
                Status::Validated
            };
            ClaimLine {
                claim_line_id: ClaimLine::id(&enc.encounter_id, enc.version, line_no),
                encounter_id: enc.encounter_id.clone(),
                encounter_version: enc.version,
                event_id: enc.event_id.clone(),
                date_of_service: enc.date_of_service,
                patient_id: enc.patient_id.shared(),
                provider_npi: enc.npi,
                payer_id: enc.payer_id.clone(),
                line_no,
                code: drafts[p.draft].code,
                units: p.units,
                minutes: p.minutes,
                modifiers: p.modifiers,
                unit_method: policy.unit_method,
                status,
                flags,
                diagnoses: enc.diagnoses.clone(),
                expected_payment_cents: payment,
                rules_version: rules.version.clone(),
                kx_group: None,
            }
        })
        .collect()
}

/// The day's units: timed codes by the payer's method over the day's
/// minutes of each code, untimed ones one unit a day (to the first
/// encounter that lists the code); then each code's units to its
/// encounters in proportion to their minutes.
fn assign_day_units(drafts: &mut [Vec<Draft>], policy: &PayerPolicy) {
    // The day's codes in order of first appearance: (code, minutes, timed).
    let mut codes: Vec<(Code, u32, bool)> = Vec::new();
    for d in drafts.iter().flatten() {
        match codes.iter_mut().find(|(c, _, _)| *c == d.code) {
            Some(c) => c.1 += d.minutes,
            None => codes.push((d.code, d.minutes, d.timed())),
        }
    }
    let timed_minutes: Vec<u32> = codes.iter().filter(|c| c.2).map(|c| c.1).collect();
    let mut timed_units = units::allocate(policy.unit_method, &timed_minutes).into_iter();
    for &(code, total, timed) in &codes {
        let holders: Vec<(usize, usize)> = drafts
            .iter()
            .enumerate()
            .filter_map(|(e, ds)| ds.iter().position(|d| d.code == code).map(|i| (e, i)))
            .collect();
        if !timed {
            for (n, &(e, i)) in holders.iter().enumerate() {
                let d = &mut drafts[e][i];
                if d.info.is_some() {
                    d.units = u32::from(n == 0);
                    d.day_units = 1;
                } else {
                    flag_unknown(d);
                }
            }
            continue;
        }
        let day_units = timed_units.next().unwrap_or(0);
        let minutes: Vec<u32> = holders.iter().map(|&(e, i)| drafts[e][i].minutes).collect();
        for (&(e, i), u) in holders.iter().zip(share(day_units, &minutes, total)) {
            drafts[e][i].units = u;
            drafts[e][i].day_units = day_units;
        }
    }
}

/// `units` shared in proportion to `minutes` (summing to `total`): each
/// its whole share, then one each by largest remainder, ties to the first.
fn share(units: u32, minutes: &[u32], total: u32) -> Vec<u32> {
    if total == 0 {
        let mut out = vec![0; minutes.len()];
        if let Some(first) = out.first_mut() {
            *first = units;
        }
        return out;
    }
    let (u, t) = (u64::from(units), u64::from(total));
    let mut out: Vec<u32> = minutes
        .iter()
        .map(|&m| (u * u64::from(m) / t) as u32)
        .collect();
    let mut left = units - out.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..minutes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(u * u64::from(minutes[i]) % t));
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Services with the same code on the same date are one code, in the order
/// each code first appears.
fn group_by_code<'a>(enc: &'a Encounter, counted: &minutes::Counted<'a>) -> Vec<Draft<'a>> {
    let mut drafts: Vec<Draft<'a>> = Vec::with_capacity(enc.services.len());
    for (i, s) in enc.services.iter().enumerate() {
        let m = counted.minutes[i];
        let a = s.assistant_minutes.min(m);
        match drafts.iter_mut().find(|d| d.code == s.code) {
            Some(d) => {
                d.services.push(i);
                d.minutes += m;
                d.assistant_minutes += a;
            }
            None => drafts.push(Draft {
                code: s.code,
                info: counted.info[i],
                services: vec![i],
                minutes: m,
                assistant_minutes: a,
                units: 0,
                day_units: 0,
                flags: Vec::new(),
            }),
        }
    }
    drafts
}

fn assign_units(drafts: &mut [Draft], policy: &PayerPolicy) {
    let timed: Vec<usize> = (0..drafts.len()).filter(|&i| drafts[i].timed()).collect();
    let minutes: Vec<u32> = timed.iter().map(|&i| drafts[i].minutes).collect();
    for (&i, u) in timed
        .iter()
        .zip(units::allocate(policy.unit_method, &minutes))
    {
        drafts[i].units = u;
    }
    for d in drafts.iter_mut().filter(|d| !d.timed()) {
        if d.info.is_some() {
            // Untimed: one unit a day, whatever the minutes.
            d.units = 1;
        } else {
            flag_unknown(d);
        }
    }
    for d in drafts.iter_mut() {
        d.day_units = d.units;
    }
}

fn flag_unknown(d: &mut Draft) {
    let code = d.code;
    d.flag(
        FlagCode::UnknownCode,
        Severity::Error,
        format!("{code} is not in claimline's code catalogue, so whether it is timed and how many units it earns is unknown; check the code or bill it by hand."),
        &[],
    );
}

/// The lines of each draft: one, or two when its units were furnished
/// partly by an assistant and partly by the therapist and the payer wants
/// CQ/CO (first the units without, then those with; contract section 2).
fn split_assistant_units(drafts: &[Draft], enc: &Encounter, policy: &PayerPolicy) -> Vec<Part> {
    let mut parts = Vec::with_capacity(drafts.len() + 1);
    let modifiers = policy.assistant_modifiers && assistant_modifier(enc.discipline).is_some();
    for (i, d) in drafts.iter().enumerate() {
        let whole = |assistant| Part {
            draft: i,
            units: d.units,
            minutes: d.minutes,
            assistant,
            modifiers: Vec::new(),
            flags: Vec::new(),
        };
        if !modifiers || d.assistant_minutes == 0 {
            parts.push(whole(false));
            continue;
        }
        if !d.timed() || d.units == 0 {
            // An untimed service (or one without units): the de minimis
            // standard on the service as a whole.
            parts.push(whole(d.assistant_minutes * 10 > d.minutes));
            continue;
        }
        let s = assistant::split(
            d.minutes - d.assistant_minutes,
            d.assistant_minutes,
            d.units,
        );
        // A part without units (its minutes earned none) is no line: its
        // minutes stay with the code's one line, so they are still counted.
        if s.therapist_units == 0 || s.assistant_units == 0 {
            parts.push(whole(s.therapist_units == 0));
            continue;
        }
        for (units, minutes, assistant) in [
            (s.therapist_units, s.therapist_minutes, false),
            (s.assistant_units, s.assistant_minutes, true),
        ] {
            parts.push(Part {
                draft: i,
                units,
                minutes,
                assistant,
                modifiers: Vec::new(),
                flags: Vec::new(),
            });
        }
    }
    parts
}
