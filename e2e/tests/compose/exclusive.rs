//! Runs alone (`exclusive::`): the deployment's nine containers load the
//! machine more than tests beside it should bear.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use notif_sdk::{NewNotification, Publisher, Subscriber, Transport};
use testenv::docker::{Compose, docker};
use tokio::sync::watch;

/// The development API key whose hash docker-compose.yml gives the receiver.
const API_KEY: &str = "sk_dev_compose_publisher";
const RECIPIENTS: [(&str, Transport); 3] = [
    ("alice", Transport::WebSocket),
    ("bob", Transport::Sse),
    ("carol", Transport::LongPoll),
];
const ROLES: [&str; 4] = ["receiver", "director-1", "director-2", "distributor"];
/// How long the clients get, after publishing stops, to receive the rest.
const SETTLING: Duration = Duration::from_secs(90);

#[tokio::test]
async fn compose_delivers_in_order_while_each_role_is_killed_and_started_again() {
    let compose = Compose::up();
    let receiver = format!("http://127.0.0.1:{}", compose.receiver_port);
    let distributor = format!("http://127.0.0.1:{}", compose.distributor_port);
    let publisher = Publisher::new(&receiver, API_KEY);
    let first = NewNotification::new("alice", serde_json::json!({"n": 0})).with_id("alice-0");
    let accepts = async || {
        publisher
            .publish(std::slice::from_ref(&first))
            .await
            .is_ok()
    };
    testenv::wait_until(
        "the receiver takes a publish",
        Duration::from_secs(120),
        accepts,
    )
    .await;

    let (expected_tx, expected) = watch::channel(None);
    let clients: Vec<_> = RECIPIENTS
        .iter()
        .map(|(recipient, transport)| {
            let token = compose.exec(
                "distributor",
                &["notifd", "token", "--recipient", recipient],
            );
            let subscriber = Subscriber::new(&distributor, token).transport(*transport);
            tokio::spawn(record(subscriber, recipient.to_string(), expected.clone()))
        })
        .collect();

    let (stop, stopped) = watch::channel(false);
    let publishing = tokio::spawn(publish_until(publisher.clone(), stopped));
    for role in ROLES {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let container = compose.container(role);
        docker(&["kill", &container]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        docker(&["start", &container]);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.send_replace(true);
    let mut accepted = publishing.await.expect("the publishing task");
    accepted
        .entry("alice".into())
        .or_default()
        .insert(0, "alice-0".into());
    expected_tx.send_replace(Some(accepted.clone()));

    let mut delivered = 0;
    for ((recipient, _), client) in RECIPIENTS.iter().zip(clients) {
        let received = client.await.expect("the client task");
        let mut seen = HashSet::new();
        let firsts: Vec<&String> = received.iter().filter(|id| seen.insert(*id)).collect();
        let wanted: Vec<&String> = accepted[*recipient].iter().collect();
        assert_eq!(firsts, wanted, "{recipient}: every accepted id, in order");
        delivered += firsts.len();
    }
    let total: usize = accepted.values().map(Vec::len).sum();
    assert!(
        total > 100,
        "enough was published to mean something: {total}"
    );
    println!("compose: {total} accepted, {delivered} delivered, 0 lost, 0 reordered");

    // The observability profile's Prometheus scrapes every role, the
    // restarted ones included.
    let targets = format!(
        "http://127.0.0.1:{}/api/v1/targets",
        compose.prometheus_port
    );
    let all_up = async || {
        let Ok(response) = reqwest::get(&targets).await else {
            return false;
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let active = body["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        active.len() == 4 && active.iter().all(|t| t["health"] == "up")
    };
    testenv::wait_until(
        "Prometheus scrapes the four roles",
        Duration::from_secs(60),
        all_up,
    )
    .await;

    compose.down();
    assert_eq!(compose.leftovers(), "", "down removes what up made");
}

/// Each recipient's accepted ids, once publishing is over.
type Expected = watch::Receiver<Option<HashMap<String, Vec<String>>>>;

/// Publishes to the recipients in turn, one at a time, each id until it is
/// accepted (a 503 or a refused connection while a role is down is retried:
/// ids are idempotency keys), until `stopped`; returns each recipient's
/// accepted ids, in order.
async fn publish_until(
    publisher: Publisher,
    stopped: watch::Receiver<bool>,
) -> HashMap<String, Vec<String>> {
    let mut accepted: HashMap<String, Vec<String>> = HashMap::new();
    let mut sequence = 0;
    while !*stopped.borrow() {
        sequence += 1;
        let recipient = RECIPIENTS[sequence % RECIPIENTS.len()].0;
        let id = format!("{recipient}-{sequence}");
        let notification =
            NewNotification::new(recipient, serde_json::json!({"n": sequence})).with_id(&id);
        let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
        while let Err(e) = publisher.publish(std::slice::from_ref(&notification)).await {
            assert!(
                tokio::time::Instant::now() < give_up,
                "{id} not accepted within 120 s: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        accepted.entry(recipient.to_string()).or_default().push(id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    accepted
}

/// One recipient's client, connected (and reconnecting) through the
/// distributor from the start; acknowledges what it takes, and once the
/// expected ids are known, stays until it has them all, or `SETTLING`
/// passes. Returns every id received, duplicates included.
async fn record(subscriber: Subscriber, recipient: String, mut expected: Expected) -> Vec<String> {
    let mut subscription = subscriber.subscribe();
    let mut received = Vec::new();
    let mut distinct = HashSet::new();
    let mut deadline = None;
    loop {
        let complete = expected.borrow().as_ref().is_some_and(|all| {
            all.get(&recipient)
                .is_none_or(|wanted| wanted.iter().all(|id| distinct.contains(id)))
        });
        if complete {
            return received;
        }
        if expected.borrow().is_some() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + SETTLING);
        }
        let until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            next = subscription.next() => {
                let notification = next.unwrap_or_else(|e| panic!("{recipient}: the subscription ended: {e}"));
                subscription.ack(&notification.id);
                distinct.insert(notification.id.clone());
                received.push(notification.id);
            }
            _ = expected.changed(), if deadline.is_none() => {}
            _ = tokio::time::sleep_until(until) => return received,
        }
    }
}
