//! Tests that stop a shared server: run one at a time (`just test` runs
//! `exclusive::` tests after the rest, with one thread).

use testenv::control::{self, Server};

use crate::harness::{Operator, Scene};

#[tokio::test]
async fn kafka_stopped_shows_in_the_conditions_and_recovery_needs_no_restart() {
    let scene = Scene::new("op-kafka-stop").await;
    let operator = Operator::start(&scene.namespace, "only").await;
    let name = scene.apply_sample("minimal", |_| {}).await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;

    control::stop(Server::Kafka).await;
    // A spec change makes the operator look now rather than at its next resync.
    scene
        .patch_spec(&name, serde_json::json!({"delivery": {"attempts": 4}}))
        .await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "False", Some("KafkaUnavailable"))
        .await;
    scene
        .wait_for_condition(&name, "Degraded", "True", Some("KafkaUnreachable"))
        .await;
    let (_, message) = scene
        .cluster(&name)
        .await
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "KafkaTopicReady")
        .map(|c| (c.reason, c.message))
        .unwrap();
    assert!(message.contains("does not answer"), "{message}");

    control::start(Server::Kafka).await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;
    scene
        .wait_for_condition(&name, "Degraded", "False", None)
        .await;
    assert!(
        operator
            .metric("notif_operator_reconcile_errors_total")
            .await
            >= 1.0
    );
    scene.finish().await;
}
