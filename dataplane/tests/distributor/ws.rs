use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{TestDistributor, token};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(d: &TestDistributor, recipient: &str) -> Socket {
    let url = format!(
        "{}/v1/connect/ws?token={}",
        d.url.replace("http://", "ws://"),
        token(recipient)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket handshake")
        .0
}

/// Connects and waits until the connection is in presence.
async fn connect_present(d: &TestDistributor, recipient: &str) -> Socket {
    let socket = connect(d, recipient).await;
    let present = async || d.is_present(recipient).await;
    testenv::wait_until(
        "the connection is in presence",
        Duration::from_secs(5),
        present,
    )
    .await;
    socket
}

/// The next message is a close frame with `code`.
async fn expect_close(socket: &mut Socket, code: u16) {
    match tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a close within 5s")
    {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), code),
        other => panic!("expected a close frame with {code}, saw {other:?}"),
    }
}

async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("a JSON frame");
        }
    }
}

async fn notification_ids(socket: &mut Socket, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let frame = next_frame(socket).await;
        assert_eq!(frame["type"], "notification", "{frame}");
        ids.push(frame["id"].as_str().expect("an id").to_string());
    }
    ids
}

#[tokio::test]
async fn the_inbox_arrives_in_order_and_an_ack_frame_removes_it() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2", "n3"]).await;

    let mut socket = connect(&d, "u").await;
    assert_eq!(notification_ids(&mut socket, 3).await, ["n1", "n2", "n3"]);
    socket
        .send(Message::text(
            json!({"type": "ack", "ids": ["n1", "n3", "never-sent"]}).to_string(),
        ))
        .await
        .expect("send the ack");
    let acked = next_frame(&mut socket).await;
    assert_eq!(acked, json!({"type": "acked", "ids": ["n1", "n3"]}));
    let unknown = next_frame(&mut socket).await;
    assert_eq!(
        (unknown["type"].as_str(), unknown["code"].as_str()),
        (Some("error"), Some("unknown_id")),
        "{unknown}"
    );
    let message = unknown["message"].as_str().unwrap_or_default();
    assert!(message.contains("never-sent"), "names the id: {message}");
    socket
        .send(Message::text(
            json!({"type": "ack", "ids": ["n1"]}).to_string(),
        ))
        .await
        .expect("send the ack again");
    assert_eq!(
        next_frame(&mut socket).await,
        json!({"type": "acked", "ids": ["n1"]}),
        "acknowledging twice is no error"
    );

    socket
        .send(Message::text("{\"type\":\"nonsense\"}"))
        .await
        .expect("send");
    let error = next_frame(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );
    socket.close(None).await.expect("close");

    let mut again = connect(&d, "u").await;
    assert_eq!(
        notification_ids(&mut again, 1).await,
        ["n2"],
        "only the unacknowledged one comes again"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_binary_frame_is_answered_and_an_oversize_one_closes_with_1009() {
    let d = TestDistributor::start().await;
    let mut socket = connect_present(&d, "u").await;
    socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    let error = next_frame(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("bad_frame")),
        "{error}"
    );
    let huge = format!(
        r#"{{"type":"ack","ids":["{}"]}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    socket.send(Message::text(huge)).await.expect("send");
    expect_close(&mut socket, 1009).await;
    d.db.drop_database().await;
}

#[tokio::test]
async fn an_ack_frame_has_the_limits_of_post_ack_and_nothing_of_a_refused_one_is_taken() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2"]).await;
    let mut socket = connect(&d, "u").await;
    assert_eq!(notification_ids(&mut socket, 2).await, ["n1", "n2"]);
    let too_many: Vec<String> = std::iter::once("n1".to_string())
        .chain((0..1000).map(|i| format!("x{i}")))
        .collect();
    for (ids, code) in [
        (too_many, "too_many_ids"),
        (vec!["n1".to_string(), "a b".to_string()], "invalid_id"),
        (vec!["n1".to_string(), String::new()], "invalid_id"),
    ] {
        socket
            .send(Message::text(
                json!({"type": "ack", "ids": ids}).to_string(),
            ))
            .await
            .expect("send the ack");
        let error = next_frame(&mut socket).await;
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("error"), Some(code)),
            "{error}"
        );
    }
    socket.close(None).await.expect("close");
    let mut again = connect(&d, "u").await;
    assert_eq!(
        notification_ids(&mut again, 2).await,
        ["n1", "n2"],
        "n1, in every refused ack, is still unacknowledged"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_stopping_distributor_closes_its_connections_as_going_away() {
    let d = TestDistributor::start().await;
    let mut socket = connect_present(&d, "u").await;
    d.stop.cancel();
    expect_close(&mut socket, 1001).await;
    d.db.drop_database().await;
}

/// An idle connection gets a ping every 15 s: proxies keep it open, and the
/// client, hearing it, does not take the distributor for gone.
#[tokio::test]
async fn an_idle_connection_is_pinged() {
    let d = TestDistributor::start().await;
    let mut socket = connect_present(&d, "u").await;
    let waited = dataplane::distributor::KEEP_ALIVE + Duration::from_secs(5);
    match tokio::time::timeout(waited, socket.next()).await {
        Ok(Some(Ok(Message::Ping(_)))) => {}
        other => panic!("expected a ping within {waited:?}, got {other:?}"),
    }
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_handshake_without_a_valid_token_is_refused_with_401() {
    let d = TestDistributor::start().await;
    let url = format!(
        "{}/v1/connect/ws?token=not-a-jwt",
        d.url.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected an HTTP 401, got {other:?}"),
    }
    d.db.drop_database().await;
}

/// A client that falls behind: more live notifications than its queue holds
/// (16 here) arrive at once. It gets what was queued, then an error frame and
/// a close with code 4001; the deliveries it missed are reported not
/// delivered, so the director stores them.
#[tokio::test]
async fn a_client_whose_queue_overflows_is_closed_as_slow() {
    let d = TestDistributor::start().await;
    let mut socket = connect_present(&d, "u").await;

    let deliveries: Vec<_> = (0..20u64)
        .map(|i| {
            let live = d.live.clone();
            let envelope = dataplane::distributor::Envelope {
                id: format!("n{i}"),
                position: 100 + i,
                kind: None,
                payload: serde_json::value::RawValue::from_string("1".into()).expect("JSON"),
                published_at_ms: 0,
            };
            tokio::spawn(live.hand("u", envelope, Default::default(), Duration::from_secs(1)))
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        outcomes.push(delivery.await.expect("a delivery").outcome);
    }
    use dataplane::forward::Outcome;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::NotConnected)
            .count(),
        4,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().all(|o| *o != Outcome::Delivered),
        "{outcomes:?}"
    );

    assert_eq!(
        notification_ids(&mut socket, 16).await.len(),
        16,
        "what was queued is sent"
    );
    let error = next_frame(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("slow_client"))
    );
    expect_close(&mut socket, 4001).await;
    d.db.drop_database().await;
}
