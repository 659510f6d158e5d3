//! With Kafka stopped, publishing answers 503, never 202; once Kafka is back,
//! publishing resumes and what was accepted before is all there.

use reqwest::StatusCode;
use serde_json::json;
use testenv::control::{self, Server};

use crate::TestReceiver;

#[tokio::test]
async fn while_kafka_is_stopped_publish_answers_503_and_nothing_accepted_is_lost() {
    let receiver = TestReceiver::start().await;
    let publish =
        |i: u32| receiver.publish(json!({"recipient": "u", "payload": i, "id": format!("n-{i}")}));
    assert_eq!(publish(1).await.status(), StatusCode::ACCEPTED);

    control::stop(Server::Kafka).await;
    for i in 2..4 {
        let response = publish(i).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "publish {i} while Kafka is down"
        );
        assert!(response.headers().contains_key("retry-after"));
        let error: serde_json::Value = response.json().await.expect("a JSON error body");
        assert_eq!(error["error"]["code"], "unavailable");
    }
    control::start(Server::Kafka).await;

    // The publisher retries until accepted, as the 503 asks.
    let resumes = async || publish(4).await.status() == StatusCode::ACCEPTED;
    testenv::wait_until(
        "publishing resumes after Kafka's start",
        std::time::Duration::from_secs(60),
        resumes,
    )
    .await;
    let ids: Vec<String> = testenv::kafka::read_all(&receiver.topic)
        .await
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.value).expect("JSON")["id"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(
        ids.contains(&"n-1".to_string()) && ids.contains(&"n-4".to_string()),
        "{ids:?}"
    );
}
