//! The Grafana dashboard that the Helm chart ships queries only metrics the
//! roles export, and shows each of the families an operator watches.

use std::collections::HashSet;

use dataplane::metrics::{
    DependencyLabels, DependencyMetrics, DirectorMetrics, DistributorMetrics, OutcomeLabels,
    PartitionLabels, ReceiverMetrics, RejectedLabels, TransportLabels,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/notification-operator/dashboards/notifications.json"
);

/// The names of the metric families every role registers, as exposed; a
/// family of labelled metrics shows only once it has one, so each gets one.
fn exported() -> HashSet<String> {
    let mut registry = Registry::default();
    let receiver = ReceiverMetrics::default().register(&mut registry);
    let code = RejectedLabels {
        code: "unauthorized",
    };
    receiver.rejected.get_or_create(&code).inc();
    let director = DirectorMetrics::default().register(&mut registry);
    let outcome = OutcomeLabels {
        outcome: "delivered",
    };
    director.routed.get_or_create(&outcome).inc();
    director.forwards.get_or_create(&outcome).inc();
    director
        .consumer_lag
        .get_or_create(&PartitionLabels { partition: 0 })
        .set(0);
    let distributor = DistributorMetrics::default().register(&mut registry);
    distributor
        .connections
        .get_or_create(&TransportLabels { transport: "ws" })
        .set(0);
    let dependencies = DependencyMetrics::default().register(&mut registry);
    let kafka = DependencyLabels {
        dependency: "kafka",
    };
    dependencies.up.get_or_create(&kafka).set(1);
    let mut text = String::new();
    encode(&mut text, &registry).expect("the exposition");
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// Every `notif_...` name in the dashboard's queries, without the suffixes
/// that name one series of a family (`_total`, `_bucket`, ...).
fn queried() -> HashSet<String> {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut names = HashSet::new();
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
    {
        let expr = target["expr"].as_str().expect("a query");
        for (start, _) in expr.match_indices("notif_") {
            let name: String = expr[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let family = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            names.insert(family.to_string());
        }
    }
    names
}

#[test]
fn every_metric_the_dashboard_queries_is_one_the_roles_export() {
    let exported = exported();
    let queried = queried();
    let unknown: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "not exported: {unknown:?}; exported: {exported:?}"
    );
    for family in [
        "notif_publish_accepted",
        "notif_publish_rejected",
        "notif_director_notifications",
        "notif_publish_to_delivery_seconds",
        "notif_consumer_lag",
        "notif_distributor_connections",
        "notif_inbox_writes",
        "notif_inbox_reads",
        "notif_delivery_retries",
    ] {
        assert!(queried.contains(family), "the dashboard shows {family}");
    }
}
