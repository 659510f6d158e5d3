//! Each sample applied: the objects it becomes, its topic, and its status.

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use testenv::notifd::free_port;
use testenv::wait_until;

use crate::common::TIMEOUT;
use crate::harness::{Kubelet, Operator, Scene, topic_partitions};

const ROLES: [&str; 3] = ["receiver", "director", "distributor"];

/// Every object of the cluster exists, owned by it; returns the Deployments.
async fn owned_objects(scene: &Scene, name: &str) -> Vec<Deployment> {
    let cluster = scene.cluster(name).await;
    let uid = cluster.uid().expect("a uid");
    let owned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.controller == Some(true))
    };
    assert!(owned(
        &scene
            .wait_for::<ServiceAccount>(name, |_| true)
            .await
            .metadata
    ));
    let settings = scene
        .wait_for::<ConfigMap>(&format!("{name}-settings"), |_| true)
        .await;
    assert!(owned(&settings.metadata));
    assert_eq!(
        settings.data.expect("settings")["NOTIF_KAFKA_TOPIC"],
        cluster.spec.kafka.topic
    );
    // The forward port: a secret made once, and only the cluster's own
    // directors and distributors let in.
    let forward = scene
        .wait_for::<Secret>(&format!("{name}-forward"), |_| true)
        .await;
    assert!(owned(&forward.metadata));
    let secret = forward.data.expect("data")["secret"].0.clone();
    assert_eq!(secret.len(), 64, "32 random bytes, in hex");
    let policy = scene
        .wait_for::<NetworkPolicy>(&format!("{name}-distributor-forward"), |_| true)
        .await;
    assert!(owned(&policy.metadata));
    let mut deployments = Vec::new();
    for role in ROLES {
        let object = format!("{name}-{role}");
        let deployment = scene.wait_for::<Deployment>(&object, |_| true).await;
        assert!(owned(&deployment.metadata), "{object} is owned");
        let pod = deployment
            .spec
            .as_ref()
            .and_then(|spec| spec.template.spec.as_ref())
            .expect("a pod template");
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some(cluster.spec.image.as_str())
        );
        assert_eq!(container.args.as_deref(), Some(&[role.to_string()][..]));
        let forward_secret = container
            .env
            .iter()
            .flatten()
            .find(|var| var.name == "NOTIF_FORWARD_SECRET")
            .and_then(|var| var.value_from.as_ref()?.secret_key_ref.as_ref())
            .map(|reference| reference.name.clone());
        let expected = (role != "receiver").then(|| format!("{name}-forward"));
        assert_eq!(forward_secret, expected, "{role}'s forward secret");
        assert!(owned(
            &scene.wait_for::<Service>(&object, |_| true).await.metadata
        ));
        assert!(owned(
            &scene
                .wait_for::<PodDisruptionBudget>(&object, |_| true)
                .await
                .metadata
        ));
        deployments.push(deployment);
    }
    deployments
}

/// The cluster's forward secret, as stored.
async fn forward_secret(scene: &Scene, name: &str) -> Vec<u8> {
    let secret = scene
        .wait_for::<Secret>(&format!("{name}-forward"), |_| true)
        .await;
    secret.data.expect("data")["secret"].0.clone()
}

async fn wait_for_topic(topic: &str, partitions: i32) {
    wait_until(
        &format!("topic {topic} has {partitions} partitions"),
        TIMEOUT,
        async || topic_partitions(topic).await == Some(partitions),
    )
    .await;
}

#[tokio::test]
async fn minimal_sample_becomes_the_service_and_ready_follows_the_pods() {
    let scene = Scene::new("op-minimal").await;
    let mut operator = Operator::start(&scene.namespace, "only").await;
    let applied = Instant::now();
    let name = scene.apply_sample("minimal", |_| {}).await;
    let deployments = owned_objects(&scene, &name).await;
    println!("apply to every object present: {:?}", applied.elapsed());
    let secret = forward_secret(&scene, &name).await;
    for deployment in &deployments {
        assert_eq!(deployment.spec.as_ref().unwrap().replicas, Some(1));
    }
    for role in ROLES {
        let hpa = scene
            .api::<HorizontalPodAutoscaler>()
            .get_opt(&format!("{name}-{role}"))
            .await;
        assert!(hpa.unwrap().is_none(), "no autoscaler unless asked for");
    }
    let topic = scene.spec(&name).await.kafka.topic;
    wait_for_topic(&topic, 12).await;

    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", Some("TopicReady"))
        .await;
    scene
        .wait_for_condition(&name, "Ready", "False", Some("ComponentsUnavailable"))
        .await;
    scene
        .wait_for_condition(&name, "Degraded", "False", None)
        .await;

    let kubelet = Kubelet::start(&scene.client, &scene.namespace);
    scene
        .wait_for_condition(&name, "Ready", "True", Some("AllComponentsReady"))
        .await;
    // Ready went from False to True by later reconciles: they kept the
    // secret that directors and distributors already hold.
    assert_eq!(
        forward_secret(&scene, &name).await,
        secret,
        "the forward secret is made once"
    );
    let status = scene.cluster(&name).await.status.expect("a status");
    let ready = status.ready_replicas.expect("ready replicas");
    assert_eq!(
        (ready.receiver, ready.director, ready.distributor),
        (1, 1, 1)
    );
    let endpoints = status.endpoints.expect("endpoints");
    assert_eq!(
        endpoints.publish,
        format!("http://{name}-receiver.{}.svc:8080", scene.namespace)
    );
    assert_eq!(
        endpoints.connect,
        format!("http://{name}-distributor.{}.svc:8080", scene.namespace)
    );

    kubelet.set_ready(false);
    scene
        .wait_for_condition(&name, "Ready", "False", Some("ComponentsUnavailable"))
        .await;

    let reasons = scene.event_reasons(&name).await;
    for reason in [
        "TopicUpdated",
        "AllComponentsReady",
        "ComponentsUnavailable",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "an Event {reason} among {reasons:?}"
        );
    }
    assert!(operator.metric("notif_operator_reconciles_total").await >= 1.0);
    assert_eq!(operator.metric("notif_operator_leader").await, 1.0);
    assert!(
        operator.stop(),
        "SIGTERM stops the operator cleanly:\n{}",
        operator.log()
    );
    scene.finish().await;
}

#[tokio::test]
async fn production_sample_gets_autoscalers_resources_and_a_load_balancer() {
    let scene = Scene::new("op-production").await;
    let _operator = Operator::start(&scene.namespace, "only").await;
    let name = scene.apply_sample("production", |_| {}).await;
    let deployments = owned_objects(&scene, &name).await;
    for deployment in &deployments {
        let spec = deployment.spec.as_ref().unwrap();
        // The API server defaults replicas; the operator must not own them.
        let operator_fields = deployment
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|f| f.manager.as_deref() == Some("notification-operator"))
            .filter_map(|f| f.fields_v1.as_ref())
            .map(|f| serde_json::to_string(&f.0).expect("JSON"))
            .collect::<String>();
        assert!(operator_fields.contains("f:template"), "{operator_fields}");
        assert!(
            !operator_fields.contains("f:replicas"),
            "the autoscaler owns replicas"
        );
        let resources = spec.template.spec.as_ref().unwrap().containers[0]
            .resources
            .clone();
        assert!(
            resources.and_then(|r| r.requests).is_some(),
            "requests from the spec"
        );
    }
    for (role, metric, min, max, target) in [
        (
            "receiver",
            "notif_publish_requests_per_second",
            3,
            12,
            "500",
        ),
        ("director", "notif_consumer_lag", 3, 48, "1k"),
        ("distributor", "notif_distributor_connections", 4, 40, "20k"),
    ] {
        let hpa = scene
            .wait_for::<HorizontalPodAutoscaler>(&format!("{name}-{role}"), |_| true)
            .await;
        assert_eq!(
            (hpa.spec.min_replicas, hpa.spec.max_replicas),
            (Some(min), max)
        );
        assert_eq!(hpa.spec.scale_target_ref.name, format!("{name}-{role}"));
        let pods = hpa.spec.metrics.unwrap()[0]
            .pods
            .clone()
            .expect("a Pods metric");
        assert_eq!(pods.metric.name, metric);
        assert_eq!(
            pods.target.average_value.map(|q| q.0).as_deref(),
            Some(target)
        );
    }
    let distributor = scene
        .wait_for::<Service>(&format!("{name}-distributor"), |_| true)
        .await;
    assert_eq!(
        distributor.spec.unwrap().type_.as_deref(),
        Some("LoadBalancer")
    );
    wait_for_topic(&scene.spec(&name).await.kafka.topic, 48).await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;
    scene.finish().await;
}

#[tokio::test]
async fn external_kafka_sample_wires_sasl_and_tls_and_reports_kafka_unreachable() {
    let scene = Scene::new("op-external").await;
    let _operator = Operator::start(&scene.namespace, "only").await;
    // Nothing listens there: the managed Kafka is out of reach.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let name = scene
        .apply_sample("external-kafka", |c| {
            c["spec"]["kafka"]["bootstrapServers"] = json!(nowhere)
        })
        .await;
    let deployments = owned_objects(&scene, &name).await;
    let director = &deployments[1];
    let env = director
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env
        .clone()
        .unwrap();
    let properties = env
        .iter()
        .find(|e| e.name == "NOTIF_KAFKA_PROPERTIES")
        .and_then(|e| e.value.clone())
        .expect("Kafka properties");
    assert!(
        properties.contains("security.protocol=SASL_SSL"),
        "{properties}"
    );
    assert!(
        properties.contains("sasl.mechanism=SCRAM-SHA-512"),
        "{properties}"
    );
    let password = env
        .iter()
        .find(|e| e.name == "KAFKA_SASL_PASSWORD")
        .expect("the password");
    let from = password.value_from.clone().unwrap().secret_key_ref.unwrap();
    assert_eq!(
        (from.name.as_str(), from.key.as_str()),
        ("managed-kafka", "password")
    );

    scene
        .wait_for_condition(&name, "KafkaTopicReady", "False", Some("KafkaUnavailable"))
        .await;
    scene
        .wait_for_condition(&name, "Degraded", "True", None)
        .await;
    scene
        .wait_for_condition(&name, "Ready", "False", Some("KafkaTopicNotReady"))
        .await;
    let reasons = scene.event_reasons(&name).await;
    assert!(
        reasons.iter().any(|r| r == "KafkaUnreachable"),
        "a Warning Event for the error among {reasons:?}"
    );

    // deletionPolicy: Delete, and the topic cannot be deleted: the cluster
    // stays, held by its finalizer, until someone decides otherwise.
    let cluster = scene.cluster(&name).await;
    assert!(
        cluster
            .finalizers()
            .iter()
            .any(|f| f == operator::controller::TOPIC_FINALIZER)
    );
    scene
        .clusters
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let held = scene.cluster(&name).await;
    assert!(held.metadata.deletion_timestamp.is_some());
    scene
        .clusters
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("the finalizer removed by hand");
    scene
        .wait_gone::<operator::crd::NotificationCluster>(&name)
        .await;
    scene.finish().await;
}
