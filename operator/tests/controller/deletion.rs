//! Deleting a cluster: the garbage collector takes what it owned; the topic
//! goes only under `deletionPolicy: Delete`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use operator::controller::TOPIC_FINALIZER;
use serde_json::json;
use testenv::wait_until;

use crate::common::TIMEOUT;
use crate::harness::{Operator, Scene, topic_partitions};

async fn delete_cluster(policy: &str) -> (Scene, String) {
    let scene = Scene::new(&format!("op-delete-{}", policy.to_lowercase())).await;
    let operator = Operator::start(&scene.namespace, "only").await;
    let name = scene
        .apply_sample("minimal", |c| c["spec"]["deletionPolicy"] = json!(policy))
        .await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;
    let topic = scene.spec(&name).await.kafka.topic;
    let has_finalizer = scene
        .cluster(&name)
        .await
        .finalizers()
        .iter()
        .any(|f| f == TOPIC_FINALIZER);
    assert_eq!(
        has_finalizer,
        policy == "Delete",
        "a finalizer only to delete the topic"
    );

    scene.delete_cluster(&name).await;
    scene
        .wait_gone::<Deployment>(&format!("{name}-director"))
        .await;
    scene
        .wait_gone::<ConfigMap>(&format!("{name}-settings"))
        .await;
    drop(operator);
    (scene, topic)
}

#[tokio::test]
async fn deleting_under_keep_leaves_the_topic() {
    let (scene, topic) = delete_cluster("Keep").await;
    assert_eq!(topic_partitions(&topic).await, Some(12));
    scene.finish().await;
}

#[tokio::test]
async fn deleting_under_delete_deletes_the_topic_then_the_finalizer() {
    let (scene, topic) = delete_cluster("Delete").await;
    wait_until(&format!("topic {topic} is deleted"), TIMEOUT, async || {
        topic_partitions(&topic).await.is_none()
    })
    .await;
    scene.finish().await;
}
