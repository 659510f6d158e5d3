//! HorizontalPodAutoscalers, each on its component's own metric per pod, as
//! prometheus-adapter serves it from the pods' `/metrics` (docs/operator.md
//! gives the adapter's rules).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
    MetricIdentifier, MetricSpec, MetricTarget, PodsMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Component, owned_meta};
use crate::crd::NotificationCluster;

/// The custom metric each component scales on, and its default target per pod.
pub fn metric(component: Component) -> (&'static str, i64) {
    match component {
        // Publish requests per second.
        Component::Receiver => ("notif_publish_requests_per_second", 500),
        // Notifications in Kafka not yet routed.
        Component::Director => ("notif_consumer_lag", 1000),
        // Open client connections.
        Component::Distributor => ("notif_distributor_connections", 10_000),
    }
}

/// The HPA of `component`, or none when it is not autoscaled.
pub fn autoscaler(
    nc: &NotificationCluster,
    component: Component,
) -> Option<HorizontalPodAutoscaler> {
    if !component.autoscaled(nc) {
        return None;
    }
    let autoscaling = component.spec(nc).autoscaling.as_ref()?;
    let (name, default_target) = metric(component);
    let target = autoscaling.target.unwrap_or(default_target);
    Some(HorizontalPodAutoscaler {
        metadata: owned_meta(nc, component.object_name(nc), Some(component)),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: component.object_name(nc),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Pods".into(),
                pods: Some(PodsMetricSource {
                    metric: MetricIdentifier {
                        name: name.into(),
                        selector: None,
                    },
                    target: MetricTarget {
                        type_: "AverageValue".into(),
                        average_value: Some(Quantity(target.to_string())),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        },
        ..HorizontalPodAutoscaler::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::cluster;
    use serde_json::json;

    #[test]
    fn autoscaler_only_when_enabled_and_running() {
        let on = json!({"distributor": {"autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 9}}});
        let hpa = autoscaler(&cluster(on.clone()), Component::Distributor).expect("an HPA");
        let spec = hpa.spec;
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 9));
        let pods = spec.metrics.unwrap()[0].pods.clone().unwrap();
        assert_eq!(pods.metric.name, "notif_distributor_connections");
        assert_eq!(pods.target.average_value, Some(Quantity("10000".into())));

        assert!(autoscaler(&cluster(on.clone()), Component::Receiver).is_none());
        let mut stopped = on;
        stopped["clusterOperation"] = json!({"stopped": true});
        assert!(autoscaler(&cluster(stopped), Component::Distributor).is_none());
        let off = json!({"distributor": {"autoscaling": {"enabled": false}}});
        assert!(autoscaler(&cluster(off), Component::Distributor).is_none());
    }
}
