//! Units from minutes: the 8-minute rule, per code or pooled the CMS way.

use super::claim::UnitMethod;

/// Units for a number of minutes of one 15-minute service: 8-22 = 1,
/// 23-37 = 2, 38-52 = 3, and so on.
pub fn units_for_minutes(minutes: u32) -> u32 {
    if minutes < 8 {
        0
    } else {
        (minutes + 7) / 15
    }
}

/// Hands out units to timed codes. `minutes[i]` is the day's minutes of
/// code i; the result is the units of code i in the same order.
pub fn allocate(method: UnitMethod, minutes: &[u32]) -> Vec<u32> {
    match method {
        UnitMethod::PerCode => minutes.iter().map(|&m| units_for_minutes(m)).collect(),
        UnitMethod::CmsTotalTime => allocate_cms_total_time(minutes),
    }
}

/// The CMS total-time method (Medicare Claims Processing Manual, ch. 5,
/// 20.2): the total timed minutes decide how many units the day has; each
/// code first gets its full 15-minute units, then the units left go one each
/// to the codes with the most minutes left over. Equal leftovers go to the
/// code listed first, so the answer is deterministic.
pub fn allocate_cms_total_time(minutes: &[u32]) -> Vec<u32> {
    let total: u32 = minutes.iter().sum();
    let mut units: Vec<u32> = minutes.iter().map(|m| m / 15).collect();
    let full: u32 = units.iter().sum();
    let mut left = units_for_minutes(total).saturating_sub(full);
    let mut order: Vec<usize> = (0..minutes.len()).collect();
    // Stable sort: ties keep input order.
    order.sort_by_key(|&i| std::cmp::Reverse(minutes[i] % 15));
    for i in order {
        if left == 0 {
            break;
        }
        if !minutes[i].is_multiple_of(15) {
            units[i] += 1;
            left -= 1;
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_unit_table_at_its_boundaries() {
        let table = [
            (0, 0),
            (7, 0),
            (8, 1),
            (22, 1),
            (23, 2),
            (37, 2),
            (38, 3),
            (52, 3),
            (53, 4),
            (67, 4),
            (68, 5),
            (82, 5),
            (83, 6),
            (1440, 96),
        ];
        for (minutes, units) in table {
            assert_eq!(units_for_minutes(minutes), units, "{minutes} minutes");
        }
    }

    // The worked examples of the Medicare Claims Processing Manual, ch. 5, 20.2.
    #[test]
    fn cms_example_1_24_min_97112_and_23_min_97110() {
        assert_eq!(allocate_cms_total_time(&[24, 23]), vec![2, 1]);
    }

    #[test]
    fn cms_example_2_20_and_20_minutes_give_3_units() {
        // Equal time: either code may take the second unit; we pick the first.
        assert_eq!(allocate_cms_total_time(&[20, 20]), vec![2, 1]);
    }

    #[test]
    fn cms_example_3_33_min_97110_and_7_min_97140() {
        assert_eq!(allocate_cms_total_time(&[33, 7]), vec![2, 1]);
    }

    #[test]
    fn cms_example_4_7_min_each_of_three_codes_gives_one_unit() {
        assert_eq!(allocate_cms_total_time(&[7, 7, 7]), vec![1, 0, 0]);
    }

    #[test]
    fn cms_example_5_four_codes_49_minutes() {
        // 18 min 97110, 13 min 97140, 10 min 97116, 8 min 97035 = 49 -> 3.
        assert_eq!(allocate_cms_total_time(&[18, 13, 10, 8]), vec![1, 1, 1, 0]);
    }

    #[test]
    fn cms_two_short_services_that_add_up_to_8_minutes() {
        // 5 + 4 = 9 minutes: one unit, to the service with more minutes.
        assert_eq!(allocate_cms_total_time(&[4, 5]), vec![0, 1]);
    }

    #[test]
    fn per_code_counts_each_code_alone() {
        assert_eq!(allocate(UnitMethod::PerCode, &[7, 7, 7]), vec![0, 0, 0]);
        assert_eq!(allocate(UnitMethod::PerCode, &[24, 23]), vec![2, 2]);
    }

    proptest! {
        #[test]
        fn cms_never_bills_more_than_the_total_time_allows(
            minutes in proptest::collection::vec(0u32..=200, 0..8)
        ) {
            let units = allocate_cms_total_time(&minutes);
            let total: u32 = minutes.iter().sum();
            prop_assert!(units.iter().sum::<u32>() <= units_for_minutes(total));
        }

        #[test]
        fn cms_bills_exactly_what_the_total_time_allows(
            minutes in proptest::collection::vec(0u32..=200, 1..8)
        ) {
            let units = allocate_cms_total_time(&minutes);
            let total: u32 = minutes.iter().sum();
            prop_assert_eq!(units.iter().sum::<u32>(), units_for_minutes(total));
        }

        #[test]
        fn cms_gives_no_code_more_than_its_own_minutes_plus_one(
            minutes in proptest::collection::vec(0u32..=200, 0..8)
        ) {
            let units = allocate_cms_total_time(&minutes);
            for (m, u) in minutes.iter().zip(&units) {
                prop_assert!(*u <= m / 15 + 1, "{} minutes got {} units", m, u);
                prop_assert!(*u <= units_for_minutes(*m) + 1);
                if *m == 0 {
                    prop_assert_eq!(*u, 0);
                }
            }
        }

        #[test]
        fn cms_is_deterministic(minutes in proptest::collection::vec(0u32..=200, 0..8)) {
            prop_assert_eq!(allocate_cms_total_time(&minutes), allocate_cms_total_time(&minutes));
        }
    }
}
