//! The inbox's rules, on each of its databases: the same scenarios on
//! PostgreSQL and on the standalone service's SQLite.

use std::time::Duration;

use dataplane::inbox::{Inbox, Positioned, PostgresInbox, SqliteInbox};
use dataplane::notification::Notification;
use dataplane::standalone::DataDir;
use serde_json::value::RawValue;
use testenv::TestDatabase;

/// An inbox on a database of its own; `finish` removes it.
enum TestInbox {
    Postgres(PostgresInbox, TestDatabase),
    Sqlite(SqliteInbox, DataDir),
}

impl TestInbox {
    async fn postgres() -> TestInbox {
        let db = TestDatabase::create("inbox").await;
        let inbox = PostgresInbox::new(db.pool().await);
        inbox.migrate().await.expect("the migrations apply");
        TestInbox::Postgres(inbox, db)
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
            TestInbox::Sqlite(inbox, _) => inbox,
        }
    }

    async fn finish(self) {
        match self {
            TestInbox::Postgres(_, db) => db.drop_database().await,
            TestInbox::Sqlite(_, data_dir) => {
                let _ = std::fs::remove_dir_all(&data_dir.path);
            }
        }
    }
}

/// Runs the scenario `fn $name(&dyn Inbox)` on each database, as the tests
/// `$name::postgres` and `$name::sqlite`.
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
