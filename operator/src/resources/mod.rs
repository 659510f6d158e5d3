//! The Kubernetes objects the operator makes for a `NotificationCluster`,
//! each built by a pure function of the cluster so that what is applied can
//! be read (and unit tested) apart from how it is applied.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::{ComponentSpec, NotificationCluster};

pub mod account;
pub mod autoscalers;
pub mod budgets;
pub mod forward;
pub mod services;
pub mod settings;
pub mod workloads;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "notification-operator";

/// The label every object the operator makes carries, and its watches select on.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "notification-operator");

/// The three roles of `notifd`, each a Deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    Receiver,
    Director,
    Distributor,
}

impl Component {
    pub const ALL: [Component; 3] = [
        Component::Receiver,
        Component::Director,
        Component::Distributor,
    ];

    /// The role's name: `notifd`'s subcommand and the objects' suffix.
    pub fn role(self) -> &'static str {
        match self {
            Component::Receiver => "receiver",
            Component::Director => "director",
            Component::Distributor => "distributor",
        }
    }

    /// The name of the component's Deployment, Service, PDB and HPA.
    pub fn object_name(self, nc: &NotificationCluster) -> String {
        format!("{}-{}", nc.name_any(), self.role())
    }

    /// The component's part of the spec.
    pub fn spec(self, nc: &NotificationCluster) -> &ComponentSpec {
        match self {
            Component::Receiver => &nc.spec.receiver,
            Component::Director => &nc.spec.director,
            Component::Distributor => &nc.spec.distributor.component,
        }
    }

    /// Whether an HPA sizes the component (and the Deployment leaves `replicas` to it).
    pub fn autoscaled(self, nc: &NotificationCluster) -> bool {
        !nc.spec.cluster_operation.stopped
            && self
                .spec(nc)
                .autoscaling
                .as_ref()
                .is_some_and(|a| a.enabled)
    }
}

/// The labels that select one component's pods.
pub fn selector(nc: &NotificationCluster, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "notifd".into()),
        ("app.kubernetes.io/instance".into(), nc.name_any()),
        (
            "app.kubernetes.io/component".into(),
            component.role().into(),
        ),
    ])
}

/// The metadata of an object the cluster owns: its namespace, labels and a
/// controller owner reference, so that deleting the cluster deletes it.
pub fn owned_meta(
    nc: &NotificationCluster,
    name: String,
    component: Option<Component>,
) -> ObjectMeta {
    let mut labels = match component {
        Some(component) => selector(nc, component),
        None => BTreeMap::from([
            ("app.kubernetes.io/name".into(), "notifd".into()),
            ("app.kubernetes.io/instance".into(), nc.name_any()),
        ]),
    };
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    ObjectMeta {
        name: Some(name),
        namespace: nc.namespace(),
        labels: Some(labels),
        owner_references: nc.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

/// The ports every pod serves on; the Services and probes name them.
pub mod ports {
    /// Publish (receiver) and connect (distributor).
    pub const HTTP: i32 = 8080;
    /// Where directors hand notifications to a distributor.
    pub const FORWARD: i32 = 8082;
    /// `/metrics`, `/healthz`, `/readyz`.
    pub const ADMIN: i32 = 9090;
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::crd::NotificationCluster;

    /// The minimal sample as a cluster the API server has stored.
    pub fn cluster(extra: serde_json::Value) -> NotificationCluster {
        let mut value = serde_json::json!({
            "apiVersion": "notifications.saasaparilla.dev/v1alpha1",
            "kind": "NotificationCluster",
            "metadata": {"name": "acme", "namespace": "apps", "uid": "0000-1111", "generation": 1},
            "spec": {
                "image": "notifd:test",
                "kafka": {"bootstrapServers": "kafka:9092", "replicationFactor": 1},
                "redis": {"url": {"name": "redis", "key": "url"}},
                "postgres": {"url": {"name": "postgres", "key": "url"}},
                "auth": {"apiKeyHashes": {"name": "keys", "key": "hashes"}, "jwt": {"secret": {"name": "jwt", "key": "secret"}}},
            },
        });
        merge(&mut value["spec"], extra);
        serde_json::from_value(value).expect("a valid cluster")
    }

    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(into), serde_json::Value::Object(from)) => {
                for (key, value) in from {
                    merge(into.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (into, from) => *into = from,
        }
    }
}
