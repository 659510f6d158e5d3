use std::collections::HashMap;

use dataplane::auth::jwt::{Claims, sign_with_secret};
use dataplane::notification::{Notification, now_ms};
use dataplane::receiver::Accepted;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{JWT_SECRET, TestReceiver};

async fn accepted_ids(response: reqwest::Response) -> Vec<String> {
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "{}",
        response.text().await.unwrap_or_default()
    );
    response
        .json::<Accepted>()
        .await
        .expect("a JSON answer with the ids")
        .ids
}

async fn notifications_in(topic: &str) -> Vec<(String, Notification)> {
    testenv::kafka::read_all(topic)
        .await
        .into_iter()
        .map(|r| {
            let n: Notification = serde_json::from_slice(&r.value).expect("a notification record");
            (r.key.expect("a keyed record"), n)
        })
        .collect()
}

#[tokio::test]
async fn one_notification_is_written_keyed_by_its_recipient() {
    let receiver = TestReceiver::start().await;
    let before = now_ms();
    // Raw text, so that the payload's exact form (1.50) is what was sent.
    let body =
        r#"{"recipient": "user-1", "payload": {"text":"hi","n":1.50}, "kind": "chat", "ttl": 60}"#;
    let ids = accepted_ids(
        receiver
            .publish_raw(body.into(), Some(crate::API_KEY))
            .await,
    )
    .await;
    assert_eq!(ids.len(), 1);

    let written = notifications_in(&receiver.topic).await;
    assert_eq!(written.len(), 1);
    let (key, n) = &written[0];
    assert_eq!(
        (key.as_str(), n.id.as_str(), n.recipient.as_str()),
        ("user-1", ids[0].as_str(), "user-1")
    );
    assert_eq!(n.payload.get(), r#"{"text":"hi","n":1.50}"#);
    assert_eq!(n.kind.as_deref(), Some("chat"));
    assert!(n.published_at_ms >= before);
    assert_eq!(n.expires_at_ms, Some(n.published_at_ms + 60_000));
}

/// `null` for an optional field is as if it were left out; a `null`
/// payload is a payload.
#[tokio::test]
async fn null_optional_fields_are_left_out_and_a_null_payload_is_kept() {
    let receiver = TestReceiver::start().await;
    let ids = accepted_ids(
        receiver
            .publish(
                json!({"recipient": "u", "payload": null, "id": null, "ttl": null, "kind": null}),
            )
            .await,
    )
    .await;
    assert_eq!(ids.len(), 1);

    let written = notifications_in(&receiver.topic).await;
    assert_eq!(written.len(), 1);
    let n = &written[0].1;
    assert_eq!(n.id, ids[0], "an id was made");
    assert!(dataplane::notification::is_valid_id(&n.id));
    assert_eq!(n.payload.get(), "null");
    assert_eq!((n.kind.as_deref(), n.expires_at_ms), (None, None));
}

#[tokio::test]
async fn a_batch_is_written_whole_and_in_order_per_recipient() {
    let receiver = TestReceiver::start().await;
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({"recipient": format!("user-{}", i % 3), "payload": i, "id": format!("b-{i}")}))
        .collect();
    let ids = accepted_ids(receiver.publish(json!({ "notifications": batch })).await).await;
    assert_eq!(ids, (0..10).map(|i| format!("b-{i}")).collect::<Vec<_>>());

    let mut per_recipient: HashMap<String, Vec<String>> = HashMap::new();
    for (key, n) in notifications_in(&receiver.topic).await {
        assert_eq!(key, n.recipient);
        per_recipient.entry(key).or_default().push(n.id);
    }
    assert_eq!(per_recipient["user-0"], ["b-0", "b-3", "b-6", "b-9"]);
    assert_eq!(per_recipient["user-1"], ["b-1", "b-4", "b-7"]);
    assert_eq!(per_recipient["user-2"], ["b-2", "b-5", "b-8"]);
}

/// Each class of bad input: its status, its error body, and nothing written.
#[tokio::test]
async fn bad_input_gets_its_status_and_error_and_nothing_is_written() {
    let receiver = TestReceiver::start().await;
    let ok = json!({"recipient": "u", "payload": 1});
    let cases: Vec<(&str, String, StatusCode, &str, Option<&str>)> = vec![
        ("malformed JSON", "{\"recipient\":".into(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("missing recipient", json!({"payload": 1}).to_string(), StatusCode::BAD_REQUEST, "missing_field", Some("recipient")),
        ("invalid recipient", json!({"recipient": "a b", "payload": 1}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_recipient", Some("recipient")),
        ("oversize payload", json!({"recipient": "u", "payload": "x".repeat(2000)}).to_string(), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", Some("payload")),
        ("oversize batch", json!({"notifications": vec![ok.clone(); 11]}).to_string(), StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", Some("notifications")),
        ("oversize body", json!({"notifications": vec![json!({"recipient": "u", "payload": "x".repeat(1000)}); 70]}).to_string(), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None),
        ("one bad item in a batch", json!({"notifications": [ok, {"recipient": "", "payload": 1}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_recipient", Some("notifications[1].recipient")),
    ];
    for (what, body, status, code, field) in cases {
        let response = receiver.publish_raw(body, Some(crate::API_KEY)).await;
        assert_eq!(response.status(), status, "{what}");
        let error: Value = response.json().await.expect("a JSON error body");
        assert_eq!(error["error"]["code"], code, "{what}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {error}"
        );
        assert_eq!(error["error"]["field"].as_str(), field, "{what}: {error}");
    }
    assert!(
        testenv::kafka::read_all(&receiver.topic).await.is_empty(),
        "nothing of a refused request is written"
    );
}

#[tokio::test]
async fn publishers_need_an_api_key_or_a_token_with_the_publish_scope() {
    let receiver = TestReceiver::start().await;
    let body = json!({"recipient": "u", "payload": 1}).to_string();
    let token = |scope: &str| {
        let claims = Claims {
            sub: "backend".into(),
            exp: now_ms() / 1000 + 600,
            scope: scope.into(),
        };
        sign_with_secret(&claims, JWT_SECRET).expect("a token")
    };
    let cases = [
        (None, StatusCode::UNAUTHORIZED),
        (Some("wrong-key".to_string()), StatusCode::UNAUTHORIZED),
        (Some(token("read")), StatusCode::FORBIDDEN),
        (
            Some(
                sign_with_secret(
                    &Claims {
                        sub: "b".into(),
                        exp: 1,
                        scope: "publish".into(),
                    },
                    JWT_SECRET,
                )
                .expect("a token"),
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (Some(token("publish")), StatusCode::ACCEPTED),
        (Some(crate::API_KEY.to_string()), StatusCode::ACCEPTED),
    ];
    for (bearer, status) in cases {
        let response = receiver.publish_raw(body.clone(), bearer.as_deref()).await;
        assert_eq!(response.status(), status, "credentials {bearer:?}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let error: Value = response.json().await.expect("a JSON error body");
            assert_eq!(error["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(
        testenv::kafka::read_all(&receiver.topic).await.len(),
        2,
        "only the two accepted are written"
    );
}

/// The status line of a publish that declares `length` bytes of body and
/// sends `sent` of them.
async fn status_of_partial(
    receiver: &TestReceiver,
    api_key: Option<&str>,
    length: usize,
    sent: &[u8],
) -> String {
    let authorization = api_key.map(|key| format!("Bearer {key}"));
    testenv::status_of_partial_post(
        receiver.url.trim_start_matches("http://"),
        "/v1/notifications",
        authorization.as_deref(),
        length,
        sent,
    )
    .await
}

#[tokio::test]
async fn credentials_and_a_declared_size_are_checked_before_the_body_is_read() {
    let receiver = TestReceiver::start().await;
    let huge = 16 * 1024 * 1024;
    let status = status_of_partial(&receiver, None, huge, b"").await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    let status = status_of_partial(&receiver, Some(crate::API_KEY), huge, b"").await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let receiver = TestReceiver::start().await;
    let status = status_of_partial(&receiver, Some(crate::API_KEY), 100, br#"{"recipient""#).await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
}
