//! With Postgres stopped the director takes no new work and commits nothing
//! past what it could not store; once Postgres is back it goes on by itself.

use std::time::Duration;

use testenv::control::{self, Server};

use crate::{TestDirector, notification};

#[tokio::test]
async fn while_postgres_is_stopped_nothing_is_committed_past_and_it_recovers_by_itself() {
    let mut director = TestDirector::start().await;
    director.publish(&[notification("u", "before", None)]).await;
    director.wait_for_inbox("u", 1).await;
    director.wait_until_committed().await;

    control::stop(Server::Postgres).await;
    let during: Vec<_> = (0..5)
        .map(|i| notification("u", &format!("during-{i}"), None))
        .collect();
    director.publish(&during).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let offsets = director.committed_and_end().await;
    assert!(
        offsets.iter().any(|(committed, end)| committed < end),
        "what could not be stored is not committed: {offsets:?}"
    );

    control::start(Server::Postgres).await;
    let ids = director.wait_for_inbox("u", 6).await;
    assert_eq!(
        ids,
        [
            "before", "during-0", "during-1", "during-2", "during-3", "during-4"
        ]
    );
    director.wait_until_committed().await;
    director.stop().await;
    director.db.drop_database().await;
}
