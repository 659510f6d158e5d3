//! Two operator processes on one Lease: only the holder reconciles; when it
//! stops, the other takes over.

use k8s_openapi::api::apps::v1::Deployment;
use testenv::wait_until;

use crate::common::TIMEOUT;
use crate::harness::{Operator, Scene, replicas};

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_the_other_takes_over() {
    let scene = Scene::new("op-leader").await;
    let mut first = Operator::start(&scene.namespace, "first").await;
    wait_until("the first operator leads", TIMEOUT, async || {
        first.metric("notif_operator_leader").await == 1.0
    })
    .await;
    let second = Operator::start(&scene.namespace, "second").await;

    let name = scene.apply_sample("minimal", |_| {}).await;
    let receiver = format!("{name}-receiver");
    scene.wait_for::<Deployment>(&receiver, |_| true).await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;
    // Counted once the reconcile returns, a moment after its status shows.
    wait_until("the leader counts its reconcile", TIMEOUT, async || {
        first.metric("notif_operator_reconciles_total").await >= 1.0
    })
    .await;
    assert_eq!(second.metric("notif_operator_leader").await, 0.0);
    assert_eq!(
        second.metric("notif_operator_reconciles_total").await,
        0.0,
        "the standby reconciles nothing"
    );

    assert!(first.stop(), "the leader stops cleanly:\n{}", first.log());
    wait_until("the second operator leads", TIMEOUT, async || {
        second.metric("notif_operator_leader").await == 1.0
    })
    .await;
    scene.scale_by_hand(&receiver, 3).await;
    scene
        .wait_for::<Deployment>(&receiver, |d| replicas(d) == Some(1))
        .await;
    wait_until(
        "the second operator counts its reconciles",
        TIMEOUT,
        async || second.metric("notif_operator_reconciles_total").await >= 1.0,
    )
    .await;
    scene.finish().await;
}
