//! Query strings the client endpoints cannot read: every one answers with
//! the JSON error body, naming the parameter, before it looks at the token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestDistributor, token};

/// Asserts a `400 invalid_query` JSON error whose `field` is `field`.
async fn assert_invalid_query(response: reqwest::Response, field: Option<&str>, what: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{what}"
    );
    let error: Value = response.json().await.expect("a JSON error body");
    assert_eq!(error["error"]["code"], "invalid_query", "{what}: {error}");
    assert_eq!(error["error"]["field"].as_str(), field, "{what}: {error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    if let Some(field) = field {
        assert!(message.contains(field), "{what}: {error}");
    } else {
        assert!(!message.is_empty(), "{what}: {error}");
    }
}

#[tokio::test]
async fn a_bad_query_parameter_gets_a_json_error_naming_it_on_every_endpoint() {
    let d = TestDistributor::start().await;
    let t = token("u");
    let cases = [
        ("connect/ws", format!("token={t}&after=abc"), Some("after")),
        ("connect/sse", format!("token={t}&after=-1"), Some("after")),
        (
            "connect/poll",
            format!("token={t}&after=abc"),
            Some("after"),
        ),
        ("connect/poll", format!("token={t}&wait=x"), Some("wait")),
        // Without a token: the query is read first, since the token may be
        // in it.
        ("connect/sse", "after=1.5".to_string(), Some("after")),
        // A parameter given twice is not about one value.
        ("connect/poll", format!("token={t}&after=1&after=2"), None),
    ];
    for (endpoint, query, field) in cases {
        let response = d
            .http
            .get(format!("{}/v1/{endpoint}?{query}", d.url))
            .send()
            .await
            .expect("the distributor answers");
        assert_invalid_query(response, field, &format!("{endpoint}?{query}")).await;
    }
    let ack = d
        .http
        .post(format!("{}/v1/ack?token={t}&token={t}", d.url))
        .json(&json!({"ids": ["n1"]}))
        .send()
        .await
        .expect("the distributor answers");
    assert_invalid_query(ack, None, "ack with the token twice").await;
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_websocket_handshake_with_a_bad_query_is_refused_with_400() {
    let d = TestDistributor::start().await;
    let url = format!(
        "{}/v1/connect/ws?token={}&after=abc",
        d.url.replace("http://", "ws://"),
        token("u")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            assert_eq!(response.headers()["content-type"], "application/json");
        }
        other => panic!("expected an HTTP 400, got {other:?}"),
    }
    assert!(!d.is_present("u").await, "nothing was registered");
    d.db.drop_database().await;
}
