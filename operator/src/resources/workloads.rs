//! The Deployment of each component: `notifd <role>` with the settings from
//! the ConfigMap, secrets from the Secrets the spec names, and probes on the
//! admin port.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler, ObjectFieldSelector,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Component, forward, owned_meta, ports, selector, settings};
use crate::crd::{NotificationCluster, SecretKeyRef};

/// The Deployment of `component`, whose pods carry `config_hash`.
pub fn deployment(nc: &NotificationCluster, component: Component, config_hash: &str) -> Deployment {
    let labels = selector(nc, component);
    let replicas = if nc.spec.cluster_operation.stopped {
        Some(0)
    } else if component.autoscaled(nc) {
        None
    } else {
        Some(component.spec(nc).replicas)
    };
    let mut pod = Pod::default();
    pod.component(nc, component);
    Deployment {
        metadata: owned_meta(nc, component.object_name(nc), Some(component)),
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        settings::HASH_ANNOTATION.to_string(),
                        config_hash.to_string(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod.spec(nc, component)),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// What a component's container needs beyond the ConfigMap: environment
/// variables and the Secret volumes behind some of them.
#[derive(Default)]
struct Pod {
    env: Vec<EnvVar>,
    volumes: Vec<Volume>,
    mounts: Vec<VolumeMount>,
}

impl Pod {
    fn component(&mut self, nc: &NotificationCluster, component: Component) {
        let spec = &nc.spec;
        match component {
            Component::Receiver => {
                self.kafka(nc);
                self.jwt(nc);
                if let Some(hashes) = &spec.auth.api_key_hashes {
                    let path = self.secret_file("api-keys", hashes);
                    self.value("NOTIF_API_KEY_HASHES_FILE", path);
                }
            }
            Component::Director => {
                self.kafka(nc);
                self.secret("NOTIF_FORWARD_SECRET", &forward::secret_ref(nc));
                self.postgres(nc);
                self.redis(nc);
            }
            Component::Distributor => {
                self.jwt(nc);
                self.secret("NOTIF_FORWARD_SECRET", &forward::secret_ref(nc));
                self.postgres(nc);
                self.redis(nc);
                self.field("POD_NAME", "metadata.name");
                self.field("POD_IP", "status.podIP");
                self.value("NOTIF_DISTRIBUTOR_ID", "$(POD_NAME)".into());
                self.value(
                    "NOTIF_FORWARD_ADVERTISE_ADDR",
                    format!("$(POD_IP):{}", ports::FORWARD),
                );
            }
        }
    }

    /// Where the inbox is: one database, or shards, maybe some being added.
    fn postgres(&mut self, nc: &NotificationCluster) {
        let postgres = &nc.spec.postgres;
        let name = match postgres.sharded {
            true => "NOTIF_POSTGRES_SHARD_URLS",
            false => "NOTIF_POSTGRES_URL",
        };
        self.secret(name, &postgres.url);
        if let Some(before) = postgres.shards_before {
            self.value("NOTIF_POSTGRES_SHARDS_BEFORE", before.to_string());
        }
        if postgres.store_as_before {
            self.value("NOTIF_POSTGRES_STORE_AS_BEFORE", "true".into());
        }
    }

    /// Where presence is: one Redis, or a Redis Cluster.
    fn redis(&mut self, nc: &NotificationCluster) {
        let redis = &nc.spec.redis;
        let name = match redis.cluster {
            true => "NOTIF_REDIS_CLUSTER_URLS",
            false => "NOTIF_REDIS_URL",
        };
        self.secret(name, &redis.url);
    }

    /// SASL and TLS to Kafka as librdkafka properties. Credentials come in as
    /// variables of their own, which Kubernetes expands in the property list.
    fn kafka(&mut self, nc: &NotificationCluster) {
        let kafka = &nc.spec.kafka;
        let mut properties = Vec::new();
        if let Some(protocol) = kafka.security_protocol() {
            properties.push(format!("security.protocol={protocol}"));
        }
        if let Some(sasl) = &kafka.sasl {
            self.secret("KAFKA_SASL_USERNAME", &sasl.username);
            self.secret("KAFKA_SASL_PASSWORD", &sasl.password);
            properties.push(format!("sasl.mechanism={}", sasl.mechanism.name()));
            properties.push("sasl.username=$(KAFKA_SASL_USERNAME)".into());
            properties.push("sasl.password=$(KAFKA_SASL_PASSWORD)".into());
        }
        if let Some(ca) = kafka
            .tls
            .as_ref()
            .and_then(|tls| tls.ca_certificate.as_ref())
        {
            let path = self.secret_file("kafka-ca", ca);
            properties.push(format!("ssl.ca.location={path}"));
        }
        if !properties.is_empty() {
            self.value("NOTIF_KAFKA_PROPERTIES", properties.join(","));
        }
    }

    fn jwt(&mut self, nc: &NotificationCluster) {
        let jwt = &nc.spec.auth.jwt;
        if let Some(secret) = &jwt.secret {
            self.secret("NOTIF_JWT_SECRET", secret);
        }
        if let Some(key) = &jwt.public_key {
            let path = self.secret_file("jwt-public-key", key);
            self.value("NOTIF_JWT_PUBLIC_KEY_FILE", path);
        }
    }

    fn value(&mut self, name: &str, value: String) {
        self.env.push(EnvVar {
            name: name.into(),
            value: Some(value),
            value_from: None,
        });
    }

    fn secret(&mut self, name: &str, secret: &SecretKeyRef) {
        self.env.push(EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.name.clone(),
                    key: secret.key.clone(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
        });
    }

    fn field(&mut self, name: &str, path: &str) {
        self.env.push(EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
        });
    }

    /// Mounts one key of a Secret read-only, and returns the file's path.
    fn secret_file(&mut self, volume: &str, secret: &SecretKeyRef) -> String {
        let dir = format!("/etc/notifd/{volume}");
        self.volumes.push(Volume {
            name: volume.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.name.clone()),
                items: Some(vec![KeyToPath {
                    key: secret.key.clone(),
                    path: secret.key.clone(),
                    mode: None,
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        self.mounts.push(VolumeMount {
            name: volume.into(),
            mount_path: dir.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        format!("{dir}/{}", secret.key)
    }

    fn spec(self, nc: &NotificationCluster, component: Component) -> PodSpec {
        let mut container_ports = vec![port("admin", ports::ADMIN)];
        if component != Component::Director {
            container_ports.push(port("http", ports::HTTP));
        }
        if component == Component::Distributor {
            container_ports.push(port("forward", ports::FORWARD));
        }
        PodSpec {
            service_account_name: Some(super::account::name(nc)),
            // notifd never calls the Kubernetes API.
            automount_service_account_token: Some(false),
            // Long enough for the preStop pause and a SIGTERM drain
            // (`--drain-timeout-secs`, 10 s by default).
            termination_grace_period_seconds: Some(30),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![Container {
                name: "notifd".into(),
                image: Some(nc.spec.image.clone()),
                args: Some(vec![component.role().into()]),
                env_from: Some(vec![EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: settings::name(nc),
                        optional: None,
                    }),
                    ..EnvFromSource::default()
                }]),
                env: (!self.env.is_empty()).then_some(self.env),
                volume_mounts: (!self.mounts.is_empty()).then_some(self.mounts),
                ports: Some(container_ports),
                resources: component.spec(nc).resources.clone(),
                liveness_probe: Some(probe("/healthz")),
                // The process only (started, not draining): a server away
                // must not take every replica out of its Service at once.
                readiness_probe: Some(probe("/readyz")),
                // A terminating pod leaves its Service's endpoints at once,
                // but load balancers and proxies learn of it a moment later:
                // it serves on for that moment before SIGTERM starts the
                // drain, so that no new connection is refused meanwhile.
                lifecycle: Some(Lifecycle {
                    pre_stop: Some(LifecycleHandler {
                        sleep: Some(SleepAction {
                            seconds: PRE_STOP_SECS,
                        }),
                        ..LifecycleHandler::default()
                    }),
                    ..Lifecycle::default()
                }),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    read_only_root_filesystem: Some(true),
                    capabilities: Some(Capabilities {
                        drop: Some(vec!["ALL".into()]),
                        add: None,
                    }),
                    ..SecurityContext::default()
                }),
                ..Container::default()
            }],
            volumes: (!self.volumes.is_empty()).then_some(self.volumes),
            ..PodSpec::default()
        }
    }
}

/// How long a terminating pod serves on before SIGTERM.
const PRE_STOP_SECS: i64 = 5;

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::cluster;
    use serde_json::json;

    fn env(deployment: &Deployment) -> BTreeMap<String, EnvVar> {
        let pod = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        pod.containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.clone()))
            .collect()
    }

    #[test]
    fn each_role_gets_its_secrets_and_nothing_more() {
        let nc = cluster(json!({}));
        let director = env(&deployment(&nc, Component::Director, "h"));
        assert!(director.contains_key("NOTIF_POSTGRES_URL"));
        assert!(!director.contains_key("NOTIF_JWT_SECRET"));
        let receiver = env(&deployment(&nc, Component::Receiver, "h"));
        assert!(receiver.contains_key("NOTIF_JWT_SECRET"));
        assert!(!receiver.contains_key("NOTIF_POSTGRES_URL"));
        assert_eq!(
            receiver["NOTIF_API_KEY_HASHES_FILE"].value.as_deref(),
            Some("/etc/notifd/api-keys/hashes")
        );
        let distributor = env(&deployment(&nc, Component::Distributor, "h"));
        assert_eq!(
            distributor["NOTIF_FORWARD_ADVERTISE_ADDR"].value.as_deref(),
            Some("$(POD_IP):8082")
        );
    }

    #[test]
    fn a_redis_cluster_is_named_as_one() {
        for component in [Component::Director, Component::Distributor] {
            let one = env(&deployment(&cluster(json!({})), component, "h"));
            assert!(one.contains_key("NOTIF_REDIS_URL"));
            assert!(!one.contains_key("NOTIF_REDIS_CLUSTER_URLS"));
            let nc =
                cluster(json!({"redis": {"url": {"name": "r", "key": "urls"}, "cluster": true}}));
            let on_cluster = env(&deployment(&nc, component, "h"));
            assert!(!on_cluster.contains_key("NOTIF_REDIS_URL"));
            let from = on_cluster["NOTIF_REDIS_CLUSTER_URLS"]
                .value_from
                .as_ref()
                .and_then(|source| source.secret_key_ref.as_ref())
                .expect("from the Secret");
            assert_eq!((from.name.as_str(), from.key.as_str()), ("r", "urls"));
        }
    }

    #[test]
    fn inbox_shards_and_one_being_added_are_named() {
        for component in [Component::Director, Component::Distributor] {
            let one = env(&deployment(&cluster(json!({})), component, "h"));
            assert!(one.contains_key("NOTIF_POSTGRES_URL"));
            assert!(!one.contains_key("NOTIF_POSTGRES_SHARD_URLS"));
            assert!(!one.contains_key("NOTIF_POSTGRES_SHARDS_BEFORE"));
            let postgres = json!({"url": {"name": "p", "key": "urls"}, "sharded": true,
                                  "shardsBefore": 2, "storeAsBefore": true});
            let adding = env(&deployment(
                &cluster(json!({ "postgres": postgres })),
                component,
                "h",
            ));
            assert!(!adding.contains_key("NOTIF_POSTGRES_URL"));
            let from = adding["NOTIF_POSTGRES_SHARD_URLS"]
                .value_from
                .as_ref()
                .and_then(|source| source.secret_key_ref.as_ref())
                .expect("from the Secret");
            assert_eq!((from.name.as_str(), from.key.as_str()), ("p", "urls"));
            assert_eq!(
                adding["NOTIF_POSTGRES_SHARDS_BEFORE"].value.as_deref(),
                Some("2")
            );
            assert_eq!(
                adding["NOTIF_POSTGRES_STORE_AS_BEFORE"].value.as_deref(),
                Some("true")
            );
        }
    }

    #[test]
    fn sasl_and_tls_become_kafka_properties() {
        let nc = cluster(json!({"kafka": {
            "sasl": {"mechanism": "SCRAM-SHA-512",
                     "username": {"name": "k", "key": "user"}, "password": {"name": "k", "key": "pass"}},
            "tls": {"caCertificate": {"name": "ca", "key": "ca.crt"}},
        }}));
        let env = env(&deployment(&nc, Component::Director, "h"));
        assert_eq!(
            env["NOTIF_KAFKA_PROPERTIES"].value.as_deref(),
            Some(
                "security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512,\
                 sasl.username=$(KAFKA_SASL_USERNAME),sasl.password=$(KAFKA_SASL_PASSWORD),\
                 ssl.ca.location=/etc/notifd/kafka-ca/ca.crt"
            )
        );
        // Kubernetes expands $(VAR) only for variables defined before it.
        let deployment = deployment(&nc, Component::Director, "h");
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        let order: Vec<String> = pod.containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| e.name.clone())
            .collect();
        let at = |name: &str| order.iter().position(|n| n == name).unwrap();
        assert!(at("KAFKA_SASL_PASSWORD") < at("NOTIF_KAFKA_PROPERTIES"));
    }

    #[test]
    fn replicas_follow_stopped_and_autoscaling() {
        let replicas = |extra| {
            deployment(&cluster(extra), Component::Receiver, "h")
                .spec
                .unwrap()
                .replicas
        };
        assert_eq!(replicas(json!({"receiver": {"replicas": 3}})), Some(3));
        assert_eq!(
            replicas(json!({"receiver": {"replicas": 3}, "clusterOperation": {"stopped": true}})),
            Some(0)
        );
        assert_eq!(
            replicas(json!({"receiver": {"autoscaling": {"enabled": true}}})),
            None
        );
    }

    #[test]
    fn pods_serve_on_a_moment_before_they_drain() {
        let deployment = deployment(&cluster(json!({})), Component::Distributor, "h");
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        let pre_stop = pod.containers[0]
            .lifecycle
            .clone()
            .unwrap()
            .pre_stop
            .unwrap();
        let pause = pre_stop.sleep.unwrap().seconds;
        assert_eq!(pause, PRE_STOP_SECS);
        let drain = 10;
        assert!(pod.termination_grace_period_seconds.unwrap() > pause + drain);
    }
}
