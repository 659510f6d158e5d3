//! Order and loss under churn: many recipients, whose clients (on the SDK)
//! connect and disconnect at random, across transports, while publishing
//! goes on. Every id that got a 202 arrives, in per-recipient order;
//! duplicates are allowed, gaps and reorderings are not.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use notif_sdk::{NewNotification, Resume, Subscriber, Transport};
use tokio::sync::watch;
use tokio::time::Instant;

use testenv::notifd::Deployment;

use crate::{Service, on_both};

const RECIPIENTS: usize = 12;
const PUBLISHING: Duration = Duration::from_secs(8);
/// How long the clients get, after publishing stops, to receive the rest.
const SETTLING: Duration = Duration::from_secs(60);
const TRANSPORTS: [Transport; 3] = [Transport::WebSocket, Transport::Sse, Transport::LongPoll];

/// Each recipient's accepted ids, once publishing is over.
type Expected = watch::Receiver<Option<HashMap<String, Vec<String>>>>;

on_both!(scaled, under_churn_every_accepted_id_arrives_in_order);

/// Presence on a Redis Cluster: the recipients' keys on its three masters.
#[tokio::test]
async fn on_a_redis_cluster_under_churn_every_accepted_id_arrives_in_order() {
    let service = Service::distributed_on_redis_cluster().await;
    under_churn_every_accepted_id_arrives_in_order(service).await;
}

async fn under_churn_every_accepted_id_arrives_in_order(service: Service) {
    under_churn_while(service, async |_: &mut Deployment| {}).await;
}

/// The scenario, with `meanwhile` done to the deployment while publishing
/// goes on (publishing lasts at least as long).
pub async fn under_churn_while(mut service: Service, meanwhile: impl AsyncFnOnce(&mut Deployment)) {
    let recipients: Vec<String> = (0..RECIPIENTS).map(|i| format!("churn-{i}")).collect();
    let (expected_tx, expected) = watch::channel(None);
    let clients: Vec<_> = recipients
        .iter()
        .enumerate()
        .map(|(i, recipient)| {
            let subscriber = service.subscriber(recipient);
            tokio::spawn(record(subscriber, recipient.clone(), i, expected.clone()))
        })
        .collect();

    let publisher = service.publisher();
    let (accepted, ()) = tokio::join!(
        publish_for(&publisher, &recipients, PUBLISHING),
        meanwhile(&mut service.deployment)
    );
    let total: usize = accepted.values().map(Vec::len).sum();
    assert!(
        total > 100,
        "enough was published to mean something: {total}"
    );
    expected_tx.send_replace(Some(accepted.clone()));

    let mut duplicates = 0;
    for (recipient, client) in recipients.iter().zip(clients) {
        let received = client.await.expect("the client task");
        let mut seen = HashSet::new();
        let firsts: Vec<&String> = received.iter().filter(|id| seen.insert(*id)).collect();
        duplicates += received.len() - firsts.len();
        let wanted: Vec<&String> = accepted[recipient].iter().collect();
        let missing: Vec<&&String> = wanted.iter().filter(|id| !seen.contains(**id)).collect();
        if !missing.is_empty() {
            let held = service
                .inbox
                .pending(recipient, None, 1000, dataplane::notification::now_ms())
                .await;
            let held: Vec<(u64, String)> = held
                .expect("the inbox")
                .into_iter()
                .map(|p| (p.position, p.notification.id))
                .collect();
            panic!(
                "{recipient}: {} of {} arrived within {SETTLING:?} after publishing; missing {missing:?}; held in the inbox: {held:?}; received: {received:?}",
                firsts.len(),
                wanted.len()
            );
        }
        assert_eq!(
            firsts, wanted,
            "{recipient}: every accepted id, in order (duplicates aside)"
        );
    }
    println!(
        "{total} notifications to {RECIPIENTS} recipients under churn; {duplicates} duplicates"
    );
    service.finish().await;
}

/// Publishes small batches to random recipients for `period`; returns each
/// recipient's accepted ids, in order.
async fn publish_for(
    publisher: &notif_sdk::Publisher,
    recipients: &[String],
    period: Duration,
) -> HashMap<String, Vec<String>> {
    let mut accepted: HashMap<String, Vec<String>> =
        recipients.iter().map(|r| (r.clone(), Vec::new())).collect();
    let deadline = Instant::now() + period;
    let mut sequence = 0;
    while Instant::now() < deadline {
        let batch: Vec<NewNotification> = (0..3)
            .map(|_| {
                sequence += 1;
                let recipient = &recipients[fastrand::usize(..recipients.len())];
                let id = format!("{recipient}-{sequence}");
                NewNotification::new(recipient, serde_json::json!({"seq": sequence})).with_id(id)
            })
            .collect();
        // Anything not answered 202 was not accepted, and is not expected.
        if publisher.publish(&batch).await.is_ok() {
            for NewNotification { recipient, id, .. } in batch {
                let ids = accepted.get_mut(&recipient).expect("known");
                ids.push(id.expect("every id is set above"));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    accepted
}

/// One recipient's client: connects over the transports in turn, stays a
/// random while, disconnects, and comes back resuming where it was; once
/// publishing is over, stays until it has everything expected. Returns
/// every id received, duplicates included.
async fn record(
    subscriber: Subscriber,
    recipient: String,
    first_transport: usize,
    mut expected: Expected,
) -> Vec<String> {
    let mut received = Vec::new();
    let mut distinct = HashSet::new();
    let mut resume = Resume::default();
    let mut round = first_transport;
    // Churn while publishing goes on.
    while expected.borrow().is_none() {
        let transport = TRANSPORTS[round % TRANSPORTS.len()];
        round += 1;
        let mut subscription = subscriber
            .clone()
            .transport(transport)
            .resume(resume)
            .subscribe();
        let stay = tokio::time::sleep(Duration::from_millis(fastrand::u64(100..1500)));
        tokio::pin!(stay);
        loop {
            tokio::select! {
                next = subscription.next() => {
                    let notification = next.expect("the subscription goes on");
                    subscription.ack(&notification.id);
                    distinct.insert(notification.id.clone());
                    received.push(notification.id);
                }
                () = &mut stay => break,
                _ = expected.changed() => break,
            }
        }
        resume = subscription.resume_point();
        drop(subscription);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..300))).await;
    }
    // Settle: one last connection until everything expected came.
    let wanted = expected
        .borrow()
        .as_ref()
        .map_or(0, |e| e[&recipient].len());
    let mut subscription = subscriber
        .transport(Transport::WebSocket)
        .resume(resume)
        .subscribe();
    let deadline = Instant::now() + SETTLING;
    while distinct.len() < wanted {
        // What is missing after the deadline, the caller reports.
        let Ok(next) = tokio::time::timeout_at(deadline, subscription.next()).await else {
            break;
        };
        let next = next.expect("the subscription goes on");
        subscription.ack(&next.id);
        distinct.insert(next.id.clone());
        received.push(next.id);
    }
    received
}
