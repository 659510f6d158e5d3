//! The operator as a process of its own, a NotificationCluster to give it,
//! and a stand-in for the kubelet the test environment does not have.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use operator::crd::{NotificationCluster, NotificationClusterSpec};
use serde_json::{Value, json};
use testenv::notifd::{free_port, terminate};
use testenv::{
    apply_secret, create_namespace, kafka_bootstrap, kube_client, unique_name, wait_until,
};

use crate::common::{
    FIELD_MANAGER, TIMEOUT, delete_namespace, install_crd, read_sample, samples_dir,
};

/// `notification-operator run`, on the test API server, for one namespace.
pub struct Operator {
    child: Option<Child>,
    pub admin: u16,
    log: PathBuf,
}

impl Operator {
    /// Starts an operator for `namespace` (its Lease there too) and waits
    /// until its /readyz answers.
    pub async fn start(namespace: &str, identity: &str) -> Operator {
        Operator::start_as(namespace, identity, None).await
    }

    /// The same, with another kubeconfig (a service account's rights).
    pub async fn start_as(namespace: &str, identity: &str, kubeconfig: Option<&Path>) -> Operator {
        let admin = free_port();
        let log = std::env::temp_dir().join(unique_name("operator-log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_notification-operator"));
        command
            .arg("run")
            .args(["--namespaces", namespace])
            .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
            .args(["--lease-namespace", namespace, "--lease-secs", "6"])
            .args(["--identity", identity])
            .env("NOTIF_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a file for its log"));
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let operator = Operator {
            child: Some(command.spawn().expect("notification-operator starts")),
            admin,
            log,
        };
        let readyz = format!("http://127.0.0.1:{admin}/readyz");
        wait_until("the operator's /readyz", TIMEOUT, async || {
            reqwest::get(&readyz)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        operator
    }

    /// The sum of a metric's samples on /metrics (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.admin))
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics has a body");
        testenv::metric_sum(&text, name)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and waits; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        self.child.take().is_some_and(terminate)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A namespace with the CRD installed and the Secrets the samples name.
pub struct Scene {
    pub client: Client,
    pub namespace: String,
    pub clusters: Api<NotificationCluster>,
}

impl Scene {
    pub async fn new(prefix: &str) -> Scene {
        let client = kube_client().await;
        install_crd(&client).await;
        let namespace = create_namespace(&client, prefix).await;
        for secret in [
            ("notif-redis", "url", "redis://redis:6379"),
            ("notif-postgres", "url", "postgres://notif@postgres/notif"),
            ("notif-publishers", "hashes", "sha256:00"),
            ("notif-jwt", "secret", "a-test-secret"),
            ("managed-kafka", "username", "acme"),
            ("managed-kafka", "password", "hunter2"),
            ("managed-kafka-ca", "ca.crt", "not a certificate"),
        ] {
            apply_secret(&client, &namespace, FIELD_MANAGER, secret).await;
        }
        let clusters = Api::namespaced(client.clone(), &namespace);
        Scene {
            client,
            namespace,
            clusters,
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies a sample as a user would, on the test Kafka with a topic of
    /// the test's own; `edit` changes it first. Returns the cluster's name.
    pub async fn apply_sample(&self, sample: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut cluster = read_sample(&samples_dir().join(format!("{sample}.yaml")));
        cluster["spec"]["kafka"]["bootstrapServers"] = json!(kafka_bootstrap());
        cluster["spec"]["kafka"]["replicationFactor"] = json!(1);
        cluster["spec"]["kafka"]["topic"] = json!(unique_name(&format!("nc-{sample}")));
        edit(&mut cluster);
        self.apply(&cluster).await;
        cluster["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_string()
    }

    /// Applies (server-side) a cluster as the user.
    pub async fn apply(&self, cluster: &Value) {
        let name = cluster["metadata"]["name"].as_str().expect("a name");
        self.clusters
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(cluster),
            )
            .await
            .unwrap_or_else(|e| panic!("cannot apply NotificationCluster {name}: {e}"));
    }

    /// Changes the spec by a merge patch, as `kubectl patch --type merge` would.
    pub async fn patch_spec(&self, name: &str, spec: Value) {
        self.clusters
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap_or_else(|e| panic!("cannot patch NotificationCluster {name}: {e}"));
    }

    pub async fn cluster(&self, name: &str) -> NotificationCluster {
        self.clusters
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("cannot read NotificationCluster {name}: {e}"))
    }

    pub async fn spec(&self, name: &str) -> NotificationClusterSpec {
        self.cluster(name).await.spec
    }

    /// The status of condition `type_`, once the status reports the current generation.
    pub async fn condition(&self, name: &str, type_: &str) -> Option<(String, String)> {
        let cluster = self.cluster(name).await;
        let status = cluster.status?;
        if status.observed_generation != cluster.metadata.generation {
            return None;
        }
        status
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status, c.reason))
    }

    /// Waits until condition `type_` has `status` (and `reason`, when given).
    pub async fn wait_for_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) {
        let what = format!("{name}: condition {type_}={status} ({reason:?})");
        wait_until(&what, TIMEOUT, async || {
            self.condition(name, type_)
                .await
                .is_some_and(|(s, r)| s == status && reason.is_none_or(|reason| reason == r))
        })
        .await;
    }

    /// Waits until the object `name` of kind K exists and `check` holds for it.
    pub async fn wait_for<K>(&self, name: &str, mut check: impl FnMut(&K) -> bool) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let api = self.api::<K>();
        let kind = K::kind(&Default::default()).to_string();
        let mut found = None;
        wait_until(&format!("{kind} {name}"), TIMEOUT, async || {
            match api.get_opt(name).await {
                Ok(Some(object)) if check(&object) => {
                    found = Some(object);
                    true
                }
                _ => false,
            }
        })
        .await;
        found.expect("found")
    }

    /// Waits until there is no object `name` of kind K.
    pub async fn wait_gone<K>(&self, name: &str)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let api = self.api::<K>();
        let kind = K::kind(&Default::default()).to_string();
        wait_until(&format!("{kind} {name} is gone"), TIMEOUT, async || {
            matches!(api.get_opt(name).await, Ok(None))
        })
        .await;
    }

    /// The reasons of the Events recorded about cluster `name`.
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        self.api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("Events list")
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Scales a Deployment as someone with kubectl would (`kubectl scale`).
    pub async fn scale_by_hand(&self, deployment: &str, replicas: i32) {
        self.api::<Deployment>()
            .patch(
                deployment,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .unwrap_or_else(|e| panic!("cannot scale {deployment}: {e}"));
    }

    /// Deletes a cluster and waits until it is gone (its finalizer done).
    pub async fn delete_cluster(&self, name: &str) {
        self.clusters
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("cannot delete NotificationCluster {name}: {e}"));
        self.wait_gone::<NotificationCluster>(name).await;
    }

    /// Removes the namespace of a test that passed.
    pub async fn finish(self) {
        delete_namespace(&self.client, &self.namespace).await;
    }
}

/// A Deployment's `spec.replicas`.
pub fn replicas(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref()?.replicas
}

/// What the kubelet would do for the namespace's pods: report them running
/// and ready (or not ready), so that ReplicaSets and Deployments count them.
pub struct Kubelet {
    ready: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    pub fn start(client: &Client, namespace: &str) -> Kubelet {
        let ready = Arc::new(AtomicBool::new(true));
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let wanted = ready.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    let ready = wanted.load(Ordering::SeqCst);
                    for pod in list {
                        if pod.metadata.deletion_timestamp.is_none() && is_ready(&pod) != ready {
                            let _ = pods
                                .patch_status(
                                    &pod.name_any(),
                                    &PatchParams::default(),
                                    &Patch::Merge(pod_status(ready)),
                                )
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Kubelet { ready, task }
    }

    /// From now on, pods report `ready`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_status(ready: bool) -> Value {
    let now = Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "Ready", "status": status, "lastTransitionTime": now},
        ],
        "containerStatuses": [{
            "name": "notifd", "image": "notifd", "imageID": "", "ready": ready,
            "restartCount": 0, "started": true, "state": {"running": {"startedAt": now}},
        }],
    }})
}

/// Kafka topics, through the test environment's admin client.
pub async fn topic_partitions(topic: &str) -> Option<i32> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = testenv::kafka::client_config()
            .create()
            .expect("a Kafka client");
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("Kafka's metadata");
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len() as i32)
    })
    .await
    .expect("the metadata task")
}

/// The topic's `retention.ms`, as Kafka reports it.
pub async fn topic_retention_ms(topic: &str) -> Option<String> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = testenv::kafka::client_config()
        .create()
        .expect("a Kafka admin client");
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("Kafka describes the topic");
    results
        .into_iter()
        .next()?
        .ok()?
        .get("retention.ms")?
        .value
        .clone()
}
