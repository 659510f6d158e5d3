//! The operator's own metrics, served on `/metrics` of the admin port.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// What went wrong: `KafkaUnreachable`, `KubernetesApi`, ... (see `Error::kind`).
    pub kind: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    reconciles: Counter,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
    /// 1 while this process holds the leader lease.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Counter::default(),
            errors: Family::default(),
            // 1 ms to ~16 s.
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            leader: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "notif_operator_reconciles",
            "Reconciles of NotificationClusters",
            self.reconciles.clone(),
        );
        registry.register(
            "notif_operator_reconcile_errors",
            "Reconciles that failed, by kind of error",
            self.errors.clone(),
        );
        registry.register(
            "notif_operator_reconcile_duration_seconds",
            "How long a reconcile took",
            self.duration.clone(),
        );
        registry.register(
            "notif_operator_leader",
            "1 while this operator process holds the leader lease",
            self.leader.clone(),
        );
        self
    }

    pub fn reconciled(&self, took: Duration, error: Option<&'static str>) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
        if let Some(kind) = error {
            self.errors.get_or_create(&ErrorLabels { kind }).inc();
        }
    }
}
