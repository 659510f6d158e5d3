//! What the operator's test binaries share: the CRD installed on the test
//! environment's API server, namespaces, and the samples.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};
use operator::crd;
use serde_json::Value;

pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The tests' field manager: a user applying objects, not the operator.
pub const FIELD_MANAGER: &str = "notification-operator-tests";

/// Installs (or updates) the CRD and waits until the API server serves it.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crd::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot apply the CRD {name}: {e}"));
    tokio::time::timeout(
        TIMEOUT,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .unwrap_or_else(|_| panic!("the CRD {name} is not Established within {TIMEOUT:?}"))
    .unwrap_or_else(|e| panic!("watching the CRD {name}: {e}"));
}

/// Removes a passing test's namespace; a failed test's is left for a look.
pub async fn delete_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("cannot delete namespace {name}: {e}"));
}

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples")
}

pub fn read_sample(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}
