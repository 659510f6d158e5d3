//! PodDisruptionBudgets: a voluntary disruption (a node drain) takes at most
//! one pod of a component at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Component, owned_meta, selector};
use crate::crd::NotificationCluster;

/// The PodDisruptionBudget of `component`.
pub fn budget(nc: &NotificationCluster, component: Component) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owned_meta(nc, component.object_name(nc), Some(component)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(nc, component)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
