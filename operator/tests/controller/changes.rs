//! Spec changes and hand edits: the objects follow the spec, the pods roll
//! only for settings, and what someone changes by hand is put back.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use testenv::wait_until;

use crate::common::TIMEOUT;
use crate::harness::{Operator, Scene, replicas, topic_partitions, topic_retention_ms};

const HASH: &str = "notifications.saasaparilla.dev/config-hash";

fn hash(deployment: &Deployment) -> String {
    let template = &deployment.spec.as_ref().expect("a spec").template;
    template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .expect("annotations")[HASH]
        .clone()
}

#[tokio::test]
async fn spec_changes_are_followed_and_only_settings_roll_the_pods() {
    let scene = Scene::new("op-changes").await;
    let _operator = Operator::start(&scene.namespace, "only").await;
    let name = scene.apply_sample("minimal", |_| {}).await;
    let receiver = format!("{name}-receiver");
    let director = format!("{name}-director");
    let before = hash(&scene.wait_for::<Deployment>(&director, |_| true).await);

    scene
        .patch_spec(&name, json!({"receiver": {"replicas": 3}}))
        .await;
    let scaled = scene
        .wait_for::<Deployment>(&receiver, |d| replicas(d) == Some(3))
        .await;
    assert_eq!(hash(&scaled), before, "replicas do not roll the pods");

    scene
        .patch_spec(&name, json!({"delivery": {"attempts": 5}}))
        .await;
    scene
        .wait_for::<ConfigMap>(&format!("{name}-settings"), |c| {
            c.data
                .as_ref()
                .is_some_and(|d| d["NOTIF_DELIVERY_ATTEMPTS"] == "5")
        })
        .await;
    let rolled = scene
        .wait_for::<Deployment>(&director, |d| hash(d) != before)
        .await;
    assert_eq!(replicas(&rolled), Some(1));

    let topic = scene.spec(&name).await.kafka.topic;
    scene
        .patch_spec(&name, json!({"kafka": {"partitions": 16}}))
        .await;
    wait_until("the topic grows to 16 partitions", TIMEOUT, async || {
        topic_partitions(&topic).await == Some(16)
    })
    .await;
    assert_eq!(
        topic_retention_ms(&topic).await.as_deref(),
        Some("604800000")
    );
    scene
        .patch_spec(&name, json!({"kafka": {"retentionHours": 2}}))
        .await;
    wait_until("the topic keeps 2 hours", TIMEOUT, async || {
        topic_retention_ms(&topic).await.as_deref() == Some("7200000")
    })
    .await;
    let refused = scene
        .clusters
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"kafka": {"partitions": 8}}})),
        )
        .await
        .expect_err("fewer partitions are refused");
    assert!(
        refused.to_string().contains("partitions may only grow"),
        "{refused}"
    );

    let not_a_cidr = json!({"spec": {"connections": {"trustedProxies": ["10.0.0.0/8", "proxy"]}}});
    let refused = scene
        .clusters
        .patch(&name, &PatchParams::default(), &Patch::Merge(not_a_cidr))
        .await
        .expect_err("a trusted proxy that is not a CIDR is refused");
    assert!(refused.to_string().contains("is a CIDR"), "{refused}");
    let limits = json!({"connections": {"maxPerAddress": 100, "trustedProxies": ["10.0.0.0/8"]}});
    scene.patch_spec(&name, limits).await;
    scene
        .wait_for::<ConfigMap>(&format!("{name}-settings"), |c| {
            c.data.as_ref().is_some_and(|d| {
                d["NOTIF_MAX_CONNECTIONS_PER_ADDRESS"] == "100"
                    && d.get("NOTIF_TRUSTED_PROXIES")
                        .is_some_and(|p| p == "10.0.0.0/8")
            })
        })
        .await;

    let autoscaled = json!({"distributor": {"autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 5}}});
    scene.patch_spec(&name, autoscaled).await;
    let hpa = format!("{name}-distributor");
    scene
        .wait_for::<HorizontalPodAutoscaler>(&hpa, |_| true)
        .await;
    scene
        .patch_spec(
            &name,
            json!({"distributor": {"autoscaling": {"enabled": false}}}),
        )
        .await;
    scene.wait_gone::<HorizontalPodAutoscaler>(&hpa).await;
    scene.finish().await;
}

#[tokio::test]
async fn hand_edits_are_put_back() {
    let scene = Scene::new("op-drift").await;
    let _operator = Operator::start(&scene.namespace, "only").await;
    let name = scene.apply_sample("minimal", |_| {}).await;
    let receiver = format!("{name}-receiver");
    scene
        .wait_for::<Deployment>(&receiver, |d| replicas(d) == Some(1))
        .await;

    // `kubectl scale` by someone else.
    scene.scale_by_hand(&receiver, 4).await;
    scene
        .wait_for::<Deployment>(&receiver, |d| replicas(d) == Some(1))
        .await;

    let distributor = format!("{name}-distributor");
    let service = scene.wait_for::<Service>(&distributor, |_| true).await;
    scene
        .api::<Service>()
        .delete(&distributor, &DeleteParams::default())
        .await
        .expect("deleted by hand");
    scene
        .wait_for::<Service>(&distributor, |s| s.uid() != service.uid())
        .await;
    scene.finish().await;
}
