//! prometheus-adapter's rules, from `config/prometheus-adapter/values.yaml`,
//! and the queries the adapter makes of them for a set of pods.

use std::collections::HashMap;

use serde_json::Value;

const VALUES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/prometheus-adapter/values.yaml"
);

/// One custom rule.
pub struct Rule {
    /// The name the adapter serves the metric under.
    pub metric: String,
    series: String,
    metrics_query: String,
}

/// The rules of the values file, under `rules.custom`.
pub fn rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(VALUES).expect("the adapter's values file");
    let values: Value = serde_yaml::from_str(&text).expect("its YAML");
    let text_of = |rule: &Value, pointer: &str| {
        rule.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a rule without {pointer}: {rule}"))
            .to_string()
    };
    values["rules"]["custom"]
        .as_array()
        .expect("rules.custom")
        .iter()
        .map(|rule| Rule {
            metric: text_of(rule, "/name/as"),
            series: text_of(rule, "/seriesQuery")
                .split('{')
                .next()
                .expect("a series name")
                .to_string(),
            metrics_query: text_of(rule, "/metricsQuery"),
        })
        .collect()
}

impl Rule {
    /// The query the adapter sends Prometheus for `pods` of `namespace`:
    /// the metricsQuery template with its series, label matchers and
    /// grouping filled in, as the adapter fills them for pod metrics.
    pub fn query(&self, namespace: &str, pods: &[String]) -> String {
        let matchers = format!(r#"namespace="{namespace}",pod=~"{}""#, pods.join("|"));
        self.metrics_query
            .replace("<<.Series>>", &self.series)
            .replace("<<.LabelMatchers>>", &matchers)
            .replace("<<.GroupBy>>", "pod")
    }
}

/// Prometheus's answer to an instant `query`: each pod's value.
pub async fn by_pod(prometheus: &str, query: &str) -> HashMap<String, f64> {
    let mut url = reqwest::Url::parse(&format!("{prometheus}/api/v1/query")).expect("a URL");
    url.query_pairs_mut().append_pair("query", query);
    let answer: Value = reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("Prometheus refused {query}: {e}"))
        .json()
        .await
        .expect("Prometheus answers JSON");
    answer["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|sample| {
            let pod = sample["metric"]["pod"]
                .as_str()
                .expect("a pod label")
                .to_string();
            let value = sample["value"][1]
                .as_str()
                .expect("a value")
                .parse()
                .expect("a number");
            (pod, value)
        })
        .collect()
}
