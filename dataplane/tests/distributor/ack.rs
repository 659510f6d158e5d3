use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestDistributor, token};

#[tokio::test]
async fn an_ack_removes_what_was_stored_and_only_that() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2"]).await;
    d.fill_inbox("v", &["n1"]).await;
    let ack = async |ids: Value| {
        let response = d
            .http
            .post(format!("{}/v1/ack?token={}", d.url, token("u")))
            .json(&json!({ "ids": ids }))
            .send()
            .await
            .expect("ack");
        (
            response.status(),
            response.json::<Value>().await.expect("JSON"),
        )
    };
    assert_eq!(
        ack(json!(["n1"])).await,
        (StatusCode::OK, json!({"acknowledged": ["n1"]}))
    );
    let inbox = &d.inbox;
    let left = async |r: &str| {
        use dataplane::inbox::Inbox;
        inbox.pending(r, None, 10, 0).await.expect("pending").len()
    };
    assert_eq!(
        (left("u").await, left("v").await),
        (1, 1),
        "another recipient's n1 stays"
    );
    assert_eq!(
        ack(json!(["n1"])).await,
        (StatusCode::OK, json!({"acknowledged": ["n1"]})),
        "acknowledging twice is no error"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn an_ack_of_an_id_never_sent_is_refused_and_the_others_are_acknowledged() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2"]).await;
    d.fill_inbox("v", &["theirs"]).await;
    let response = d
        .http
        .post(format!("{}/v1/ack", d.url))
        .bearer_auth(token("u"))
        .json(&json!({"ids": ["n1", "nope", "theirs"]}))
        .send()
        .await
        .expect("ack");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "unknown_id");
    assert_eq!(error["error"]["field"], "ids[1]");
    let message = error["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("nope, theirs"),
        "names both unknown ids: {message}"
    );
    use dataplane::inbox::Inbox;
    let left = |r: &'static str| d.inbox.pending(r, None, 10, 0);
    let ids = |held: Vec<dataplane::inbox::Positioned>| {
        held.into_iter()
            .map(|p| p.notification.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(left("u").await.expect("pending")),
        ["n2"],
        "n1 is acknowledged"
    );
    assert_eq!(
        ids(left("v").await.expect("pending")),
        ["theirs"],
        "another recipient's notification is not touched"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn bad_acks_get_their_status_and_error() {
    let d = TestDistributor::start().await;
    let post = |body: String| {
        d.http
            .post(format!("{}/v1/ack", d.url))
            .bearer_auth(token("u"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        ("{\"ids\":", StatusCode::BAD_REQUEST, "invalid_body", None),
        (
            "{\"ids\":[]}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_ack",
            None,
        ),
        (
            "{\"through\":5}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "beyond_sent",
            Some("through"),
        ),
        (
            "{\"ids\":[\"ok\",\"a b\"]}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            Some("ids[1]"),
        ),
        (
            &json!({"ids": (0..1001).map(|i| format!("n{i}")).collect::<Vec<_>>()}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_ids",
            Some("ids"),
        ),
    ];
    for (body, status, code, field) in cases {
        let response = post(body.to_string()).await.expect("answer");
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.expect("a JSON error");
        assert_eq!(error["error"]["code"], code, "{body}");
        assert_eq!(error["error"]["field"].as_str(), field, "{body}");
    }
    let unauthenticated = d
        .http
        .post(format!("{}/v1/ack", d.url))
        .json(&json!({"ids": ["x"]}))
        .send()
        .await
        .expect("answer");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    d.db.drop_database().await;
}

#[tokio::test]
async fn the_token_and_a_declared_size_are_checked_before_the_body_is_read() {
    let d = TestDistributor::start().await;
    let address = d.url.trim_start_matches("http://");
    let bearer = format!("Bearer {}", token("u"));
    let huge = 16 * 1024 * 1024;
    let status = testenv::status_of_partial_post(address, "/v1/ack", None, huge, b"").await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    let status =
        testenv::status_of_partial_post(address, "/v1/ack", Some(&bearer), huge, b"").await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    d.db.drop_database().await;
}

#[tokio::test]
async fn another_distributor_that_does_not_answer_is_left_alone_for_a_while() {
    use std::time::{Duration, Instant};

    use dataplane::presence::{Connection, Presence};

    let d = TestDistributor::start().await;
    // Listed with a connection of `u`, taking connections and answering
    // nothing: a dead pod's address, say.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = silent.local_addr().expect("its address").to_string();
    let ttl = Duration::from_secs(30);
    let presence = &d.presence;
    presence
        .announce_distributor("silent", &address, ttl)
        .await
        .expect("announced");
    let connection = Connection {
        recipient: "u".into(),
        distributor: "silent".into(),
        id: "c1".into(),
    };
    presence.register(&[connection], ttl).await.expect("listed");

    let ack = async || {
        let started = Instant::now();
        let answer = d
            .http
            .post(format!("{}/v1/ack", d.url))
            .bearer_auth(token("u"))
            .json(&json!({"ids": ["never-sent"]}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        started.elapsed()
    };
    let first = ack().await;
    assert!(
        first >= Duration::from_millis(1500),
        "the first waits for the relay's timeout: {first:?}"
    );
    let second = ack().await;
    assert!(
        second < Duration::from_millis(1000),
        "the next leaves it alone: {second:?}"
    );
    drop(silent);
    d.db.drop_database().await;
}
