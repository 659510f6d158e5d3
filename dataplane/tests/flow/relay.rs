//! Two distributors, and acknowledgements that reach the other one than the
//! connection, as a load balancer sends them: they are passed on, so that
//! live notifications are done at once, not tried again and stored.

use std::time::Duration;

use reqwest::StatusCode;
use testenv::notifd::Process;

use crate::{Service, token};

/// The service with a second distributor beside its first.
async fn with_second_distributor() -> (Service, Process) {
    let service = Service::distributed().await;
    let second = service.second_distributor().await;
    (service, second)
}

async fn publish_one(service: &Service, recipient: &str, id: &str) {
    let status = service.publish(&[(recipient, id.to_string())]).await;
    assert_eq!(status.expect("publish"), StatusCode::ACCEPTED);
}

/// What the director counts, by metric name.
#[tokio::test]
async fn an_sse_acknowledgement_sent_to_another_distributor_is_passed_on() {
    let (service, second) = with_second_distributor().await;
    let stream_url = format!(
        "{}/v1/connect/sse?token={}",
        service.connect_url(),
        token("hana")
    );
    let mut events = service.http.get(stream_url).send().await.expect("a stream");
    assert_eq!(events.status(), StatusCode::OK);
    let ack_url = format!("http://127.0.0.1:{}/v1/ack", second.http);
    let mut text = String::new();
    for n in 1..=5 {
        let id = format!("relayed-{n}");
        publish_one(&service, "hana", &id).await;
        crate::read_stream_until(&mut events, &mut text, &format!("\"id\":\"{id}\"")).await;
        let answer = service
            .http
            .post(&ack_url)
            .bearer_auth(token("hana"))
            .json(&serde_json::json!({ "ids": [id] }))
            .send()
            .await
            .expect("ack");
        assert_eq!(answer.status(), StatusCode::OK, "{id} is known");
    }
    service.wait_for_delivered(5).await;
    assert_eq!(
        service
            .count("director", "notif_delivery_retries_total")
            .await,
        0.0,
        "each was acknowledged on its first forward"
    );
    assert_eq!(
        service.count("director", "notif_inbox_writes_total").await,
        0.0
    );
    drop(events);
    service.finish().await;
}

#[tokio::test]
async fn polls_that_alternate_between_distributors_acknowledge_by_their_cursor() {
    let (service, second) = with_second_distributor().await;
    let distributors = [service.role("distributor"), &second];
    let mut after: Option<u64> = None;
    let mut received = Vec::new();
    for n in 0..4 {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let distributor = distributors[n % 2];
        let url = format!(
            "http://127.0.0.1:{}/v1/connect/poll?token={}&wait=20{cursor}",
            distributor.http,
            token("ivan")
        );
        let poll = service.http.get(url).send();
        let publish_soon = async {
            let metrics = format!("http://127.0.0.1:{}/metrics", distributor.admin);
            testenv::wait_until("the poll waits", Duration::from_secs(10), async || {
                let text = service.http.get(&metrics).send().await.expect("metrics");
                let text = text.text().await.expect("text");
                testenv::metric_sum(&text, "notif_distributor_connections") == 1.0
            })
            .await;
            publish_one(&service, "ivan", &format!("polled-{n}")).await;
        };
        let (answer, ()) = tokio::join!(poll, publish_soon);
        let answer: serde_json::Value = answer.expect("a poll").json().await.expect("JSON");
        for notification in answer["notifications"].as_array().expect("a list") {
            received.push(notification["id"].as_str().expect("an id").to_string());
        }
        after = answer["next"].as_u64().or(after);
    }
    // The last cursor, on the other distributor; it waits there while the
    // director, no longer waiting on the first, forwards the last one again.
    let url = format!(
        "http://127.0.0.1:{}/v1/connect/poll?token={}&wait=8&after={}",
        distributors[0].http,
        token("ivan"),
        after.expect("a cursor")
    );
    let last = service.http.get(url).send().await.expect("a poll");
    assert_eq!(last.status(), StatusCode::OK);
    assert_eq!(received, ["polled-0", "polled-1", "polled-2", "polled-3"]);
    service.wait_for_delivered(4).await;
    assert_eq!(
        service.count("director", "notif_inbox_writes_total").await,
        0.0,
        "none timed out and was stored"
    );
    service.finish().await;
}

/// Two tabs of one recipient on the two distributors, and one
/// acknowledgement, on the first: the director tells the second, so that
/// its tab is not closed as silent for a notification that was delivered.
#[tokio::test]
async fn one_tabs_acknowledgement_settles_the_other_distributors_wait() {
    let (service, second) = with_second_distributor().await;
    let stream = |http: u16| {
        let url = format!(
            "http://127.0.0.1:{http}/v1/connect/sse?token={}",
            token("juno")
        );
        service.http.get(url).send()
    };
    let mut here = stream(service.role("distributor").http)
        .await
        .expect("a stream");
    let mut there = stream(second.http).await.expect("a stream");
    let (mut here_text, mut there_text) = (String::new(), String::new());
    for n in 1..=2 {
        let id = format!("both-{n}");
        publish_one(&service, "juno", &id).await;
        let needle = format!("\"id\":\"{id}\"");
        crate::read_stream_until(&mut here, &mut here_text, &needle).await;
        crate::read_stream_until(&mut there, &mut there_text, &needle).await;
        service.acknowledge("juno", &[id]).await;
        // Past the acknowledgement timeout (2 s): a wait left on the second
        // distributor would close its tab now.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    assert!(
        !there_text.contains("ack_timeout"),
        "the second tab was closed as silent: {there_text}"
    );
    let forwards = service.metrics("director").await;
    assert_eq!(
        testenv::metric_sum(&forwards, "notif_deliveries_total{outcome=\"timed_out\"}"),
        0.0,
        "{forwards}"
    );
    service.finish().await;
}

#[tokio::test]
async fn the_forward_port_refuses_callers_without_the_secret() {
    let (service, second) = with_second_distributor().await;
    let forward = format!("127.0.0.1:{}", second.forward);
    let relayed = serde_json::json!({"recipient": "hana", "ids": ["x"]});
    for authorization in [None, Some("Bearer not-the-secret")] {
        let mut relay = service
            .http
            .post(format!("http://{forward}/internal/v1/ack"))
            .json(&relayed);
        let mut stream = service
            .http
            .get(format!("http://{forward}/internal/v1/forward"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(value) = authorization {
            relay = relay.header("authorization", value);
            stream = stream.header("authorization", value);
        }
        for (what, request) in [
            ("a relayed acknowledgement", relay),
            ("a forwarding stream", stream),
        ] {
            let answer = request.send().await.expect("an answer");
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{what} with {authorization:?}"
            );
        }
    }
    service.finish().await;
}
