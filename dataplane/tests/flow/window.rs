//! The delivery window: live notifications are pipelined, one cumulative
//! acknowledgement settles them, and a connection that acknowledges nothing
//! is closed after the acknowledgement timeout while its notifications wait
//! in the inbox, in order, costing the other recipients nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataplane::notification::now_ms;
use tokio::time::Instant;

use crate::{Service, WINDOW, WsClient, on_both};

/// The service's acknowledgement timeout (`settings`).
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

fn ids_of(frames: &[serde_json::Value]) -> Vec<&str> {
    frames
        .iter()
        .map(|f| f["id"].as_str().expect("an id"))
        .collect()
}

fn position(frame: &serde_json::Value) -> u64 {
    frame["position"].as_u64().expect("a position")
}

on_both!(live_notifications_are_pipelined_and_one_cumulative_ack_settles_them);

async fn live_notifications_are_pipelined_and_one_cumulative_ack_settles_them(service: Service) {
    let mut client = WsClient::connect(&service, "petra").await;
    service.wait_for_connections(1).await;
    let count = WINDOW + 4;
    let batch: Vec<(&str, String)> = (0..count).map(|i| ("petra", format!("p{i}"))).collect();
    service.publish_accepted(&batch).await;
    // A window's worth without a single acknowledgement (stop-and-wait would
    // send the second only after the first's acknowledgement), then no more.
    let window = client.notifications(WINDOW).await;
    let ids = ids_of(&window);
    let wanted: Vec<String> = (0..WINDOW).map(|i| format!("p{i}")).collect();
    assert_eq!(ids, wanted, "in order");
    assert!(
        client
            .next("notification", Duration::from_millis(500))
            .await
            .is_none(),
        "the window is full"
    );
    let through = position(&window[WINDOW - 1]);
    let refused = client.ack_through(through + 1).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("beyond_sent")),
        "{refused}"
    );
    let acked = client.ack_through(through).await;
    assert_eq!(acked["type"], "acked", "{acked}");
    assert_eq!(acked["through"], through);

    let rest = client.notifications(4).await;
    let ids = ids_of(&rest);
    let wanted: Vec<String> = (WINDOW..count).map(|i| format!("p{i}")).collect();
    assert_eq!(ids, wanted, "the acknowledgement freed the window");
    client.ack_through(position(&rest[3])).await;
    service.wait_for_delivered(count).await;
    assert_eq!(
        service.count("director", "notif_inbox_writes_total").await,
        0.0,
        "none waited for an acknowledgement long enough to be stored"
    );

    // A notification published after that acknowledgement is not covered by it.
    service
        .publish_accepted(&[("petra", "after".to_string())])
        .await;
    assert_eq!(client.ids(1).await, ["after"]);
    service.finish().await;
}

on_both!(a_silent_connection_is_closed_and_its_notifications_wait_in_the_inbox_in_order);

async fn a_silent_connection_is_closed_and_its_notifications_wait_in_the_inbox_in_order(
    service: Service,
) {
    let mut silent = WsClient::connect(&service, "quinn").await;
    service.wait_for_connections(1).await;
    let first: Vec<(&str, String)> = (0..5).map(|i| ("quinn", format!("q{i}"))).collect();
    service.publish_accepted(&first).await;
    assert_eq!(silent.ids(5).await.len(), 5);
    let started = Instant::now();
    assert_eq!(
        silent.closed(ACK_TIMEOUT * 3).await,
        Some(4002),
        "closed as silent"
    );
    assert!(
        started.elapsed() < ACK_TIMEOUT * 2,
        "{:?}",
        started.elapsed()
    );
    service.wait_for_inbox("quinn", 5).await;
    let later: Vec<(&str, String)> = (5..8).map(|i| ("quinn", format!("q{i}"))).collect();
    service.publish_accepted(&later).await;
    service.wait_for_inbox("quinn", 8).await;

    let mut back = WsClient::connect(&service, "quinn").await;
    let frames = back.notifications(8).await;
    let ids = ids_of(&frames);
    assert_eq!(ids, ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7"]);
    let acked = back.ack_through(position(&frames[7])).await;
    assert_eq!(acked["type"], "acked", "{acked}");
    service.wait_for_inbox_empty("quinn").await;
    service.finish().await;
}

on_both!(a_tab_opened_while_the_window_never_empties_receives_live);

/// One tab acknowledges each notification only when the next arrives (as a
/// client batching its acknowledgements does), so the recipient's window
/// never empties; a second tab, opened meanwhile, lacks what was in flight
/// when it came and cannot take what follows it. The window empties once
/// for it, and from then on it receives every notification live.
async fn a_tab_opened_while_the_window_never_empties_receives_live(service: Service) {
    let mut first = WsClient::connect(&service, "tara").await;
    service.wait_for_connections(1).await;
    service.publish_accepted(&[("tara", "t0".into())]).await;
    let mut held = first.notifications(1).await.remove(0);
    let mut second = WsClient::connect(&service, "tara").await;
    service.wait_for_connections(2).await;
    for i in 1..=10 {
        service.publish_accepted(&[("tara", format!("t{i}"))]).await;
        let next = match first.next("notification", Duration::from_secs(1)).await {
            Some(next) => next,
            // Held back until the window empties: the held one's
            // acknowledgement empties it.
            None => {
                first.ack_through(position(&held)).await;
                first.notifications(1).await.remove(0)
            }
        };
        assert_eq!(next["id"], format!("t{i}"));
        first.ack_through(position(&held)).await;
        held = next;
    }
    let mut live = Vec::new();
    while let Some(frame) = second.next("notification", Duration::from_secs(3)).await {
        let id = frame["id"].as_str().expect("an id").to_string();
        live.push(id.clone());
        if id == "t10" {
            break;
        }
    }
    assert!(
        live.len() >= 5 && live.last().map(String::as_str) == Some("t10"),
        "the second tab received {live:?} live"
    );
    let numbers: Vec<u32> = live
        .iter()
        .map(|id| id[1..].parse().expect("a number"))
        .collect();
    assert!(numbers.is_sorted(), "in order: {live:?}");
    first.ack_through(position(&held)).await;
    service.finish().await;
}

/// Recipients that never acknowledge, offered more than the director may
/// hold within the acknowledgement timeout, beside recipients that
/// acknowledge everything at once.
const SILENT: usize = 10;
const ACKING: usize = 10;
const MAX_HELD: usize = 200;
const TICK: Duration = Duration::from_millis(50);
/// Each tick: one notification to each silent recipient (200/s), and to
/// half of the acknowledging ones (100/s).
const BASELINE: Duration = Duration::from_secs(2);
const WITH_SILENT: Duration = Duration::from_secs(4);

#[tokio::test]
async fn silent_clients_cost_the_others_nothing_distributed() {
    silent_clients_cost_the_others_nothing(Service::distributed_with(limits()).await).await;
}

#[tokio::test]
async fn silent_clients_cost_the_others_nothing_standalone() {
    silent_clients_cost_the_others_nothing(Service::standalone_with(limits()).await).await;
}

fn limits() -> testenv::notifd::Env {
    vec![("NOTIF_MAX_HELD", MAX_HELD.to_string())]
}

/// What the acknowledging clients received: id, publish-to-receive latency.
type Received = Arc<Mutex<Vec<(String, u64)>>>;

async fn silent_clients_cost_the_others_nothing(service: Service) {
    assert!(
        SILENT as f64 / TICK.as_secs_f64() * ACK_TIMEOUT.as_secs_f64() > MAX_HELD as f64,
        "the silent ones are offered more than the director may hold"
    );
    let mut silent = Vec::new();
    for i in 0..SILENT {
        silent.push(WsClient::connect(&service, &format!("silent-{i}")).await);
    }
    let received = Received::default();
    let mut readers = Vec::new();
    for i in 0..ACKING {
        let client = WsClient::connect(&service, &format!("acking-{i}")).await;
        readers.push(tokio::spawn(read_and_acknowledge(client, received.clone())));
    }
    service.wait_for_connections(SILENT + ACKING).await;
    // Warmed up: the first notifications wait for the director to join its
    // group, which is no part of what is measured.
    let warm_up: Vec<(String, String)> = (0..ACKING)
        .map(|i| (format!("acking-{i}"), format!("warm-{i}")))
        .collect();
    let borrowed: Vec<(&str, String)> = warm_up
        .iter()
        .map(|(r, id)| (r.as_str(), id.clone()))
        .collect();
    service.publish_accepted(&borrowed).await;
    testenv::wait_until("warmed up", Duration::from_secs(30), async || {
        received.lock().expect("lock").len() >= ACKING
    })
    .await;
    received.lock().expect("lock").clear();

    let mut accepted: HashMap<String, Vec<String>> = HashMap::new();
    let mut baseline_ids = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < BASELINE + WITH_SILENT {
        tick.tick().await;
        let with_silent = started.elapsed() >= BASELINE;
        let mut batch: Vec<(String, String)> = (0..ACKING / 2)
            .map(|k| {
                let recipient = format!("acking-{}", (n + k) % ACKING);
                (recipient, format!("a{n}-{k}"))
            })
            .collect();
        if with_silent {
            batch.extend((0..SILENT).map(|i| (format!("silent-{i}"), format!("s{n}-{i}"))));
        } else {
            baseline_ids.extend(batch.iter().map(|(_, id)| id.clone()));
        }
        let borrowed: Vec<(&str, String)> = batch
            .iter()
            .map(|(r, id)| (r.as_str(), id.clone()))
            .collect();
        service.publish_accepted(&borrowed).await;
        for (recipient, id) in batch {
            accepted.entry(recipient).or_default().push(id);
        }
        n += 1;
    }

    let wanted: usize = (0..ACKING)
        .map(|i| accepted[&format!("acking-{i}")].len())
        .sum();
    testenv::wait_until(
        "the acknowledging clients have everything",
        Duration::from_secs(30),
        async || received.lock().expect("lock").len() >= wanted,
    )
    .await;
    for reader in readers {
        reader.abort();
    }
    let received = received.lock().expect("lock").clone();
    for i in 0..ACKING {
        let recipient = format!("acking-{i}");
        let prefix: Vec<&String> = accepted[&recipient].iter().collect();
        let got: Vec<&String> = received
            .iter()
            .map(|(id, _)| id)
            .filter(|id| prefix.contains(id))
            .collect();
        assert_eq!(got, prefix, "{recipient}: everything, in order");
    }
    let (before, during): (Vec<u64>, Vec<u64>) = {
        let mut before = Vec::new();
        let mut during = Vec::new();
        for (id, latency) in &received {
            match baseline_ids.contains(id) {
                true => before.push(*latency),
                false => during.push(*latency),
            }
        }
        (before, during)
    };
    let (p99_before, p99_during) = (p99(before), p99(during));
    println!(
        "acknowledging clients' p99: {p99_before} ms alone, {p99_during} ms beside silent ones"
    );
    // Loosely: a shared machine is noisy, the more so with other suites
    // running beside this one (runs at 380 ms against 74 ms alone, and 535
    // ms against 33 ms, were seen so); `just bench` measures it exactly.
    // What this guards against is the others' delivery stopping behind
    // silent clients, for at least the acknowledgement timeout (2 s here).
    assert!(
        p99_during <= (p99_before * 3).max(p99_before + 1000),
        "the silent clients slowed the others: p99 {p99_before} ms alone, {p99_during} ms beside them"
    );

    // The silent ones were closed; what they were sent waits in the inbox,
    // and comes, in order, when they connect again.
    for mut client in silent {
        assert_eq!(client.closed(ACK_TIMEOUT * 3).await, Some(4002));
    }
    for i in 0..SILENT {
        let recipient = format!("silent-{i}");
        let wanted = &accepted[&recipient];
        service.wait_for_inbox(&recipient, wanted.len()).await;
        let mut back = WsClient::connect(&service, &recipient).await;
        let frames = back.notifications(wanted.len()).await;
        let ids = ids_of(&frames);
        assert_eq!(ids, *wanted, "{recipient}: in order");
        let acked = back.ack_through(position(&frames[frames.len() - 1])).await;
        assert_eq!(acked["type"], "acked", "{acked}");
    }
    service.finish().await;
}

/// Reads notifications and acknowledges each at once, recording its
/// publish-to-receive latency.
async fn read_and_acknowledge(mut client: WsClient, received: Received) {
    loop {
        let frame = client.notifications(1).await.remove(0);
        let latency = now_ms().saturating_sub(frame["published_at_ms"].as_u64().expect("time"));
        let id = frame["id"].as_str().expect("id").to_string();
        received.lock().expect("lock").push((id, latency));
        client.ack_through(position(&frame)).await;
    }
}

fn p99(mut values: Vec<u64>) -> u64 {
    assert!(!values.is_empty(), "latencies were measured");
    values.sort_unstable();
    values[(values.len() * 99 / 100).min(values.len() - 1)]
}
