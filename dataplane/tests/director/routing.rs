use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

use crate::{TestDirector, notification};

#[tokio::test]
async fn offline_notifications_reach_the_inbox_in_order_and_the_expired_never() {
    let mut director = TestDirector::start().await;
    let mut batch = Vec::new();
    for i in 0..5 {
        for recipient in ["u0", "u1", "u2"] {
            batch.push(notification(recipient, &format!("{recipient}-{i}"), None));
        }
    }
    batch.push(notification("u0", "u0-expired", Some(1)));
    director.publish(&batch).await;
    let later = [
        notification("u0", "u0-5", None),
        notification("u1", "u1-5", None),
    ];
    director.publish(&later).await;

    assert_eq!(
        director.wait_for_inbox("u0", 6).await,
        ["u0-0", "u0-1", "u0-2", "u0-3", "u0-4", "u0-5"]
    );
    assert_eq!(
        director.wait_for_inbox("u1", 6).await,
        ["u1-0", "u1-1", "u1-2", "u1-3", "u1-4", "u1-5"]
    );
    assert_eq!(
        director.wait_for_inbox("u2", 5).await,
        ["u2-0", "u2-1", "u2-2", "u2-3", "u2-4"]
    );
    director.wait_until_committed().await;
    assert!(
        !director
            .inbox_ids("u0")
            .await
            .contains(&"u0-expired".to_string())
    );

    director.stop().await;
    director.db.drop_database().await;
}

#[tokio::test]
async fn a_record_that_is_not_a_notification_is_skipped_and_committed_past() {
    let mut director = TestDirector::start().await;
    let producer: FutureProducer = testenv::kafka::client_config()
        .create()
        .expect("a producer");
    producer
        .send(
            FutureRecord::to(&director.topic)
                .key("u")
                .payload("not a notification"),
            Duration::from_secs(10),
        )
        .await
        .expect("the bad record is written");
    director.publish(&[notification("u", "after", None)]).await;
    assert_eq!(director.wait_for_inbox("u", 1).await, ["after"]);
    director.wait_until_committed().await;
    director.stop().await;
    director.db.drop_database().await;
}

#[tokio::test]
async fn a_restarted_director_goes_on_from_the_committed_offsets() {
    let mut director = TestDirector::start().await;
    director
        .publish(&[notification("u", "1", None), notification("u", "2", None)])
        .await;
    director.wait_for_inbox("u", 2).await;
    director.stop().await;
    director.wait_until_committed().await;

    director.publish(&[notification("u", "3", None)]).await;
    director.run();
    assert_eq!(director.wait_for_inbox("u", 3).await, ["1", "2", "3"]);
    director.wait_until_committed().await;
    director.stop().await;
    director.db.drop_database().await;
}
