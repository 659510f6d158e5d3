//! The distributors' forward port, where directors hand them notifications
//! and distributors pass acknowledgements on: a Secret the operator makes
//! once per cluster, which both roles present there, and a NetworkPolicy
//! that admits only the cluster's own directors and distributors to it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{Component, owned_meta, ports, selector};
use crate::crd::{NotificationCluster, SecretKeyRef};

/// The key of the secret in its Secret.
const KEY: &str = "secret";

/// Where the forward port's secret is.
pub fn secret_ref(nc: &NotificationCluster) -> SecretKeyRef {
    SecretKeyRef {
        name: format!("{}-forward", nc.name_any()),
        key: KEY.into(),
    }
}

/// A new Secret holding a random forward secret. Made once: a new secret on
/// every reconcile would restart every pod.
pub fn new_secret(nc: &NotificationCluster) -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    Secret {
        metadata: owned_meta(nc, secret_ref(nc).name, None),
        string_data: Some(BTreeMap::from([(KEY.into(), hex::encode(bytes))])),
        ..Secret::default()
    }
}

/// Admits to the distributors' forward port only the cluster's directors and
/// distributors; their client and admin ports stay open to all.
pub fn network_policy(nc: &NotificationCluster) -> NetworkPolicy {
    let pods = |component: Component| NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(selector(nc, component)),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let port = |number: i32| NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some("TCP".into()),
        ..NetworkPolicyPort::default()
    };
    NetworkPolicy {
        metadata: owned_meta(
            nc,
            format!("{}-forward", Component::Distributor.object_name(nc)),
            Some(Component::Distributor),
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(nc, Component::Distributor)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![
                        pods(Component::Director),
                        pods(Component::Distributor),
                    ]),
                    ports: Some(vec![port(ports::FORWARD)]),
                },
                NetworkPolicyIngressRule {
                    from: None,
                    ports: Some(vec![port(ports::HTTP), port(ports::ADMIN)]),
                },
            ]),
            ..NetworkPolicySpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::cluster;

    #[test]
    fn only_directors_and_distributors_reach_the_forward_port() {
        let nc = cluster(serde_json::json!({}));
        let policy = network_policy(&nc);
        let spec = policy.spec.expect("a spec");
        let rules = spec.ingress.expect("ingress rules");
        let forward = &rules[0];
        assert_eq!(
            forward.ports.as_ref().expect("ports")[0].port,
            Some(IntOrString::Int(ports::FORWARD))
        );
        let from: Vec<_> = forward
            .from
            .as_ref()
            .expect("peers")
            .iter()
            .map(|peer| peer.pod_selector.clone().expect("pods").match_labels)
            .collect();
        assert_eq!(
            from,
            [
                Some(selector(&nc, Component::Director)),
                Some(selector(&nc, Component::Distributor))
            ]
        );
        assert!(
            rules[1].from.is_none(),
            "clients and scrapers come from anywhere"
        );
        let secret = new_secret(&nc);
        let value = &secret.string_data.expect("data")[KEY];
        assert_eq!(value.len(), 64);
        assert_ne!(value, &new_secret(&nc).string_data.expect("data")[KEY]);
    }
}
