//! The roles' Prometheus metrics (all named `notif_...`), registered in one
//! registry that the admin port serves.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectedLabels {
    /// The error code of the answer (`invalid_recipient`, `unauthorized`, ...).
    pub code: &'static str,
}

/// What the receiver counts.
#[derive(Clone, Default)]
pub struct ReceiverMetrics {
    /// Publish requests, whatever their answer: the receivers' autoscaling
    /// metric (its rate per pod).
    pub requests: Counter,
    /// Notifications accepted (answered 202: durable in the log).
    pub accepted: Counter,
    /// Publish requests refused, by error code.
    pub rejected: Family<RejectedLabels, Counter>,
}

impl ReceiverMetrics {
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "notif_publish_requests",
            "Publish requests, accepted or not",
            self.requests.clone(),
        );
        registry.register(
            "notif_publish_accepted",
            "Notifications accepted: durable in the log and answered 202",
            self.accepted.clone(),
        );
        registry.register(
            "notif_publish_rejected",
            "Publish requests refused, by error code",
            self.rejected.clone(),
        );
        self
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `stored` (in the inbox), `expired` (dropped, never
    /// delivered); for forwards `delivered`, `not_connected`, `timed_out`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub partition: i64,
}

/// Publish-to-delivery latency buckets, in seconds: 1 ms to about 65 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// What the director counts.
#[derive(Clone)]
pub struct DirectorMetrics {
    /// Notifications done with, by outcome.
    pub routed: Family<OutcomeLabels, Counter>,
    /// Live delivery attempts to one distributor, by outcome
    /// (`delivered`, `not_connected`, `timed_out`).
    pub forwards: Family<OutcomeLabels, Counter>,
    /// Live deliveries tried again after a first attempt failed.
    pub retries: Counter,
    /// Notifications written to the inbox.
    pub inbox_writes: Counter,
    /// Records in the topic that are not notifications, skipped.
    pub invalid: Counter,
    /// From the receiver's acceptance to a client's acknowledgement.
    pub delivery_latency: Histogram,
    /// Records not yet read, per partition this director owns.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
}

impl Default for DirectorMetrics {
    fn default() -> Self {
        DirectorMetrics {
            routed: Family::default(),
            forwards: Family::default(),
            retries: Counter::default(),
            inbox_writes: Counter::default(),
            invalid: Counter::default(),
            delivery_latency: latency_histogram(),
            consumer_lag: Family::default(),
        }
    }
}

impl DirectorMetrics {
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "notif_director_notifications",
            "Notifications the director is done with, by outcome",
            self.routed.clone(),
        );
        registry.register(
            "notif_director_invalid_records",
            "Records in the topic that are not notifications, skipped",
            self.invalid.clone(),
        );
        registry.register(
            "notif_deliveries",
            "Live delivery attempts to a distributor, by outcome",
            self.forwards.clone(),
        );
        registry.register(
            "notif_delivery_retries",
            "Live deliveries tried again",
            self.retries.clone(),
        );
        registry.register(
            "notif_inbox_writes",
            "Notifications written to the inbox",
            self.inbox_writes.clone(),
        );
        registry.register(
            "notif_publish_to_delivery_seconds",
            "Time from the receiver's acceptance to a client's acknowledgement",
            self.delivery_latency.clone(),
        );
        registry.register(
            "notif_consumer_lag",
            "Records not yet read, per partition the director owns",
            self.consumer_lag.clone(),
        );
        self
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `ws`, `sse` or `poll` (while a poll waits).
    pub transport: &'static str,
}

/// What the distributor counts.
#[derive(Clone, Default)]
pub struct DistributorMetrics {
    /// Open client connections, by transport.
    pub connections: Family<TransportLabels, Gauge>,
    /// Notifications read from the inbox for clients.
    pub inbox_reads: Counter,
}

impl DistributorMetrics {
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "notif_distributor_connections",
            "Open client connections, by transport",
            self.connections.clone(),
        );
        registry.register(
            "notif_inbox_reads",
            "Notifications read from the inbox for clients",
            self.inbox_reads.clone(),
        );
        self
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// `kafka`, `redis` or `postgres`.
    pub dependency: &'static str,
}

/// Whether each shared server a role uses answers. `/readyz` leaves them out
/// (DESIGN.md §5), so this is where an outage shows. Standalone reports
/// none: its storage is in the process, and a failure shows in its answers.
#[derive(Clone, Default)]
pub struct DependencyMetrics {
    /// 1 while the server answers, 0 while not; absent until first checked.
    pub up: Family<DependencyLabels, Gauge>,
}

impl DependencyMetrics {
    pub fn register(self, registry: &mut Registry) -> Self {
        registry.register(
            "notif_dependency_up",
            "Whether a shared server the process uses answers (1) or not (0), by dependency",
            self.up.clone(),
        );
        self
    }
}
