//! The operator's figures: how long from applying a NotificationCluster to
//! every object it makes being there, and how often an unchanged cluster is
//! reconciled (near zero: no hot loop). On the test environment's API
//! server and Kafka, with the release build of `notification-operator`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use operator::crd::NotificationCluster;
use serde_json::json;

const MANAGER: &str = "notif-bench";

/// Applies `clusters` clusters one after another, then watches them idle for `idle`.
pub async fn run(binary: &Path, clusters: usize, idle: Duration) -> anyhow::Result<()> {
    let client = testenv::kube_client().await;
    let crd = operator::crd::crd();
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            &crd.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .context("installing the CRD")?;
    let namespace = testenv::create_namespace(&client, "bench-operator").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for name in [
        "notif-redis",
        "notif-postgres",
        "notif-publishers",
        "notif-jwt",
    ] {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                            "stringData": {"url": "x", "hashes": "x", "secret": "x"}});
        secrets
            .patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&secret))
            .await?;
    }
    let admin = testenv::notifd::free_port();
    let mut operator = OperatorProcess(
        Command::new(binary)
            .args([
                "run",
                "--namespaces",
                &namespace,
                "--lease-namespace",
                &namespace,
            ])
            .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
            .env("NOTIF_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?,
    );
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    wait("the operator leads", Duration::from_secs(60), async || {
        metric(&metrics, "notif_operator_leader").await == Some(1.0)
    })
    .await?;

    let clusters_api: Api<NotificationCluster> = Api::namespaced(client.clone(), &namespace);
    let mut to_objects = Vec::new();
    let mut to_ready_topic = Vec::new();
    for i in 0..clusters {
        let name = format!("bench-{i}");
        let cluster = json!({
            "apiVersion": "notifications.saasaparilla.dev/v1alpha1",
            "kind": "NotificationCluster",
            "metadata": {"name": name},
            "spec": {
                "image": "notifd:bench",
                "kafka": {"bootstrapServers": testenv::kafka_bootstrap(), "replicationFactor": 1,
                          "topic": testenv::unique_name("bench-operator")},
                "redis": {"url": {"name": "notif-redis", "key": "url"}},
                "postgres": {"url": {"name": "notif-postgres", "key": "url"}},
                "auth": {"apiKeyHashes": {"name": "notif-publishers", "key": "hashes"},
                         "jwt": {"secret": {"name": "notif-jwt", "key": "secret"}}},
                "deletionPolicy": "Delete",
            },
        });
        let applied = Instant::now();
        clusters_api
            .patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(&cluster))
            .await?;
        wait("every object", Duration::from_secs(60), async || {
            all_objects(&client, &namespace, &name).await
        })
        .await?;
        to_objects.push(applied.elapsed());
        wait("KafkaTopicReady", Duration::from_secs(60), async || {
            topic_ready(&clusters_api, &name).await
        })
        .await?;
        to_ready_topic.push(applied.elapsed());
    }
    println!(
        "operator: apply to all 13 objects present: median {:?}, max {:?} over {clusters} clusters",
        median(&mut to_objects),
        to_objects.iter().max().copied().unwrap_or_default()
    );
    println!(
        "operator: apply to KafkaTopicReady=True (topic created): median {:?}",
        median(&mut to_ready_topic)
    );

    // Let the last status writes and Deployment controller updates settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = metric(&metrics, "notif_operator_reconciles_total")
        .await
        .unwrap_or(0.0);
    tokio::time::sleep(idle).await;
    let after = metric(&metrics, "notif_operator_reconciles_total")
        .await
        .unwrap_or(0.0);
    println!(
        "operator: {} reconciles of {clusters} unchanged clusters in {:?} ({:.1} per cluster per minute; one periodic resync a minute is expected)",
        after - before,
        idle,
        (after - before) / clusters as f64 * 60.0 / idle.as_secs_f64()
    );

    for i in 0..clusters {
        clusters_api
            .delete(&format!("bench-{i}"), &DeleteParams::default())
            .await?;
    }
    wait(
        "the clusters and their topics are deleted",
        Duration::from_secs(120),
        async || {
            clusters_api
                .list(&Default::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
        },
    )
    .await?;
    operator.stop();
    Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await?;
    Ok(())
}

/// The ServiceAccount, the ConfigMap, and a Deployment, Service and
/// PodDisruptionBudget per component.
async fn all_objects(client: &Client, namespace: &str, name: &str) -> bool {
    async fn has<K>(client: &Client, namespace: &str, name: &str) -> bool
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        matches!(api.get_opt(name).await, Ok(Some(_)))
    }
    if !has::<ServiceAccount>(client, namespace, name).await
        || !has::<ConfigMap>(client, namespace, &format!("{name}-settings")).await
    {
        return false;
    }
    for role in ["receiver", "director", "distributor"] {
        let object = format!("{name}-{role}");
        if !has::<Deployment>(client, namespace, &object).await
            || !has::<Service>(client, namespace, &object).await
            || !has::<PodDisruptionBudget>(client, namespace, &object).await
        {
            return false;
        }
    }
    true
}

async fn topic_ready(clusters: &Api<NotificationCluster>, name: &str) -> bool {
    let Ok(cluster) = clusters.get(name).await else {
        return false;
    };
    cluster.status.is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "KafkaTopicReady" && c.status == "True")
    })
}

async fn metric(url: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    Some(testenv::metric_sum(&text, name))
}

/// Polls `check` every 10 ms until it holds, or fails after `limit`.
async fn wait(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !check().await {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Stopped with SIGTERM, or killed if dropped early.
struct OperatorProcess(Child);

impl OperatorProcess {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
