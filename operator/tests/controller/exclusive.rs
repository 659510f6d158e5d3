//! Tests that stop a shared server: run one at a time (`just test` runs
//! `exclusive::` tests after the rest, with one thread).

use std::time::Duration;

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

/// Readiness says whether the process can serve, not whether the API server
/// answers: every replica would leave its Service at once.
#[tokio::test]
async fn the_operator_stays_ready_while_the_api_server_is_away() {
    let scene = Scene::new("op-api-stop").await;
    let mut operator = Operator::start(&scene.namespace, "only").await;
    let name = scene.apply_sample("minimal", |_| {}).await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;

    // Shorter than the Lease (15 s), so that the leader keeps it.
    control::stop(Server::KubeApiserver).await;
    let readyz = format!("http://127.0.0.1:{}/readyz", operator.admin);
    for _ in 0..3 {
        let answer = reqwest::get(&readyz).await.expect("the admin port answers");
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    control::start(Server::KubeApiserver).await;

    // Every watch lists again after the restart; then it notices changes
    // within seconds, not the minute and a half of kube's default backoff.
    scene
        .patch_spec(&name, serde_json::json!({"delivery": {"attempts": 4}}))
        .await;
    let clusters = scene.api::<operator::crd::NotificationCluster>();
    testenv::wait_until(
        "the change reconciled",
        Duration::from_secs(20),
        async || {
            clusters.get(&name).await.is_ok_and(|c| {
                c.status.and_then(|s| s.observed_generation) == c.metadata.generation
            })
        },
    )
    .await;
    assert!(operator.stop(), "it ran on, and stops cleanly");
    scene.finish().await;
}
