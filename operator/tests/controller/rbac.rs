//! The Helm chart's RBAC is enough: an operator that runs with the chart's
//! ServiceAccount's rights (by impersonation) makes and reports a cluster.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use testenv::unique_name;

use crate::chart::helm;
use crate::harness::{Operator, Scene};

/// The test kubeconfig, acting as `user` (`kubectl --as`).
fn kubeconfig_as(user: &str) -> std::path::PathBuf {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let mut config: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("the kubeconfig"))
            .expect("kubeconfig YAML");
    for user_entry in config["users"].as_array_mut().expect("users") {
        user_entry["user"]["as"] = json!(user);
    }
    let out = std::env::temp_dir().join(unique_name("kubeconfig-as"));
    std::fs::write(&out, serde_yaml::to_string(&config).expect("YAML")).expect("written");
    out
}

#[tokio::test]
async fn the_charts_service_account_can_do_everything_the_operator_does() {
    let scene = Scene::new("op-rbac").await;
    let ns = scene.namespace.as_str();
    let release = "notification-operator";
    helm(&[
        "install",
        release,
        "-n",
        ns,
        "--set",
        &format!("watchNamespaces={{{ns}}}"),
    ]);
    let kubeconfig = kubeconfig_as(&format!("system:serviceaccount:{ns}:{release}"));
    let _operator = Operator::start_as(ns, "rbac", Some(&kubeconfig)).await;

    let name = scene
        .apply_sample("minimal", |c| c["spec"]["deletionPolicy"] = json!("Delete"))
        .await;
    scene
        .wait_for::<Deployment>(&format!("{name}-distributor"), |_| true)
        .await;
    scene
        .wait_for_condition(&name, "KafkaTopicReady", "True", None)
        .await;
    scene
        .wait_for_condition(&name, "Ready", "False", Some("ComponentsUnavailable"))
        .await;
    scene.delete_cluster(&name).await;

    let _ = std::fs::remove_file(&kubeconfig);
    scene.finish().await;
}
