//! The durable, ordered log between receivers and directors (Kafka in the
//! distributed service). A notification is accepted once the log has it.

mod kafka;

pub use kafka::{KafkaArgs, KafkaConfig, KafkaLog};

use async_trait::async_trait;

use crate::notification::Notification;

/// The write side of the log, as the receiver uses it.
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Writes `batch` durably, each notification keyed by its recipient so
    /// that one recipient's notifications keep their order. Returns only once
    /// every one is durable; an error means some may not be.
    async fn append(&self, batch: &[Notification]) -> Result<(), LogError>;

    /// Whether the log is reachable now, for readiness.
    async fn is_reachable(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log did not acknowledge the write in time, or refused it.
    #[error("the log did not accept the write: {0}")]
    Unavailable(String),
    /// A notification could not be encoded (a bug, not bad input).
    #[error("cannot encode a notification: {0}")]
    Encode(#[from] serde_json::Error),
}
