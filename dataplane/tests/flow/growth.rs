//! Growing the topic's partitions moves recipients to other partitions; each
//! recipient's order and positions hold across the move (docs/ordering.md).
//!
//! The directors are stopped while the first half is published, so that when
//! they start, the old partitions hold a backlog while the second half waits
//! in the new ones. Two directors share the partitions, so the old and the
//! new partitions of a recipient are read by different processes at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dataplane::log::{partition_of, position};
use notif_sdk::{NewNotification, Transport};
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::Service;

const RECIPIENTS: usize = 12;
const ROUNDS: usize = 30;
const PARTITIONS_BEFORE: u32 = 3;
const PARTITIONS_AFTER: u32 = 6;

#[tokio::test]
async fn growing_the_topic_keeps_each_recipients_order_and_positions() {
    let mut service = Service::distributed().await;
    let topic = service
        .role("receiver")
        .env("NOTIF_KAFKA_TOPIC")
        .expect("the deployment's topic")
        .to_string();
    let recipients: Vec<String> = (0..RECIPIENTS).map(|i| format!("grow-{i}")).collect();
    let moved = recipients
        .iter()
        .filter(|r| partition_of(r, PARTITIONS_BEFORE) != partition_of(r, PARTITIONS_AFTER))
        .count();
    assert!(
        moved >= 3,
        "enough recipients move to mean something: {moved}"
    );

    let mut second_director = service.role("director").twin();
    second_director.start().await;
    let connected = Arc::new(Barrier::new(RECIPIENTS + 1));
    let clients: Vec<_> = recipients
        .iter()
        .map(|r| {
            let subscriber = service.subscriber(r).transport(Transport::WebSocket);
            tokio::spawn(record(subscriber, ROUNDS * 2, connected.clone()))
        })
        .collect();
    connected.wait().await;

    assert!(service.role_mut("director").stop(), "a clean stop");
    assert!(second_director.stop(), "a clean stop");
    publish_rounds(&service, &recipients, 0..ROUNDS).await;
    testenv::kafka::grow_topic(&topic, PARTITIONS_AFTER as usize).await;
    // The receiver holds these until its fence is over, then writes them
    // with the new partition count.
    publish_rounds(&service, &recipients, ROUNDS..ROUNDS * 2).await;
    service.role_mut("director").start().await;
    second_director.start().await;

    for (recipient, client) in recipients.iter().zip(clients) {
        let received = client.await.expect("the client task");
        let mut seen = HashSet::new();
        let firsts: Vec<&(String, u64)> =
            received.iter().filter(|(id, _)| seen.insert(id)).collect();
        let ids: Vec<&str> = firsts.iter().map(|(id, _)| id.as_str()).collect();
        let wanted: Vec<String> = (0..ROUNDS * 2)
            .map(|n| format!("{recipient}-{n}"))
            .collect();
        assert_eq!(ids, wanted, "{recipient}: every id, in order");
        let positions: Vec<u64> = firsts.iter().map(|(_, p)| *p).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{recipient}: positions grow: {positions:?}"
        );
        // The first of the second half may be written before the receiver
        // sees the growth; the last is written after.
        assert!(
            positions[ROUNDS * 2 - 1] >= position(PARTITIONS_AFTER, 0),
            "{recipient}: the last was written with the new partition count: {positions:?}"
        );
    }
    service.finish().await;
}

/// Publishes one notification per recipient per round, `<recipient>-<round>`,
/// each round once the one before was accepted.
async fn publish_rounds(service: &Service, recipients: &[String], rounds: std::ops::Range<usize>) {
    let publisher = service.publisher();
    for round in rounds {
        let batch: Vec<NewNotification> = recipients
            .iter()
            .map(|r| NewNotification::new(r, serde_json::json!({})).with_id(format!("{r}-{round}")))
            .collect();
        publisher
            .publish(&batch)
            .await
            .unwrap_or_else(|e| panic!("round {round} accepted: {e}"));
    }
}

/// A client that acknowledges everything and records `(id, position)` until
/// `count` distinct ids came, or a minute passed. It waits at `connected`
/// once connected.
async fn record(
    subscriber: notif_sdk::Subscriber,
    count: usize,
    connected: Arc<Barrier>,
) -> Vec<(String, u64)> {
    let mut subscription = subscriber.subscribe();
    subscription.connected().await.expect("the client connects");
    connected.wait().await;
    let (mut received, mut distinct) = (Vec::new(), HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while distinct.len() < count {
        let Ok(next) = tokio::time::timeout_at(deadline, subscription.next()).await else {
            break;
        };
        let next = next.expect("the subscription goes on");
        subscription.ack(&next.id);
        distinct.insert(next.id.clone());
        received.push((next.id, next.position));
    }
    received
}
