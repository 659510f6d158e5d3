//! The roles' Prometheus metrics (all named `notif_...`), registered in one
//! registry that the admin port serves.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectedLabels {
    /// The error code of the answer (`invalid_recipient`, `unauthorized`, ...).
    pub code: &'static str,
}

/// What the receiver counts.
#[derive(Clone, Default)]
pub struct ReceiverMetrics {
    /// Notifications accepted (answered 202: durable in the log).
    pub accepted: Counter,
    /// Publish requests refused, by error code.
    pub rejected: Family<RejectedLabels, Counter>,
}

impl ReceiverMetrics {
    pub fn register(self, registry: &mut Registry) -> Self {
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
    /// `stored` (in the inbox) or `expired` (dropped, never delivered).
    pub outcome: &'static str,
}

/// What the director counts.
#[derive(Clone, Default)]
pub struct DirectorMetrics {
    /// Notifications done with, by outcome.
    pub routed: Family<OutcomeLabels, Counter>,
    /// Records in the topic that are not notifications, skipped.
    pub invalid: Counter,
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
        self
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `ws` or `sse`.
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
