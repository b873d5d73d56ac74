//! The order of sends: a written batch goes out at once unless it shares
//! an encounter (a message key) with a batch sent and not yet settled;
//! then after that settle (settle.rs), so whatever was not acknowledged
//! there is sent again before this batch's voids and replacements.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// The message keys (encounters) of the batches sent and not yet settled,
/// by their number in the order sent (the first is 1).
#[derive(Default)]
pub(super) struct Unsettled {
    batches: VecDeque<(u64, HashSet<Arc<str>>)>,
    sent: u64,
}

impl Unsettled {
    /// The batch a batch with these keys must wait to see settled (0 for
    /// none): the last one sent that shares a key with it. `settled`: how
    /// many batches are settled.
    pub(super) fn follows(&mut self, settled: u64, keys: &HashSet<Arc<str>>) -> u64 {
        self.batches.retain(|(n, _)| *n > settled);
        self.batches
            .iter()
            .rev()
            .find(|(_, k)| !k.is_disjoint(keys))
            .map_or(0, |(n, _)| *n)
    }

    /// A batch with these keys was sent.
    pub(super) fn sent(&mut self, keys: HashSet<Arc<str>>) {
        self.sent += 1;
        self.batches.push_back((self.sent, keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[&str]) -> HashSet<Arc<str>> {
        ks.iter().map(|k| Arc::from(*k)).collect()
    }

    #[test]
    fn a_batch_waits_only_for_the_last_unsettled_batch_that_shares_a_key() {
        let mut u = Unsettled::default();
        assert_eq!(u.follows(0, &keys(&["A"])), 0);
        // Batches 1, 2 and 3.
        u.sent(keys(&["A", "B"]));
        u.sent(keys(&["C"]));
        u.sent(keys(&["B", "D"]));
        // Disjoint from every unsettled batch: goes out at once.
        assert_eq!(u.follows(0, &keys(&["E"])), 0);
        // Shares A with 1 and B with 1 and 3: waits for 3 (settled in
        // order, so 1 is settled by then).
        assert_eq!(u.follows(0, &keys(&["A", "B"])), 3);
        assert_eq!(u.follows(0, &keys(&["C"])), 2);
        // Settled batches are forgotten.
        assert_eq!(u.follows(2, &keys(&["A", "C"])), 0);
        assert_eq!(u.follows(2, &keys(&["D"])), 3);
        assert_eq!(u.follows(3, &keys(&["D"])), 0);
        // Batch 4.
        u.sent(keys(&["D"]));
        assert_eq!(u.follows(3, &keys(&["D"])), 4);
    }
}
