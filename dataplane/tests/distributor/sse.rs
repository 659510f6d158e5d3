use std::time::Duration;

use dataplane::distributor::Envelope;
use futures::StreamExt;
use reqwest::StatusCode;

use crate::{TestDistributor, notification, token};

/// An SSE connection read event by event.
struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl SseClient {
    async fn connect(
        d: &TestDistributor,
        recipient: &str,
        last_event_id: Option<u64>,
    ) -> SseClient {
        let mut request = d
            .http
            .get(format!("{}/v1/connect/sse", d.url))
            .bearer_auth(token(recipient));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("the distributor answers");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseClient {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next `notification` event (its SSE id and data), or None if none
    /// comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(u64, Envelope)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_string()))
                };
                if field("event:").as_deref() == Some("notification") {
                    let id = field("id:")
                        .and_then(|v| v.parse().ok())
                        .expect("an event id");
                    let envelope =
                        serde_json::from_str(&field("data:").expect("data")).expect("an envelope");
                    return Some((id, envelope));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("the stream")));
        }
    }

    async fn ids(&mut self, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..count {
            let (id, envelope) = self
                .next(Duration::from_secs(5))
                .await
                .expect("a notification event");
            assert_eq!(id, envelope.position, "the event id is the position");
            ids.push(envelope.id);
        }
        ids
    }
}

#[tokio::test]
async fn the_inbox_arrives_in_order_and_what_is_not_acknowledged_comes_again() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2", "n3", "n4", "n5"]).await;

    let mut client = SseClient::connect(&d, "u", None).await;
    assert_eq!(
        client.ids(5).await,
        ["n1", "n2", "n3", "n4", "n5"],
        "in stored order, over several pages"
    );
    assert!(client.next(Duration::from_millis(300)).await.is_none());
    assert!(d.is_present("u").await, "the connection is in presence");

    let ack = d
        .http
        .post(format!("{}/v1/ack", d.url))
        .bearer_auth(token("u"))
        .json(&serde_json::json!({"ids": ["n1", "n2", "n4"]}))
        .send()
        .await
        .expect("ack");
    assert_eq!(ack.status(), StatusCode::OK);
    drop(client);
    testenv::wait_until(
        "the closed connection leaves presence",
        Duration::from_secs(5),
        async || !d.is_present("u").await,
    )
    .await;

    let mut again = SseClient::connect(&d, "u", None).await;
    assert_eq!(
        again.ids(2).await,
        ["n3", "n5"],
        "only what was not acknowledged"
    );
    let mut resumed = SseClient::connect(&d, "u", Some(30)).await;
    assert_eq!(
        resumed.ids(1).await,
        ["n5"],
        "Last-Event-ID resumes after that position"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn two_connections_of_one_recipient_both_receive_and_the_expired_is_never_sent() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1"]).await;
    let expired = dataplane::inbox::Positioned {
        position: 15,
        notification: notification("u", "old", Some(1)),
    };
    dataplane::inbox::Inbox::store(&d.inbox, &[expired])
        .await
        .expect("store");

    let (mut tab, mut phone) = (
        SseClient::connect(&d, "u", None).await,
        SseClient::connect(&d, "u", None).await,
    );
    assert_eq!(tab.ids(1).await, ["n1"]);
    assert_eq!(phone.ids(1).await, ["n1"]);
    assert!(
        tab.next(Duration::from_millis(300)).await.is_none(),
        "the expired one is not sent"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_missing_bad_or_expired_token_is_refused() {
    let d = TestDistributor::start().await;
    let expired = dataplane::auth::jwt::sign_with_secret(
        &dataplane::auth::jwt::Claims {
            sub: "u".into(),
            exp: 1,
            scope: String::new(),
        },
        crate::SECRET,
    )
    .expect("a token");
    let forged = dataplane::auth::jwt::sign_with_secret(
        &dataplane::auth::jwt::Claims {
            sub: "u".into(),
            exp: u64::MAX / 2,
            scope: String::new(),
        },
        b"another secret",
    )
    .expect("a token");
    for (what, query) in [
        ("none", String::new()),
        ("expired", format!("?token={expired}")),
        ("forged", format!("?token={forged}")),
    ] {
        for endpoint in ["sse", "ws"] {
            let response = d
                .http
                .get(format!("{}/v1/connect/{endpoint}{query}", d.url))
                .send()
                .await
                .expect("answer");
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{what} token on {endpoint}"
            );
            let error: serde_json::Value = response.json().await.expect("a JSON error");
            assert_eq!(
                error["error"]["code"], "unauthorized",
                "{what} token on {endpoint}"
            );
        }
    }
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_publishers_token_does_not_connect_as_a_client() {
    let d = TestDistributor::start().await;
    let publisher = dataplane::auth::jwt::sign_with_secret(
        &dataplane::auth::jwt::Claims {
            sub: "u".into(),
            exp: u64::MAX / 2,
            scope: "publish".into(),
        },
        crate::SECRET,
    )
    .expect("a token");
    for endpoint in ["sse", "ws", "poll"] {
        let response = d
            .http
            .get(format!("{}/v1/connect/{endpoint}?token={publisher}", d.url))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{endpoint}");
        let error: serde_json::Value = response.json().await.expect("a JSON error");
        assert_eq!(error["error"]["code"], "forbidden", "{endpoint}");
    }
    d.db.drop_database().await;
}

#[tokio::test]
async fn an_unreadable_last_event_id_is_refused_and_an_empty_one_is_none() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2"]).await;
    let connect = |last_event_id: &'static str| {
        d.http
            .get(format!("{}/v1/connect/sse?after=10", d.url))
            .bearer_auth(token("u"))
            .header("last-event-id", last_event_id)
            .send()
    };
    for bad in ["abc", "-1", "1.5", "10 20"] {
        let response = connect(bad).await.expect("the distributor answers");
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "Last-Event-ID {bad:?}"
        );
        let error: serde_json::Value = response.json().await.expect("a JSON error body");
        assert_eq!(
            (
                error["error"]["code"].as_str(),
                error["error"]["field"].as_str()
            ),
            (Some("invalid_header"), Some("Last-Event-ID")),
            "Last-Event-ID {bad:?}: {error}"
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Last-Event-ID")),
            "{error}"
        );
    }
    assert!(!d.is_present("u").await, "no refused connection registered");

    let empty = connect("").await.expect("the distributor answers");
    assert_eq!(empty.status(), StatusCode::OK, "an empty one is none");
    let mut client = SseClient {
        body: empty.bytes_stream().boxed(),
        buffer: String::new(),
    };
    assert_eq!(
        client.ids(1).await,
        ["n2"],
        "`after` applies when Last-Event-ID is empty"
    );
    d.db.drop_database().await;
}
