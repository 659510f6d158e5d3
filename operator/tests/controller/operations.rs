//! `spec.clusterOperation`: paused leaves everything alone; stopped scales
//! every component to zero and keeps the data.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::json;

use crate::harness::{Operator, Scene, replicas, topic_partitions};

#[tokio::test]
async fn paused_leaves_the_objects_alone_until_resumed() {
    let scene = Scene::new("op-paused").await;
    let _operator = Operator::start(&scene.namespace, "only").await;
    let name = scene.apply_sample("minimal", |_| {}).await;
    let receiver = format!("{name}-receiver");
    let director = format!("{name}-director");
    scene
        .wait_for::<Deployment>(&director, |d| replicas(d) == Some(1))
        .await;

    scene
        .patch_spec(&name, json!({"clusterOperation": {"reconciliationPaused": true}, "receiver": {"replicas": 4}}))
        .await;
    scene
        .wait_for_condition(&name, "Progressing", "False", Some("ReconciliationPaused"))
        .await;
    scene.scale_by_hand(&director, 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = scene.api::<Deployment>();
    assert_eq!(
        replicas(&api.get(&receiver).await.unwrap()),
        Some(1),
        "the spec is not applied"
    );
    assert_eq!(
        replicas(&api.get(&director).await.unwrap()),
        Some(2),
        "a hand edit stays"
    );

    scene
        .patch_spec(
            &name,
            json!({"clusterOperation": {"reconciliationPaused": false}}),
        )
        .await;
    scene
        .wait_for::<Deployment>(&receiver, |d| replicas(d) == Some(4))
        .await;
    scene
        .wait_for::<Deployment>(&director, |d| replicas(d) == Some(1))
        .await;
    scene.finish().await;
}

#[tokio::test]
async fn stopped_scales_to_zero_and_keeps_the_topic() {
    let scene = Scene::new("op-stopped").await;
    let _operator = Operator::start(&scene.namespace, "only").await;
    let autoscaled = |c: &mut serde_json::Value| {
        c["spec"]["distributor"] =
            json!({"autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 4}})
    };
    let name = scene.apply_sample("minimal", autoscaled).await;
    let hpa = format!("{name}-distributor");
    scene
        .wait_for::<HorizontalPodAutoscaler>(&hpa, |_| true)
        .await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;

    scene
        .patch_spec(&name, json!({"clusterOperation": {"stopped": true}}))
        .await;
    for role in ["receiver", "director", "distributor"] {
        scene
            .wait_for::<Deployment>(&format!("{name}-{role}"), |d| replicas(d) == Some(0))
            .await;
    }
    scene.wait_gone::<HorizontalPodAutoscaler>(&hpa).await;
    scene
        .wait_for_condition(&name, "Ready", "False", Some("Stopped"))
        .await;
    let topic = scene.spec(&name).await.kafka.topic;
    assert_eq!(topic_partitions(&topic).await, Some(12), "the topic stays");

    scene
        .patch_spec(&name, json!({"clusterOperation": {"stopped": false}}))
        .await;
    scene
        .wait_for::<HorizontalPodAutoscaler>(&hpa, |_| true)
        .await;
    scene
        .wait_for::<Deployment>(&format!("{name}-receiver"), |d| replicas(d) == Some(1))
        .await;
    scene.finish().await;
}
