//! The inbox over several PostgreSQL servers (shards): each recipient's rows
//! on one of them, chosen by a hash of the recipient that every process
//! computes alike. Adding a shard moves some recipients. While it is being
//! added (`--postgres-shards-before`), a moved recipient's rows are read from
//! its old shard and its new one, merged in position order; new rows go to
//! the old one until every process reads both places
//! (`--postgres-store-as-before`), then to the new one; `notifd inbox move`
//! then moves what the old one held. docs/scaling.md gives the procedure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{join_all, try_join_all};
use sha2::{Digest, Sha256};

use super::{Inbox, InboxError, Positioned, PostgresInbox};

/// Which shard holds which recipient's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    shards: usize,
    /// While shards are being added: how many there were before.
    before: Option<usize>,
    /// While shards are being added: new rows still go where they went
    /// before.
    store_as_before: bool,
}

impl Layout {
    /// `shards` of them, the last ones being added when `before` says how
    /// many there were; `store_as_before` as in the field.
    pub fn new(
        shards: usize,
        before: Option<usize>,
        store_as_before: bool,
    ) -> Result<Layout, String> {
        if shards == 0 {
            return Err("at least one shard is needed".into());
        }
        match before {
            Some(before) if !(1..shards).contains(&before) => Err(format!(
                "is {before}, but must be at least 1 and fewer than the {shards} shards listed"
            )),
            None if store_as_before => {
                Err("is needed: storing as before says nothing without it".into())
            }
            _ => Ok(Layout {
                shards,
                before,
                store_as_before,
            }),
        }
    }

    /// The shard that stores `recipient`'s new notifications.
    pub fn store_in(&self, recipient: &str) -> usize {
        match (self.before, self.store_as_before) {
            (Some(before), true) => shard_of(recipient, before),
            _ => shard_of(recipient, self.shards),
        }
    }

    /// The shards that may hold `recipient`'s rows: where the listed shards
    /// put it, and, while shards are being added, where it was before.
    pub fn read_from(&self, recipient: &str) -> impl Iterator<Item = usize> + use<> {
        let home = shard_of(recipient, self.shards);
        std::iter::once(home).chain(self.moves(recipient).map(|(from, _)| from))
    }

    /// While shards are being added: `(from, to)` if `recipient` moves.
    pub fn moves(&self, recipient: &str) -> Option<(usize, usize)> {
        let (from, to) = (
            shard_of(recipient, self.before?),
            shard_of(recipient, self.shards),
        );
        (from != to).then_some((from, to))
    }
}

/// The shard of `recipient` among `shards`: the first 8 bytes of its
/// SHA-256, by jump consistent hashing. Growing the count moves a recipient
/// only to one of the new shards, and moves as few as an even spread needs.
/// Never change it: stored rows would be looked for on the wrong shard.
pub fn shard_of(recipient: &str, shards: usize) -> usize {
    // One shard, the default: no hash on every read and store.
    if shards <= 1 {
        return 0;
    }
    let digest = Sha256::digest(recipient.as_bytes());
    let mut key = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
    // Algorithm" (2014), as published.
    let (mut bucket, mut next) = (-1i64, 0i64);
    while next < shards as i64 {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket as usize
}

/// The inbox on its shards; one shard is the plain case.
pub struct ShardedInbox {
    shards: Vec<PostgresInbox>,
    layout: Layout,
}

/// What `notifd inbox move` moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub recipients: u64,
    pub rows: u64,
}

impl ShardedInbox {
    pub fn new(shards: Vec<PostgresInbox>, layout: Layout) -> ShardedInbox {
        assert_eq!(shards.len(), layout.shards, "one inbox per shard");
        ShardedInbox { shards, layout }
    }

    /// Brings every shard's schema up to date.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        try_join_all(self.shards.iter().map(PostgresInbox::migrate)).await?;
        Ok(())
    }

    /// The shards that may hold `recipient`'s rows.
    fn places(&self, recipient: &str) -> impl Iterator<Item = &PostgresInbox> {
        let places = self.layout.read_from(recipient);
        places.map(|shard| &self.shards[shard])
    }

    /// Moves the rows of every recipient that the added shards move, from
    /// where they were to their new shard. A recipient's rows are copied,
    /// then removed from the old shard; meanwhile, and after a crash between
    /// the two, reads find them in either place, so the move can run under
    /// traffic and again after a failure. Moved rows keep their positions;
    /// their retention counts from the move.
    pub async fn move_rows(&self) -> Result<Moved, InboxError> {
        let mut moved = Moved::default();
        let Some(before) = self.layout.before else {
            return Ok(moved);
        };
        for (shard, old) in self.shards[..before].iter().enumerate() {
            let mut after = String::new();
            loop {
                let recipients = old.recipients_after(&after, 500).await?;
                let Some(last) = recipients.last() else { break };
                after = last.clone();
                for recipient in &recipients {
                    let Some((from, to)) = self.layout.moves(recipient) else {
                        continue;
                    };
                    debug_assert_eq!(from, shard, "a recipient's rows are on its shard");
                    moved.rows += move_recipient(recipient, old, &self.shards[to]).await?;
                    moved.recipients += 1;
                }
            }
        }
        Ok(moved)
    }
}

/// Moves `recipient`'s rows from `from` to `to`, a batch at a time: copied,
/// then removed. Returns how many.
async fn move_recipient(
    recipient: &str,
    from: &PostgresInbox,
    to: &PostgresInbox,
) -> Result<u64, InboxError> {
    let mut rows = 0;
    loop {
        // At time 0 nothing has expired: expired rows move too, and the
        // purge removes them from their new place.
        let batch = from.pending(recipient, None, 1000, 0).await?;
        if batch.is_empty() {
            return Ok(rows);
        }
        to.store(&batch).await?;
        let ids: Vec<String> = batch.iter().map(|p| p.notification.id.clone()).collect();
        from.acknowledge(recipient, &ids).await?;
        rows += batch.len() as u64;
    }
}

#[async_trait]
impl Inbox for ShardedInbox {
    async fn store(&self, batch: &[Positioned]) -> Result<(), InboxError> {
        let mut by_shard: BTreeMap<usize, Vec<&Positioned>> = BTreeMap::new();
        for item in batch {
            let shard = self.layout.store_in(&item.notification.recipient);
            by_shard.entry(shard).or_default().push(item);
        }
        let stores = by_shard
            .into_iter()
            .map(|(shard, items)| self.shards[shard].insert(items));
        try_join_all(stores).await?;
        Ok(())
    }

    async fn pending(
        &self,
        recipient: &str,
        after: Option<u64>,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Positioned>, InboxError> {
        let reads = self
            .places(recipient)
            .map(|shard| shard.pending(recipient, after, limit, now_ms));
        let mut rows: Vec<Positioned> = try_join_all(reads).await?.into_iter().flatten().collect();
        // A row being moved may be in both places for a moment.
        rows.sort_by_key(|row| row.position);
        rows.dedup_by_key(|row| row.position);
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn acknowledge(
        &self,
        recipient: &str,
        ids: &[String],
    ) -> Result<Vec<String>, InboxError> {
        let removals = self
            .places(recipient)
            .map(|shard| shard.acknowledge(recipient, ids));
        Ok(distinct(try_join_all(removals).await?))
    }

    async fn acknowledge_through(
        &self,
        recipient: &str,
        position: u64,
    ) -> Result<Vec<String>, InboxError> {
        let removals = self
            .places(recipient)
            .map(|shard| shard.acknowledge_through(recipient, position));
        Ok(distinct(try_join_all(removals).await?))
    }

    async fn purge(&self, now_ms: u64, retention: Duration) -> Result<u64, InboxError> {
        let purges = self.shards.iter().map(|s| s.purge(now_ms, retention));
        Ok(try_join_all(purges).await?.into_iter().sum())
    }

    /// Reachable when every shard is: a recipient on any one that is not
    /// cannot be served.
    async fn is_reachable(&self) -> bool {
        let checks = self.shards.iter().map(PostgresInbox::is_reachable);
        join_all(checks).await.into_iter().all(|up| up)
    }
}

/// Each id once, from removals in several places.
fn distinct(removed: Vec<Vec<String>>) -> Vec<String> {
    let ids: BTreeSet<String> = removed.into_iter().flatten().collect();
    ids.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients() -> impl Iterator<Item = String> {
        (0..10_000).map(|i| format!("user-{i}"))
    }

    #[test]
    fn a_recipient_keeps_its_shard_across_versions() {
        // Stored rows are found where these say: the values must not change.
        let homes: Vec<usize> = ["alice", "bob", "carol", "user-1", "user-2"]
            .iter()
            .map(|r| shard_of(r, 8))
            .collect();
        assert_eq!(homes, PINNED);
    }

    const PINNED: [usize; 5] = [4, 1, 4, 2, 4];

    #[test]
    fn recipients_spread_evenly() {
        let mut counts = [0usize; 4];
        for r in recipients() {
            counts[shard_of(&r, 4)] += 1;
        }
        for count in counts {
            assert!((2_200..2_800).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn an_added_shard_takes_recipients_only_from_the_others_and_only_its_share() {
        for shards in 1..6 {
            let mut moved = 0usize;
            for r in recipients() {
                let (old, new) = (shard_of(&r, shards), shard_of(&r, shards + 1));
                if old != new {
                    assert_eq!(new, shards, "{r} moves only to the new shard");
                    moved += 1;
                }
            }
            let share = 10_000 / (shards + 1);
            assert!(
                moved.abs_diff(share) < share / 5,
                "{moved} moved, {share} expected"
            );
        }
    }

    #[test]
    fn while_a_shard_is_added_a_moved_recipient_is_found_in_both_places() {
        let (adding, storing_as_before, settled) = (
            Layout::new(3, Some(2), false).expect("a layout"),
            Layout::new(3, Some(2), true).expect("a layout"),
            Layout::new(3, None, false).expect("a layout"),
        );
        let mut moved = 0;
        for r in recipients() {
            let (old, new) = (shard_of(&r, 2), shard_of(&r, 3));
            match adding.moves(&r) {
                Some(step) => {
                    assert_eq!(step, (old, 2), "{r} moves to the new shard");
                    assert_eq!(adding.read_from(&r).collect::<Vec<_>>(), [2, old]);
                    moved += 1;
                }
                None => assert_eq!(adding.read_from(&r).collect::<Vec<_>>(), [old]),
            }
            assert_eq!(adding.store_in(&r), new);
            assert_eq!(storing_as_before.store_in(&r), old);
            assert!(storing_as_before.read_from(&r).eq(adding.read_from(&r)));
            assert_eq!(settled.read_from(&r).collect::<Vec<_>>(), [new]);
            assert_eq!(settled.moves(&r), None);
        }
        assert!(moved > 0);
    }

    #[test]
    fn a_layout_names_what_is_wrong() {
        assert!(Layout::new(0, None, false).is_err());
        let too_many = Layout::new(2, Some(2), false).unwrap_err();
        assert!(too_many.contains("fewer than the 2"), "{too_many}");
        assert!(Layout::new(2, Some(0), false).is_err());
        assert!(Layout::new(2, None, true).is_err());
        assert!(Layout::new(1, None, false).is_ok());
    }
}
