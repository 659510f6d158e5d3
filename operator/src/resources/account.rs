//! The ServiceAccount the cluster's pods run as; it has no permissions, so
//! that the pods do not run as the namespace's `default` account.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;

use super::owned_meta;
use crate::crd::NotificationCluster;

/// The ServiceAccount's name: the cluster's.
pub fn name(nc: &NotificationCluster) -> String {
    nc.name_any()
}

/// The ServiceAccount as the operator applies it.
pub fn service_account(nc: &NotificationCluster) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(nc, name(nc), None),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
