//! The inbox's rules, on each of its databases: the same scenarios on
//! PostgreSQL, on PostgreSQL sharded over two databases, and on the
//! standalone service's SQLite; then adding a shard.

use std::time::Duration;

use dataplane::inbox::{
    Inbox, Layout, Moved, Positioned, PostgresInbox, ShardedInbox, SqliteInbox, shard_of,
};
use dataplane::notification::Notification;
use dataplane::standalone::DataDir;
use serde_json::value::RawValue;
use testenv::TestDatabase;

/// An inbox on a database of its own; `finish` removes it.
enum TestInbox {
    Postgres(PostgresInbox, TestDatabase),
    Sharded(ShardedInbox, Vec<TestDatabase>),
    Sqlite(SqliteInbox, DataDir),
}

/// `count` databases, each with the inbox's schema.
async fn shards(count: usize) -> (Vec<PostgresInbox>, Vec<TestDatabase>) {
    let mut shards = Vec::new();
    let mut dbs = Vec::new();
    for _ in 0..count {
        let db = TestDatabase::create("inbox-shard").await;
        let inbox = PostgresInbox::new(db.pool().await);
        inbox.migrate().await.expect("the migrations apply");
        shards.push(inbox);
        dbs.push(db);
    }
    (shards, dbs)
}

impl TestInbox {
    async fn postgres() -> TestInbox {
        let db = TestDatabase::create("inbox").await;
        let inbox = PostgresInbox::new(db.pool().await);
        inbox.migrate().await.expect("the migrations apply");
        TestInbox::Postgres(inbox, db)
    }

    async fn sharded() -> TestInbox {
        let (shards, dbs) = shards(2).await;
        let layout = Layout::new(2, None, false).expect("two shards");
        TestInbox::Sharded(ShardedInbox::new(shards, layout), dbs)
    }

    async fn sqlite() -> TestInbox {
        let path = std::env::temp_dir().join(testenv::unique_name("inbox"));
        let data_dir = DataDir::lock(&path).expect("a data directory");
        let pool = data_dir.database().await.expect("the database");
        TestInbox::Sqlite(SqliteInbox::new(pool), data_dir)
    }

    fn inbox(&self) -> &dyn Inbox {
        match self {
            TestInbox::Postgres(inbox, _) => inbox,
            TestInbox::Sharded(inbox, _) => inbox,
            TestInbox::Sqlite(inbox, _) => inbox,
        }
    }

    async fn finish(self) {
        match self {
            TestInbox::Postgres(_, db) => db.drop_database().await,
            TestInbox::Sharded(_, dbs) => {
                for db in dbs {
                    db.drop_database().await;
                }
            }
            TestInbox::Sqlite(_, data_dir) => {
                let _ = std::fs::remove_dir_all(&data_dir.path);
            }
        }
    }
}

/// Runs the scenario `fn $name(&dyn Inbox)` on each database, as the tests
/// `$name::postgres`, `$name::sharded` and `$name::sqlite`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn postgres() {
                let inbox = super::TestInbox::postgres().await;
                super::$name(inbox.inbox()).await;
                inbox.finish().await;
            }

            #[tokio::test]
            async fn sharded() {
                let inbox = super::TestInbox::sharded().await;
                super::$name(inbox.inbox()).await;
                inbox.finish().await;
            }

            #[tokio::test]
            async fn sqlite() {
                let inbox = super::TestInbox::sqlite().await;
                super::$name(inbox.inbox()).await;
                inbox.finish().await;
            }
        }
    };
}

fn positioned(
    recipient: &str,
    position: u64,
    id: &str,
    payload: &str,
    expires_at_ms: Option<u64>,
) -> Positioned {
    Positioned {
        position,
        notification: Notification {
            id: id.into(),
            recipient: recipient.into(),
            payload: RawValue::from_string(payload.into()).expect("JSON"),
            kind: Some("test".into()),
            published_at_ms: 1_000,
            expires_at_ms,
        },
    }
}

fn ids(list: &[Positioned]) -> Vec<&str> {
    list.iter().map(|p| p.notification.id.as_str()).collect()
}

#[tokio::test]
async fn postgres_migrations_apply_again_without_change() {
    let db = TestDatabase::create("inbox").await;
    let inbox = PostgresInbox::new(db.pool().await);
    inbox.migrate().await.expect("the migrations apply");
    inbox.migrate().await.expect("a second run changes nothing");
    db.drop_database().await;
}

on_both!(stored_notifications_come_back_in_position_order_exactly_as_stored);

async fn stored_notifications_come_back_in_position_order_exactly_as_stored(inbox: &dyn Inbox) {
    inbox
        .store(&[
            positioned("u", 30, "c", "3", None),
            positioned("u", 10, "a", r#"{"n": 1.50, "s": "é"}"#, None),
            positioned("v", 5, "x", "0", None),
            positioned("u", 20, "b", "[2]", None),
        ])
        .await
        .expect("store");
    let pending = inbox.pending("u", None, 100, 2_000).await.expect("pending");
    assert_eq!(ids(&pending), ["a", "b", "c"]);
    assert_eq!(
        pending.iter().map(|p| p.position).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    let first = &pending[0].notification;
    assert_eq!(
        first.payload.get(),
        r#"{"n": 1.50, "s": "é"}"#,
        "the payload's text is kept exactly"
    );
    assert_eq!(
        (first.kind.as_deref(), first.published_at_ms),
        (Some("test"), 1_000)
    );

    assert_eq!(
        ids(&inbox
            .pending("u", Some(10), 100, 2_000)
            .await
            .expect("after")),
        ["b", "c"]
    );
    assert_eq!(
        ids(&inbox.pending("u", None, 2, 2_000).await.expect("limit")),
        ["a", "b"]
    );
}

on_both!(a_replayed_notification_is_stored_once);

async fn a_replayed_notification_is_stored_once(inbox: &dyn Inbox) {
    let batch = [
        positioned("u", 1, "a", "1", None),
        positioned("u", 2, "b", "2", None),
    ];
    inbox.store(&batch).await.expect("store");
    inbox.store(&batch).await.expect("store the replay");
    assert_eq!(
        ids(&inbox.pending("u", None, 100, 0).await.expect("pending")),
        ["a", "b"]
    );
}

on_both!(acknowledged_and_expired_notifications_leave);

async fn acknowledged_and_expired_notifications_leave(inbox: &dyn Inbox) {
    inbox
        .store(&[
            positioned("u", 1, "a", "1", None),
            positioned("u", 2, "b", "2", Some(5_000)),
            positioned("u", 3, "c", "3", None),
            positioned("v", 1, "a", "1", None),
        ])
        .await
        .expect("store");

    let removed = inbox
        .acknowledge("u", &["a".into(), "never-sent".into()])
        .await
        .expect("acknowledge");
    assert_eq!(removed, ["a"], "only what was stored is reported removed");
    assert_eq!(
        ids(&inbox.pending("v", None, 100, 0).await.expect("v")),
        ["a"],
        "another recipient's row stays"
    );

    assert_eq!(
        ids(&inbox
            .pending("u", None, 100, 4_999)
            .await
            .expect("before expiry")),
        ["b", "c"]
    );
    assert_eq!(
        ids(&inbox
            .pending("u", None, 100, 5_000)
            .await
            .expect("at expiry")),
        ["c"]
    );
    let purged = inbox
        .purge(5_000, Duration::from_secs(3600))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
}

/// Adding a second shard to one, each step of docs/scaling.md's procedure:
/// stored before, during (first as before, then on the new shard) and after,
/// acknowledged meanwhile, moved; every recipient's rows come back complete and in order
/// at each step, and end on the shard its hash names.
#[tokio::test]
async fn adding_a_shard_moves_rows_without_losing_or_reordering_any() {
    let (shards, dbs) = shards(2).await;
    let recipients: Vec<String> = (0..40).map(|i| format!("shard-user-{i}")).collect();
    let moving = recipients.iter().filter(|r| shard_of(r, 2) == 1).count();
    assert!(moving > 5, "enough recipients move: {moving}");
    let store = async |inbox: &ShardedInbox, positions: std::ops::Range<u64>| {
        let batch: Vec<Positioned> = recipients
            .iter()
            .flat_map(|r| {
                positions
                    .clone()
                    .map(move |p| positioned(r, p, &format!("{r}-{p}"), "{}", None))
            })
            .collect();
        inbox.store(&batch).await.expect("stored");
    };
    let positions_of = async |inbox: &dyn Inbox, recipient: &str| -> Vec<u64> {
        let rows = inbox.pending(recipient, None, 1000, 0).await.expect("read");
        rows.iter().map(|p| p.position).collect()
    };

    // One shard.
    let one = ShardedInbox::new(
        vec![shards[0].clone()],
        Layout::new(1, None, false).unwrap(),
    );
    store(&one, 1..4).await;

    // The second one being added, new rows stored as before: reads merge
    // both places (nothing is on the new one yet).
    let as_before = Layout::new(2, Some(1), true).unwrap();
    let storing_as_before = ShardedInbox::new(shards.clone(), as_before);
    store(&storing_as_before, 4..6).await;
    for r in &recipients {
        assert_eq!(
            positions_of(&storing_as_before, r).await,
            [1, 2, 3, 4, 5],
            "{r}"
        );
        assert!(
            positions_of(&shards[1], r).await.is_empty(),
            "{r}: nothing on the new one"
        );
    }

    // New rows on their new shard: reads merge both places; an
    // acknowledgement removes from both.
    let adding = ShardedInbox::new(shards.clone(), Layout::new(2, Some(1), false).unwrap());
    store(&adding, 6..9).await;
    for r in &recipients {
        let acked = adding
            .acknowledge(r, &[format!("{r}-2"), format!("{r}-7")])
            .await;
        assert_eq!(acked.expect("acknowledged").len(), 2, "{r}");
        assert_eq!(positions_of(&adding, r).await, [1, 3, 4, 5, 6, 8], "{r}");
    }
    let after: Vec<u64> = adding
        .pending(&recipients[0], Some(4), 2, 0)
        .await
        .expect("read")
        .iter()
        .map(|p| p.position)
        .collect();
    assert_eq!(after, [5, 6], "after a position, merged, limited");

    // The move, twice: the second finds nothing left to move.
    let moved = adding.move_rows().await.expect("moved");
    assert_eq!(
        moved,
        Moved {
            recipients: moving as u64,
            rows: 4 * moving as u64
        }
    );
    assert_eq!(adding.move_rows().await.expect("moved"), Moved::default());

    // Settled: every row where the two-shard layout says, none elsewhere.
    let two = ShardedInbox::new(shards.clone(), Layout::new(2, None, false).unwrap());
    store(&two, 9..10).await;
    for r in &recipients {
        assert_eq!(positions_of(&two, r).await, [1, 3, 4, 5, 6, 8, 9], "{r}");
        let elsewhere = &shards[1 - shard_of(r, 2)];
        assert!(
            positions_of(elsewhere, r).await.is_empty(),
            "{r} left nothing behind"
        );
    }
    for db in dbs {
        db.drop_database().await;
    }
}
