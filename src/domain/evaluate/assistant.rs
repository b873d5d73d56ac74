//! CQ/CO per 15-minute unit (CY2022 physician fee schedule final rule,
//! 86 FR 64996; CMS, "Billing Examples Using CQ/CO Modifiers for Services
//! Furnished In Whole or In Part by PTAs and OTAs"). The 10% de minimis
//! standard applies to each billed unit, not to the code's minutes as a
//! whole:
//! 1. each full 15 minutes that the therapist furnished alone is a unit
//!    without CQ/CO, each full 15 minutes of the assistant's a unit with it;
//! 2. the units left are decided on the minutes left: two units left go
//!    one to each; for one unit left, a party with at least 8 minutes where
//!    the other has fewer gets it, both with 8 or more: the one with more
//!    minutes (a tie: the assistant, the lower payment); both under 8: it
//!    carries CQ/CO when the assistant's minutes are over 10% of the unit's.
//!
//! The CMS page could be read here only in part; steps 1 and 2 follow its
//! published examples as restated by payers that adopt CMS's method
//! (Horizon BCBSNJ "Modifiers CQ/CO", 2022) and the worked examples in the
//! tests. Minutes the therapist and the assistant furnished together are
//! the therapist's.

/// How a code's units divide between the therapist and the assistant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Units and minutes without CQ/CO.
    pub therapist_units: u32,
    pub therapist_minutes: u32,
    /// Units and minutes with CQ/CO.
    pub assistant_units: u32,
    pub assistant_minutes: u32,
}

/// Divides `units` of a timed code among `therapist` (alone) and
/// `assistant` minutes.
pub fn split(therapist: u32, assistant: u32, units: u32) -> Split {
    let (t_full, a_full) = (therapist / 15, assistant / 15);
    let (t_rem, a_rem) = (therapist % 15, assistant % 15);
    let mut s = Split {
        therapist_units: t_full.min(units),
        therapist_minutes: t_full * 15,
        assistant_units: a_full.min(units.saturating_sub(t_full)),
        assistant_minutes: a_full * 15,
    };
    match units.saturating_sub(t_full + a_full) {
        0 => {
            // The leftover minutes earned nothing: they stay with their party.
            s.therapist_minutes += t_rem;
            s.assistant_minutes += a_rem;
        }
        1 => {
            let to_assistant = match (t_rem, a_rem) {
                (_, 0) => false,
                (0, _) => true,
                (t, a) if t >= 8 && a < 8 => false,
                (t, a) if a >= 8 && t < 8 => true,
                (t, a) if t >= 8 && a >= 8 => a >= t,
                // Both under 8: the de minimis standard on the unit.
                (t, a) => a * 10 > t + a,
            };
            let rem = t_rem + a_rem;
            if to_assistant {
                s.assistant_units += 1;
                s.assistant_minutes += rem;
            } else {
                s.therapist_units += 1;
                s.therapist_minutes += rem;
            }
        }
        _ => {
            // Two units left: each party furnished between 8 and 14
            // minutes of them (CY2022 final rule: one unit with CQ/CO, one
            // without).
            s.therapist_units += 1;
            s.therapist_minutes += t_rem;
            s.assistant_units += 1;
            s.assistant_minutes += a_rem;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::units::units_for_minutes;
    use proptest::prelude::*;

    fn units(s: Split) -> (u32, u32) {
        (s.therapist_units, s.assistant_units)
    }

    #[test]
    fn cms_billing_examples() {
        // CMS scenario 1: PTA 23 minutes and PT 13 minutes of 97110 (the
        // PT's 30 minutes of 97140 are another line): 36 minutes, 2 units.
        // The PTA's full 15 minutes are a CQ unit; of the remaining
        // minutes the PT has 13 and the PTA 8: the PT furnished more, so
        // the last unit has no CQ.
        assert_eq!(units(split(13, 23, 2)), (1, 1));
        // PT 50 minutes and PTA 5: 55 minutes, 4 units. Three full PT
        // units; the last unit's 10 minutes are half the PTA's, over the
        // 10% de minimis: CQ on that unit only.
        assert_eq!(units(split(50, 5, 4)), (3, 1));
        // PTA 10, PT 5 of one 15-minute unit: the PTA furnished two thirds,
        // the unit carries CQ (proposed-rule example as finalized).
        assert_eq!(units(split(5, 10, 1)), (0, 1));
        // Two units left with each party at 9-14 minutes: one each.
        assert_eq!(units(split(12, 12, 2)), (1, 1));
        // All by the therapist or all by the assistant.
        assert_eq!(units(split(40, 0, 3)), (3, 0));
        assert_eq!(units(split(0, 40, 3)), (0, 3));
        // A PTA minute in a 16-minute unit is 6%: within the de minimis.
        assert_eq!(units(split(15, 1, 1)), (1, 0));
    }

    proptest! {
        #[test]
        fn units_and_minutes_are_all_accounted_for(t in 0u32..300, a in 0u32..300, extra in 0u32..2) {
            // The units a code gets: its own (per code) or up to one more
            // from the pooled leftovers (CMS total time).
            let u = units_for_minutes(t + a).max((t + a) / 15 + extra.min(u32::from((t + a) % 15 > 0)));
            let s = split(t, a, u);
            prop_assert_eq!(s.therapist_units + s.assistant_units, u);
            prop_assert_eq!(s.therapist_minutes + s.assistant_minutes, t + a);
            // CQ/CO units never exceed what the assistant's minutes can earn.
            prop_assert!(s.assistant_units <= a.div_ceil(15));
            prop_assert!(s.therapist_units <= t.div_ceil(15));
        }
    }
}
