//! Live delivery: a connected client receives what is published at once, in
//! order, after what its inbox held; what it does not acknowledge is stored.

use std::time::Duration;

use dataplane::notification::now_ms;
use reqwest::StatusCode;

use crate::{Service, WsClient, on_both};

async fn publish(service: &Service, recipient: &str, ids: &[&str]) {
    let batch: Vec<(&str, String)> = ids.iter().map(|id| (recipient, id.to_string())).collect();
    service.publish_accepted(&batch).await;
}

on_both!(
    scaled,
    a_connected_client_receives_live_in_order_after_its_inbox
);

#[tokio::test]
async fn on_a_redis_cluster_a_connected_client_receives_live_in_order_after_its_inbox() {
    let service = Service::distributed_on_redis_cluster().await;
    a_connected_client_receives_live_in_order_after_its_inbox(service).await;
}

async fn a_connected_client_receives_live_in_order_after_its_inbox(service: Service) {
    publish(&service, "carol", &["stored-1", "stored-2"]).await;
    service.wait_for_inbox("carol", 2).await;

    let mut client = WsClient::connect(&service, "carol").await;
    let mut other_tab = WsClient::connect(&service, "carol").await;
    // Before the first tab acknowledges them: an acknowledged one is not
    // sent again, to any connection.
    assert_eq!(other_tab.ids(2).await, ["stored-1", "stored-2"]);
    publish(&service, "carol", &["live-1", "live-2", "live-3"]).await;
    let expected = ["stored-1", "stored-2", "live-1", "live-2", "live-3"];
    // Acknowledged one by one here; `window` tests the pipelined way.
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let id = client.ids(1).await;
        client.ack(&id).await;
        received.extend(id);
    }
    assert_eq!(received, expected, "the inbox first, then live, in order");
    let live_in_other_tab = other_tab.ids(3).await;
    assert_eq!(
        live_in_other_tab,
        ["live-1", "live-2", "live-3"],
        "every connection receives live ones"
    );

    let held = service
        .inbox
        .pending("carol", None, 100, now_ms())
        .await
        .expect("the inbox");
    assert!(
        held.is_empty(),
        "acknowledged: nothing left in the inbox: {held:?}"
    );
    service.finish().await;
}

on_both!(what_a_connected_client_does_not_acknowledge_is_stored_and_comes_again);

async fn what_a_connected_client_does_not_acknowledge_is_stored_and_comes_again(service: Service) {
    let mut silent = WsClient::connect(&service, "dave").await;
    publish(&service, "dave", &["n1"]).await;
    assert_eq!(silent.ids(1).await, ["n1"], "sent live");
    assert!(
        silent
            .next("notification", Duration::from_secs(1))
            .await
            .is_none(),
        "once on this connection"
    );
    // Not acknowledged: after the attempts it goes to the inbox.
    service.wait_for_inbox("dave", 1).await;
    drop(silent);

    let mut again = WsClient::connect(&service, "dave").await;
    assert_eq!(
        again.ids(1).await,
        ["n1"],
        "the next connection gets it from the inbox"
    );
    again.ack(&["n1".to_string()]).await;
    // At once, or, when the ack settled the director's last forward (sent
    // to the silent connection after storing), by that director.
    testenv::wait_until(
        "its acknowledgement removes it from the inbox",
        Duration::from_secs(10),
        async || {
            let held = service.inbox.pending("dave", None, 100, now_ms()).await;
            held.expect("the inbox").is_empty()
        },
    )
    .await;
    service.finish().await;
}

on_both!(a_waiting_poll_receives_a_live_notification_and_the_next_poll_acknowledges_it);

async fn a_waiting_poll_receives_a_live_notification_and_the_next_poll_acknowledges_it(
    service: Service,
) {
    let url = |query: &str| {
        let token = crate::token("erin");
        format!(
            "http://127.0.0.1:{}/v1/connect/poll?token={token}&{query}",
            service.role("distributor").http
        )
    };
    let waiting = service.http.get(url("wait=20")).send();
    let publish_soon = async {
        // Once the poll is registered, publish.
        tokio::time::sleep(Duration::from_millis(500)).await;
        publish(&service, "erin", &["live-1"]).await;
    };
    let (answer, ()) = tokio::join!(waiting, publish_soon);
    let answer: serde_json::Value = answer
        .expect("the poll answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["notifications"][0]["id"], "live-1", "{answer}");
    let next = answer["next"].as_u64().expect("a cursor");

    let acknowledged = service
        .http
        .get(url(&format!("after={next}&wait=0")))
        .send()
        .await
        .expect("poll");
    assert_eq!(acknowledged.status(), StatusCode::OK);
    service.wait_for_delivered(1).await;
    service.finish().await;
}

on_both!(an_sse_clients_live_notification_acknowledged_over_http_is_delivered);

async fn an_sse_clients_live_notification_acknowledged_over_http_is_delivered(service: Service) {
    let url = format!(
        "http://127.0.0.1:{}/v1/connect/sse?token={}",
        service.role("distributor").http,
        crate::token("grace")
    );
    let mut events = service.http.get(url).send().await.expect("the stream");
    assert_eq!(events.status(), StatusCode::OK);
    // The stream is open (its headers came): the connection is registered.
    publish(&service, "grace", &["sse-live-1"]).await;
    crate::read_stream_until(&mut events, &mut String::new(), "sse-live-1").await;
    service
        .acknowledge("grace", &["sse-live-1".to_string()])
        .await;
    service.wait_for_delivered(1).await;
    drop(events);
    service.finish().await;
}

on_both!(a_poll_cursor_beyond_what_was_sent_acknowledges_nothing);

/// A client cannot acknowledge what was not yet sent to its recipient: a
/// cursor beyond every position there can be is refused, and one beyond
/// what was sent covers nothing published later.
async fn a_poll_cursor_beyond_what_was_sent_acknowledges_nothing(service: Service) {
    let poll = async |query: &str| {
        let url = format!(
            "{}/v1/connect/poll?token={}&{query}",
            service.connect_url(),
            crate::token("quinn")
        );
        let answer = service
            .http
            .get(url)
            .send()
            .await
            .expect("the poll answers");
        let status = answer.status();
        (
            status,
            answer.json::<serde_json::Value>().await.expect("JSON"),
        )
    };
    let (status, refused) = poll("after=9223372036854775808&wait=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_query", "{refused}");
    assert_eq!(refused["error"]["field"], "after", "{refused}");
    let far = 1u64 << 62;
    let (status, answer) = poll(&format!("after={far}&wait=0")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let mut client = WsClient::connect(&service, "quinn").await;
    service.wait_for_connections(1).await;
    publish(&service, "quinn", &["q1"]).await;
    assert_eq!(client.ids(1).await, ["q1"], "live, to the connected client");
    drop(client);

    // Unacknowledged, q1 waits in the inbox, however far the cursor was.
    service.wait_for_inbox("quinn", 1).await;
    let (status, answer) = poll("wait=0").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["notifications"][0]["id"], "q1", "{answer}");
    service.finish().await;
}
