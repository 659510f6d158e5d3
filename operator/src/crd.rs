//! The `NotificationCluster` custom resource: what a user asks for (the spec)
//! and what the operator reports (the status).
//!
//! The doc comments below become the CRD's field descriptions, the serde
//! defaults become its schema defaults, and the `#[schemars]`/`#[x_kube]`
//! attributes its validation (ranges, enums, CEL rules), so the API server
//! refuses a bad spec before the controller ever sees it. `crds/` holds the
//! CRD as `notification-operator crd` prints it.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One SaaSaparilla Notifications service: its receivers, directors and
/// distributors, the Kafka topic they share, and where they find Redis,
/// PostgreSQL and their credentials.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
// Clippy takes the printer columns' repeated `type_ = "string"` for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "notifications.saasaparilla.dev",
    version = "v1alpha1",
    kind = "NotificationCluster",
    namespaced,
    shortname = "nc",
    status = "NotificationClusterStatus",
    derive = "PartialEq",
    doc = "A SaaSaparilla Notifications service, run by notification-operator.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether every component is ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Publish",
        type_ = "string",
        description = "Where publishers send notifications",
        json_path = ".status.endpoints.publish"
    ),
    printcolumn(
        name = "Connect",
        type_ = "string",
        description = "Where clients connect to receive notifications",
        json_path = ".status.endpoints.connect"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NotificationClusterSpec {
    /// The notifd container image every component runs, e.g. `ghcr.io/saasaparilla/notifd:0.1.0`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// The Kafka cluster and the topic that carries the notifications.
    pub kafka: KafkaSpec,
    /// The Redis server that holds presence (which distributor holds which recipient).
    pub redis: RedisSpec,
    /// The PostgreSQL database that holds the inbox of notifications not yet delivered.
    pub postgres: PostgresSpec,
    /// Who may publish and who may connect.
    pub auth: AuthSpec,
    /// How notifications are delivered: attempts, backoff, acknowledgement and inbox retention.
    #[serde(default)]
    pub delivery: DeliverySpec,
    /// Limits on the connections publishers and clients hold on the receivers and distributors.
    #[serde(default)]
    pub connections: ConnectionsSpec,
    /// The receivers, which accept published notifications over HTTP and write them to Kafka.
    #[serde(default)]
    pub receiver: ComponentSpec,
    /// The directors, which read Kafka and route each notification to its recipient's distributor or inbox.
    #[serde(default)]
    pub director: ComponentSpec,
    /// The distributors, which hold the clients' WebSocket and SSE connections.
    #[serde(default)]
    pub distributor: DistributorSpec,
    /// What happens to the Kafka topic when the NotificationCluster is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Pausing reconciliation, or stopping the service while keeping its data.
    #[serde(default)]
    pub cluster_operation: ClusterOperation,
}

/// A key of a Secret in the NotificationCluster's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key within the Secret whose value is used.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The Kafka cluster and the notifications topic.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// Kafka's bootstrap servers, `host:port[,host:port...]`.
    #[schemars(length(min = 1))]
    pub bootstrap_servers: String,
    /// The topic that carries the notifications; the operator creates it. It cannot be renamed.
    #[serde(default = "default_topic")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,249}$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("topic cannot be changed"))]
    pub topic: String,
    /// The topic's partitions, the most directors that share the work. It may grow, never shrink:
    /// Kafka cannot remove partitions, and per-recipient order depends on the partition count.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 10000))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("partitions may only grow"))]
    pub partitions: i32,
    /// Copies of each partition Kafka keeps; at most the number of brokers.
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 32))]
    pub replication_factor: i32,
    /// Hours Kafka keeps notifications in the topic (the topic's `retention.ms`).
    #[serde(default = "default_retention_hours")]
    #[schemars(range(min = 1))]
    pub retention_hours: i64,
    /// SASL authentication to Kafka; none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSasl>,
    /// TLS to Kafka; plaintext when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
}

fn default_topic() -> String {
    "notifications".into()
}
fn default_partitions() -> i32 {
    12
}
fn default_replication_factor() -> i32 {
    3
}
fn default_retention_hours() -> i64 {
    7 * 24
}

/// SASL credentials for Kafka, from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSasl {
    /// The SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The SASL user name.
    pub username: SecretKeyRef,
    /// The SASL password.
    pub password: SecretKeyRef,
}

/// A SASL mechanism Kafka supports and notifd can use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// TLS to Kafka. An empty object turns TLS on with the image's trusted roots.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTls {
    /// PEM certificate(s) of the authority that signed the brokers' certificates, when it is not a public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<SecretKeyRef>,
}

/// Where the Redis server, or the Redis Cluster, is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisSpec {
    /// The Redis URL, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS); for a
    /// Redis Cluster, the URLs of some of its masters, comma-separated.
    pub url: SecretKeyRef,
    /// Whether `url` names a Redis Cluster, over whose masters presence spreads by recipient.
    #[serde(default)]
    pub cluster: bool,
    /// The prefix of every key notifd writes, so that services can share a Redis.
    #[serde(default = "default_redis_key_prefix")]
    pub key_prefix: String,
}

fn default_redis_key_prefix() -> String {
    "notif:".into()
}

/// Where the PostgreSQL database is, or the inbox's shards.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.shardsBefore) || self.sharded").message("shardsBefore needs sharded: true"))]
#[x_kube(validation = Rule::new("!self.storeAsBefore || has(self.shardsBefore)").message("storeAsBefore needs shardsBefore"))]
pub struct PostgresSpec {
    /// The PostgreSQL URL, `postgres://user:password@host:port/database`; for a sharded inbox,
    /// the URLs of its shards, comma-separated, a new shard always last.
    pub url: SecretKeyRef,
    /// Whether `url` lists the inbox's shards, over which recipients' rows spread by a hash
    /// of the recipient.
    #[serde(default)]
    pub sharded: bool,
    /// While shards are being added: how many of the listed shards there were before. The
    /// recipients that move are read from both places (docs/scaling.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub shards_before: Option<u32>,
    /// While shards are being added: new notifications are still stored where they were
    /// before, until every pod reads both places.
    #[serde(default)]
    pub store_as_before: bool,
}

/// Credentials of publishers and clients.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.apiKeyHashes) || self.allowAnonymousPublish").message("set apiKeyHashes, or allowAnonymousPublish: true"))]
pub struct AuthSpec {
    /// Publisher API key hashes, one `sha256:<hex>` per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_hashes: Option<SecretKeyRef>,
    /// Let anyone publish without credentials (only on a network you trust).
    #[serde(default)]
    pub allow_anonymous_publish: bool,
    /// How the clients' JWTs are verified.
    pub jwt: JwtSpec,
}

/// How JWTs are verified: with a shared secret (HS256) or a public key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secret) != has(self.publicKey)").message("set exactly one of secret and publicKey"))]
pub struct JwtSpec {
    /// The shared secret that signs JWTs (HS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretKeyRef>,
    /// The PEM public key that verifies JWTs, of the algorithm `algorithm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<SecretKeyRef>,
    /// The algorithm of `publicKey`: `RS256`, `ES256` or `EdDSA`; unused with `secret`.
    #[serde(default)]
    pub algorithm: JwtAlgorithm,
    /// The `aud` every token must name (`--jwt-audience`), so that a token
    /// minted for another service with the same key is refused. Unset: the
    /// NotificationCluster's name. Empty: no audience is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The `iss` every token must carry (`--jwt-issuer`); unset, any issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// An asymmetric JWT algorithm notifd verifies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum JwtAlgorithm {
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    EdDSA,
}

/// Delivery settings; each is a notifd flag of the same name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySpec {
    /// Live delivery attempts before a notification goes to the inbox (`--delivery-attempts`).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1, max = 100))]
    pub attempts: i32,
    /// Milliseconds before the first retry of a live delivery, doubling after (`--retry-backoff-ms`).
    #[serde(default = "default_retry_backoff_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub retry_backoff_ms: i64,
    /// Seconds a live notification waits for a client's acknowledgement (`--ack-timeout-secs`).
    #[serde(default = "default_ack_timeout_secs")]
    #[schemars(range(min = 1, max = 3600))]
    pub ack_timeout_secs: i64,
    /// Hours a notification waits in the inbox for its recipient before it is purged
    /// (`--inbox-retention-hours`).
    #[serde(default = "default_inbox_retention_hours")]
    #[schemars(range(min = 1))]
    pub inbox_retention_hours: i64,
    /// The most notifications of one recipient sent live and not yet acknowledged
    /// (`--delivery-window`).
    #[serde(default = "default_window")]
    #[schemars(range(min = 1, max = 100000))]
    pub window: i64,
    /// The most notifications a director holds at once; it stops reading the topic
    /// there while routing catches up (`--max-held`).
    #[serde(default = "default_max_held")]
    #[schemars(range(min = 1))]
    pub max_held: i64,
}

/// Limits on the connections of the public ports; each is a notifd flag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionsSpec {
    /// The most connections one remote address (an IPv6 address's /64) may hold on a pod
    /// (`--max-connections-per-address`); 0, the default here, for no such limit. Behind a
    /// Service, pods usually see the addresses of nodes and load balancers, each shared by
    /// many clients: set it where pods see clients' own addresses (`externalTrafficPolicy:
    /// Local`, say), and name the proxies in between in `trustedProxies`.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_per_address: i64,
    /// Networks (CIDRs) of the load balancers and proxies in front of the pods, whose
    /// connections are not limited per address (`--trusted-proxies`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 43)))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("each trusted proxy is a CIDR, like 10.0.0.0/8"))]
    pub trusted_proxies: Vec<String>,
}

fn default_attempts() -> i32 {
    3
}
fn default_retry_backoff_ms() -> i64 {
    200
}
fn default_ack_timeout_secs() -> i64 {
    10
}
fn default_inbox_retention_hours() -> i64 {
    7 * 24
}
fn default_window() -> i64 {
    128
}
fn default_max_held() -> i64 {
    10_000
}

impl Default for DeliverySpec {
    fn default() -> Self {
        DeliverySpec {
            attempts: default_attempts(),
            retry_backoff_ms: default_retry_backoff_ms(),
            ack_timeout_secs: default_ack_timeout_secs(),
            inbox_retention_hours: default_inbox_retention_hours(),
            window: default_window(),
            max_held: default_max_held(),
        }
    }
}

/// How many pods of a component run, and with what.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Pods to run; ignored while autoscaling is enabled.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// CPU and memory requests and limits of the notifd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A HorizontalPodAutoscaler on the component's own metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

fn default_replicas() -> i32 {
    1
}

impl Default for ComponentSpec {
    fn default() -> Self {
        ComponentSpec {
            replicas: default_replicas(),
            resources: None,
            autoscaling: None,
        }
    }
}

/// The distributors: a component, plus the Service clients connect through.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributorSpec {
    /// Pods, resources and autoscaling.
    #[serde(flatten)]
    pub component: ComponentSpec,
    /// The type of the Service clients connect through: `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(default)]
    pub service_type: ServiceType,
}

/// Autoscaling bounds and target of a component. The metric is the
/// component's own: requests per second (receiver), consumer lag in
/// notifications (director), open connections (distributor), per pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must not exceed maxReplicas"))]
pub struct Autoscaling {
    /// Whether the operator makes a HorizontalPodAutoscaler; `replicas` is ignored while it does.
    #[serde(default)]
    pub enabled: bool,
    /// The fewest pods.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// The most pods.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// The average of the metric per pod to keep under; the operator picks one per component when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target: Option<i64>,
}

fn default_min_replicas() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    10
}

/// The type of a Kubernetes Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// What the operator does to the Kafka topic when the NotificationCluster is
/// deleted: `Keep` it (the default: data outlives the object) or `Delete` it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Keep,
    Delete,
}

/// Operations on the whole cluster. When both are set, `reconciliationPaused`
/// wins: the operator changes nothing, so it does not stop the pods either.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOperation {
    /// The operator leaves everything as it is (status still reports what it sees).
    #[serde(default)]
    pub reconciliation_paused: bool,
    /// Every component is scaled to zero pods; the topic, the inbox and the settings stay.
    #[serde(default)]
    pub stopped: bool,
}

/// What the operator last saw of the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NotificationClusterStatus {
    /// The `metadata.generation` of the spec this status reports on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded` and `KafkaTopicReady`; one per type, so that
    /// server-side apply merges them by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Ready pods of each component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<ComponentReplicas>,
    /// Where publishers and clients reach the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
}

/// A count per component.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentReplicas {
    /// Receivers.
    pub receiver: i32,
    /// Directors.
    pub director: i32,
    /// Distributors.
    pub distributor: i32,
}

/// The service's URLs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// The receivers' base URL, where publishers `POST /v1/notifications`.
    pub publish: String,
    /// The distributors' base URL, where clients connect (WebSocket, SSE, polling).
    pub connect: String,
}

impl KafkaSpec {
    /// librdkafka's `security.protocol` for the spec's SASL and TLS, or none for plaintext.
    pub fn security_protocol(&self) -> Option<&'static str> {
        match (self.sasl.is_some(), self.tls.is_some()) {
            (false, false) => None,
            (false, true) => Some("SSL"),
            (true, false) => Some("SASL_PLAINTEXT"),
            (true, true) => Some("SASL_SSL"),
        }
    }
}

impl SaslMechanism {
    /// The mechanism's name, as Kafka and librdkafka spell it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The CRD as the API server takes it.
pub fn crd() -> CustomResourceDefinition {
    NotificationCluster::crd()
}

/// The CRD as YAML, as `notification-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&crd())
}

/// Where the committed CRD is, relative to the repository's root.
pub const CRD_PATH: &str = "crds/notificationclusters.notifications.saasaparilla.dev.yaml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crds_are_fresh() {
        let generated = crd_yaml().expect("the CRD serializes");
        let chart_copy = CRD_PATH.replace("crds/", "charts/notification-operator/crds/");
        for path in [CRD_PATH, chart_copy.as_str()] {
            let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(path);
            let committed = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(committed == generated, "{path} is stale: run `just crd`");
        }
    }

    /// Every field of ours has a doc comment, which `kubectl explain` shows.
    #[test]
    fn every_field_has_a_description() {
        fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
            let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
                return;
            };
            for (name, property) in properties {
                let path = format!("{path}.{name}");
                if property.get("description").is_none() {
                    missing.push(path.clone());
                }
                walk(&path, property, missing);
                if let Some(items) = property.get("items") {
                    walk(&path, items, missing);
                }
            }
        }
        let crd = serde_json::to_value(crd()).expect("the CRD serializes");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut missing = Vec::new();
        walk("", schema, &mut missing);
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }

    #[test]
    fn spec_defaults_match_schema_defaults() {
        let spec: NotificationClusterSpec = serde_json::from_value(serde_json::json!({
            "image": "notifd:test",
            "kafka": {"bootstrapServers": "kafka:9092"},
            "redis": {"url": {"name": "redis", "key": "url"}},
            "postgres": {"url": {"name": "postgres", "key": "url"}},
            "auth": {"jwt": {"secret": {"name": "jwt", "key": "secret"}}},
        }))
        .expect("a minimal spec");
        assert_eq!(spec.kafka.topic, "notifications");
        assert_eq!(spec.kafka.partitions, 12);
        assert_eq!(spec.delivery, DeliverySpec::default());
        assert_eq!(spec.receiver.replicas, 1);
        assert_eq!(spec.distributor.service_type, ServiceType::ClusterIP);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Keep);
    }
}
