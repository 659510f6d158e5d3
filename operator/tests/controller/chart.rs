//! The Helm chart as `helm` renders it.

use std::process::Command;

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/notification-operator"
);

/// Runs `helm args... <chart>`; returns what it printed.
pub fn helm(args: &[&str]) -> String {
    let output = Command::new("helm")
        .args(args)
        .arg(CHART)
        .output()
        .expect("helm runs (the test environment puts it on PATH)");
    assert!(
        output.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_chart_ships_the_grafana_dashboard_only_when_asked() {
    let template = ["template", "t", "--kube-version", "1.36.0"];
    assert!(
        !helm(&template).contains("kind: ConfigMap"),
        "off by default"
    );

    let rendered = helm(&[&template[..], &["--set", "dashboards.enabled=true"]].concat());
    let config_map = rendered
        .split("\n---")
        .find(|document| document.contains("kind: ConfigMap"))
        .expect("a ConfigMap when enabled");
    let object: serde_json::Value = serde_yaml::from_str(config_map).expect("YAML");
    assert_eq!(object["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: serde_json::Value = serde_json::from_str(
        object["data"]["notifications.json"]
            .as_str()
            .expect("the JSON"),
    )
    .expect("the dashboard parses");
    let kept: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CHART}/dashboards/notifications.json"))
            .expect("the dashboard file"),
    )
    .expect("JSON");
    assert_eq!(shipped, kept);
}
