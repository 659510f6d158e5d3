//! Which offset of a partition may be committed: never past one whose
//! notification is not done, so that a crash replays and never skips.

use std::collections::BTreeSet;

/// One partition's offsets between taken and done.
#[derive(Debug, Default)]
pub struct PartitionOffsets {
    /// Taken and not yet done.
    pending: BTreeSet<i64>,
    /// One past the highest offset taken.
    next: Option<i64>,
}

impl PartitionOffsets {
    pub fn take(&mut self, offset: i64) {
        self.pending.insert(offset);
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    pub fn done(&mut self, offset: i64) {
        self.pending.remove(&offset);
    }

    /// The offset to commit (Kafka's "next to read"): the lowest one not done,
    /// or one past everything taken when all are done.
    pub fn committable(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_stops_at_the_first_offset_not_done() {
        let mut offsets = PartitionOffsets::default();
        assert_eq!(
            offsets.committable(),
            None,
            "nothing taken, nothing to commit"
        );
        for o in 10..15 {
            offsets.take(o);
        }
        assert_eq!(offsets.committable(), Some(10));
        offsets.done(11);
        offsets.done(12);
        assert_eq!(
            offsets.committable(),
            Some(10),
            "11 and 12 are done, 10 is not"
        );
        offsets.done(10);
        assert_eq!(offsets.committable(), Some(13));
        offsets.done(14);
        offsets.done(13);
        assert_eq!(
            offsets.committable(),
            Some(15),
            "all done: one past the last"
        );
    }
}
