//! How far a partition is done: never past an offset whose notification is
//! not done, so that a crash replays and never skips; and below which epoch
//! every record is done, so that other directors know when a new epoch may
//! start (see `log::partitions`).

use std::collections::BTreeMap;

/// One partition's records between taken and done.
#[derive(Debug, Default)]
pub struct PartitionOffsets {
    /// Taken and not yet done, with their epochs.
    pending: BTreeMap<i64, u32>,
    /// One past the highest offset taken.
    next: Option<i64>,
    /// The highest epoch taken.
    epoch: u32,
    /// The position of the first record of the run this director reads
    /// now: from where it started, or was given the partition again.
    run_from: Option<u64>,
}

impl PartitionOffsets {
    pub fn take(&mut self, offset: i64, epoch: u32) {
        // A record that does not follow the last one taken starts a new run
        // (the first after a start, a replay, the partition given back).
        if self.next != Some(offset) {
            self.run_from = Some(crate::log::position(epoch, offset));
        }
        self.pending.insert(offset, epoch);
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
        self.epoch = self.epoch.max(epoch);
    }

    /// The position below which this director does not know what its
    /// predecessors stored: the records before this run were routed by
    /// another director, or by this one before it started again.
    pub fn unknown_below(&self) -> Option<u64> {
        self.run_from?.checked_sub(1)
    }

    pub fn done(&mut self, offset: i64) {
        self.pending.remove(&offset);
    }

    /// The offset to commit (Kafka's "next to read": the lowest one not done,
    /// or one past everything taken when all are done), with the epoch below
    /// which every record is done. Epochs never decrease along a partition,
    /// so that is the epoch of the lowest record not done; when all are done,
    /// the highest epoch taken, since what is not read yet is of that epoch
    /// or a later one.
    pub fn committable(&self) -> Option<(i64, u32)> {
        match self.pending.first_key_value() {
            Some((&offset, &epoch)) => Some((offset, epoch)),
            None => Some((self.next?, self.epoch)),
        }
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
            offsets.take(o, 2);
        }
        assert_eq!(offsets.committable(), Some((10, 2)));
        offsets.done(11);
        offsets.done(12);
        assert_eq!(
            offsets.committable(),
            Some((10, 2)),
            "11 and 12 are done, 10 is not"
        );
        offsets.done(10);
        assert_eq!(offsets.committable(), Some((13, 2)));
        offsets.done(14);
        offsets.done(13);
        assert_eq!(
            offsets.committable(),
            Some((15, 2)),
            "all done: one past the last"
        );
    }

    #[test]
    fn what_was_stored_before_the_run_is_unknown() {
        let mut offsets = PartitionOffsets::default();
        assert_eq!(offsets.unknown_below(), None, "nothing read yet");
        offsets.take(40, 0);
        offsets.take(41, 0);
        assert_eq!(offsets.unknown_below(), Some(39), "from the first read");
        offsets.take(90, 0);
        assert_eq!(
            offsets.unknown_below(),
            Some(89),
            "others read 42 to 89: a new run"
        );
        offsets.take(0, 0);
        assert_eq!(offsets.unknown_below(), None, "from the very start");
    }

    #[test]
    fn an_epoch_is_done_below_once_its_predecessors_are() {
        let mut offsets = PartitionOffsets::default();
        offsets.take(5, 2);
        offsets.take(6, 4);
        assert_eq!(
            offsets.committable(),
            Some((5, 2)),
            "a record of epoch 2 is not done"
        );
        offsets.done(5);
        assert_eq!(
            offsets.committable(),
            Some((6, 4)),
            "everything of epoch 2 is done, 6 is not"
        );
        offsets.done(6);
        assert_eq!(offsets.committable(), Some((7, 4)));
    }
}
