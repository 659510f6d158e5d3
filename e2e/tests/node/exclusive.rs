//! Tests with pods on the node: one at a time, as the node's cores are the
//! machine's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notif_sdk::{NewNotification, Publisher, Subscriber, Subscription, Transport};
use serde_json::json;
use testenv::docker::NOTIFD_IMAGE;
use tokio::task::JoinHandle;

use crate::{API_KEY, POD_TIMEOUT, Release, adapter};

mod pulumi;

const TRANSPORTS: [Transport; 3] = [Transport::WebSocket, Transport::Sse, Transport::LongPoll];

/// Publishes `count` notifications to each recipient, round by round;
/// returns each recipient's accepted ids in order.
async fn publish(publisher: &Publisher, recipients: &[String], count: usize) -> Vec<Vec<String>> {
    let mut accepted = vec![Vec::new(); recipients.len()];
    for round in 0..count {
        let batch: Vec<NewNotification> = recipients
            .iter()
            .map(|r| NewNotification::new(r, json!({"round": round})))
            .collect();
        let ids = publisher
            .publish(&batch)
            .await
            .expect("the publish is accepted");
        for (list, id) in accepted.iter_mut().zip(ids) {
            list.push(id);
        }
    }
    accepted
}

/// A subscription over `transport` that has connected.
async fn connected(connect_url: &str, token: String, transport: Transport) -> Subscription {
    let mut subscription = Subscriber::new(connect_url, token)
        .transport(transport)
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .subscribe();
    tokio::time::timeout(POD_TIMEOUT, subscription.connected())
        .await
        .expect("connected in time")
        .expect("connected");
    subscription
}

/// Receives (and acknowledges) `expected.len()` notifications and asserts
/// they are `expected`, in order.
async fn receive_in_order(subscription: &mut Subscription, recipient: &str, expected: &[String]) {
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let next = tokio::time::timeout(POD_TIMEOUT, subscription.next()).await;
        let notification = next
            .unwrap_or_else(|_| {
                panic!("{recipient}: got {got:?} of {expected:?} before the timeout")
            })
            .unwrap_or_else(|e| panic!("{recipient}: the subscription ended: {e}"));
        subscription.ack(&notification.id);
        got.push(notification.id);
    }
    assert_eq!(got, expected, "{recipient} receives everything, in order");
}

#[tokio::test]
async fn helm_install_runs_the_service_in_pods_that_deliver_on_every_transport_and_through_a_deleted_distributor()
 {
    let release = Release::install("node-flow").await;
    let cluster = release.apply_minimal();
    for component in ["receiver", "director", "distributor"] {
        let pods = release.pods(&cluster, component);
        assert_eq!(pods.len(), 1, "one {component} pod: {pods:?}");
        let image = release.kubectl(&[
            "get",
            "pod",
            &pods[0],
            "--output",
            "jsonpath={.spec.containers[0].image}",
        ]);
        assert_eq!(image, NOTIFD_IMAGE, "the {component} runs the notifd image");
    }
    let connect = release.kubectl(&[
        "get",
        "notificationcluster",
        &cluster,
        "--output",
        "jsonpath={.status.endpoints.connect}",
    ]);
    assert_eq!(
        connect,
        format!(
            "http://{cluster}-distributor.{}.svc:8080",
            release.namespace
        )
    );

    let receiver = release.port_forward(&format!("{cluster}-receiver"), 8080);
    let publisher = Publisher::new(&receiver.url, API_KEY);
    let connect_url = release.connect_url(&cluster);
    let recipients: Vec<String> = TRANSPORTS
        .iter()
        .map(|t| testenv::unique_name(&format!("node-{t:?}").to_lowercase()))
        .collect();
    let mut subscriptions: Vec<Subscription> = TRANSPORTS
        .iter()
        .zip(&recipients)
        .map(|(transport, recipient)| {
            Subscriber::new(&connect_url, release.token(&cluster, recipient))
                .transport(*transport)
                .backoff(Duration::from_millis(100), Duration::from_secs(1))
                .subscribe()
        })
        .collect();
    for subscription in &mut subscriptions {
        tokio::time::timeout(POD_TIMEOUT, subscription.connected())
            .await
            .expect("connected through the NodePort in time")
            .expect("connected");
    }
    let accepted = publish(&publisher, &recipients, 10).await;
    for ((subscription, recipient), expected) in
        subscriptions.iter_mut().zip(&recipients).zip(&accepted)
    {
        receive_in_order(subscription, recipient, expected).await;
    }

    // The distributor's pod goes while its clients are connected; what is
    // published meanwhile, and once it is gone, reaches them through the
    // pod that replaces it: the old one no longer exists to deliver it.
    let distributor = release.pods(&cluster, "distributor").remove(0);
    release.kubectl(&["delete", "pod", &distributor, "--wait=false"]);
    let mut accepted = publish(&publisher, &recipients, 10).await;
    let timeout = format!("--timeout={}s", POD_TIMEOUT.as_secs());
    release.kubectl(&[
        "wait",
        "--for=delete",
        &format!("pod/{distributor}"),
        &timeout,
    ]);
    let after = publish(&publisher, &recipients, 10).await;
    for (list, more) in accepted.iter_mut().zip(after) {
        list.extend(more);
    }
    for ((subscription, recipient), expected) in
        subscriptions.iter_mut().zip(&recipients).zip(&accepted)
    {
        receive_in_order(subscription, recipient, expected).await;
    }

    drop(subscriptions);
    drop(receiver);
    release.finish().await;
}

/// What each recipient's client received, in order.
type Received = Arc<Mutex<Vec<String>>>;

/// A client that acknowledges and writes down what it receives.
fn record(mut subscription: Subscription) -> (Received, JoinHandle<()>) {
    let received = Received::default();
    let log = received.clone();
    let task = tokio::spawn(async move {
        while let Ok(notification) = subscription.next().await {
            subscription.ack(&notification.id);
            log.lock().expect("the log").push(notification.id);
        }
    });
    (received, task)
}

/// Publishes a round to `recipients` every 100 ms until `stop`; returns each
/// recipient's accepted ids in order, and how many rounds were refused.
async fn publish_until(
    publisher: Publisher,
    recipients: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (Vec<Vec<String>>, usize) {
    let mut accepted = vec![Vec::new(); recipients.len()];
    let mut refused = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        round += 1;
        let batch: Vec<NewNotification> = recipients
            .iter()
            .map(|r| NewNotification::new(r, json!({"round": round})))
            .collect();
        match publisher.publish(&batch).await {
            Ok(ids) => accepted
                .iter_mut()
                .zip(ids)
                .for_each(|(list, id)| list.push(id)),
            Err(_) => refused += 1,
        }
    }
    (accepted, refused)
}

/// Whether `received` holds every id of `accepted`, in the same order.
fn all_in_order(accepted: &[String], received: &[String]) -> bool {
    let wanted: HashSet<&String> = accepted.iter().collect();
    let got: Vec<&String> = received.iter().filter(|id| wanted.contains(id)).collect();
    got.len() == accepted.len() && got.iter().zip(accepted).all(|(a, b)| *a == b)
}

#[tokio::test]
async fn rollouts_under_traffic_lose_nothing_and_a_changed_setting_reaches_the_new_pods() {
    let release = Release::install("node-rollout").await;
    let cluster = release.apply_minimal();
    let connect_url = release.connect_url(&cluster);
    let recipients: Vec<String> = TRANSPORTS
        .iter()
        .map(|t| testenv::unique_name(&format!("roll-{t:?}").to_lowercase()))
        .collect();
    let mut received = Vec::new();
    let mut clients = Vec::new();
    for (transport, recipient) in TRANSPORTS.iter().zip(&recipients) {
        let subscription =
            connected(&connect_url, release.token(&cluster, recipient), *transport).await;
        let (log, task) = record(subscription);
        received.push(log);
        clients.push(task);
    }
    // Backends publish from inside the cluster, through the receivers'
    // Service address, which follows the pods through a rollout.
    let publisher = Publisher::new(
        &release.service_url(&format!("{cluster}-receiver")),
        API_KEY,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn(publish_until(publisher, recipients.clone(), stop.clone()));

    for component in ["receiver", "director", "distributor"] {
        let deployment = format!("deployment/{cluster}-{component}");
        release.kubectl(&["rollout", "restart", &deployment]);
        release.rollout_status(&deployment);
    }
    let window = 24;
    release.kubectl(&[
        "patch",
        "notificationcluster",
        &cluster,
        "--type=merge",
        "--patch",
        &json!({"spec": {"delivery": {"window": window}}}).to_string(),
    ]);
    for component in ["receiver", "director", "distributor"] {
        let pods_with_it = async || {
            let pods = release.pods(&cluster, component);
            !pods.is_empty()
                && pods.iter().all(|pod| {
                    release
                        .try_kubectl(&["exec", pod, "--", "printenv", "NOTIF_DELIVERY_WINDOW"])
                        .is_some_and(|value| value.trim() == window.to_string())
                })
        };
        testenv::wait_until(
            &format!("every {component} pod runs with the new window"),
            POD_TIMEOUT,
            pods_with_it,
        )
        .await;
        release.rollout_status(&format!("deployment/{cluster}-{component}"));
    }

    stop.store(true, Ordering::SeqCst);
    let (accepted, refused) = publishing.await.expect("the publisher");
    let published: usize = accepted.iter().map(Vec::len).sum();
    println!("accepted {published} notifications, {refused} rounds refused");
    assert!(published > 0, "publishes were accepted");
    let delivered = async || {
        accepted
            .iter()
            .zip(&received)
            .all(|(accepted, log)| all_in_order(accepted, &log.lock().expect("the log")))
    };
    testenv::wait_until(
        "every accepted notification arrives, in order",
        POD_TIMEOUT,
        delivered,
    )
    .await;
    clients.iter().for_each(JoinHandle::abort);
    release.finish().await;
}

#[tokio::test]
async fn deleting_the_operator_leaders_pod_hands_the_lease_to_another_replica() {
    let release = Release::install("node-leader").await;
    let holder = async || release.lease_holder().filter(|h| !h.is_empty());
    let mut leader = None;
    testenv::wait_until("one operator replica leads", POD_TIMEOUT, async || {
        leader = holder().await;
        leader.is_some()
    })
    .await;
    let leader = leader.expect("a leader");
    release.kubectl(&["delete", "pod", &leader, "--wait=false"]);
    testenv::wait_until("another replica takes the lease", POD_TIMEOUT, async || {
        holder().await.is_some_and(|h| h != leader)
    })
    .await;
    // The new leader reconciles: a cluster applied now becomes Ready.
    release.apply_minimal();
    release.finish().await;
}

/// The custom metrics the operator's autoscalers ask for, from Prometheus
/// scraping the pods on the node, through the queries prometheus-adapter
/// makes of the rules in config/prometheus-adapter/values.yaml: each names
/// a series the pods export with the labels the rules expect, and gives each
/// pod the value it should.
#[tokio::test]
async fn prometheus_scraping_the_pods_gives_each_pod_its_autoscaling_metric_by_the_adapters_rules()
{
    const CONNECTIONS: usize = 3;
    let release = Release::install("node-metrics").await;
    let cluster = release.apply_minimal();
    release.apply_manifest(include_str!("prometheus.yaml"));
    release.rollout_status("deployment/prometheus");
    let prometheus = release.port_forward("prometheus", 9090);

    let connect_url = release.connect_url(&cluster);
    let mut subscriptions = Vec::new();
    for i in 0..CONNECTIONS {
        let recipient = testenv::unique_name(&format!("metrics-{i}"));
        let mut subscription = Subscriber::new(&connect_url, release.token(&cluster, &recipient))
            .transport(Transport::Sse)
            .subscribe();
        subscription.connected().await.expect("connected");
        subscriptions.push(subscription);
    }
    let publisher = Publisher::new(
        &release.service_url(&format!("{cluster}-receiver")),
        API_KEY,
    );
    // Publishing goes on while the rules are checked: a rate needs the
    // counter to rise between two of Prometheus's scrapes.
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn(publish_until(
        publisher,
        vec![testenv::unique_name("metrics-someone")],
        stop.clone(),
    ));

    let rules = adapter::rules();
    let mut metrics: Vec<&str> = rules.iter().map(|r| r.metric.as_str()).collect();
    metrics.sort();
    assert_eq!(
        metrics,
        [
            "notif_consumer_lag",
            "notif_distributor_connections",
            "notif_publish_requests_per_second"
        ],
        "a rule for each metric the autoscalers ask for"
    );
    for rule in rules {
        let (component, expected): (&str, fn(f64) -> bool) = match rule.metric.as_str() {
            "notif_distributor_connections" => ("distributor", |v| v == CONNECTIONS as f64),
            "notif_consumer_lag" => ("director", |v| v >= 0.0),
            "notif_publish_requests_per_second" => ("receiver", |v| v > 0.0),
            other => panic!("a rule for a metric no autoscaler asks for: {other}"),
        };
        let pods = release.pods(&cluster, component);
        let query = rule.query(&release.namespace, &pods);
        let mut last = Default::default();
        let answered = async || {
            last = adapter::by_pod(&prometheus.url, &query).await;
            pods.iter()
                .all(|pod| last.get(pod).is_some_and(|v| expected(*v)))
        };
        testenv::wait_until(
            &format!("{} for {pods:?} by {query}", rule.metric),
            Duration::from_secs(60),
            answered,
        )
        .await;
        println!("{}: {last:?}", rule.metric);
    }
    stop.store(true, Ordering::SeqCst);
    publishing.await.expect("the publisher");
    drop(subscriptions);
    drop(prometheus);
    release.finish().await;
}
