//! The durable, ordered log between receivers and directors: Kafka in the
//! distributed service, SQLite in the standalone one. A notification is
//! accepted once the log has it.

mod kafka;
mod kafka_reader;
mod partitions;
mod producer;
mod renew;
mod sqlite;

pub use kafka::{KafkaArgs, KafkaConfig, KafkaLog};
pub use kafka_reader::KafkaReader;
pub use partitions::{partition_of, position};
pub use sqlite::SqliteLog;

use async_trait::async_trait;

use crate::notification::Notification;

/// The write side of the log, as the receiver uses it.
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Writes `batch` durably, each notification keyed by its recipient so
    /// that one recipient's notifications keep their order. Returns only once
    /// every one is durable; an error means some may not be.
    async fn append(&self, batch: &[Notification]) -> Result<(), LogError>;

    /// Whether the log is reachable now, for `notif_dependency_up`.
    async fn is_reachable(&self) -> bool;
}

/// One record read from the log, with where it was read. Within an epoch,
/// one recipient's records are all in one partition, at growing offsets.
#[derive(Debug)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    /// The partition count the record was placed with (0 in a log that never
    /// grows). Within a partition, epochs never decrease.
    pub epoch: u32,
    /// A marker of the start of its epoch in its partition, not a notification.
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// How far one partition is done: every record before `offset` (the next to
/// read), and every record of an epoch below `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub partition: i32,
    pub offset: i64,
    pub epoch: u32,
}

/// The read side of the log, as the director uses it: one reader of the
/// directors' group, owning some partitions (all of them, alone).
#[async_trait]
pub trait LogReader: Send + Sync + 'static {
    /// The next record of the partitions this reader owns, waiting for one.
    /// Cancel-safe: dropping the future loses no record.
    async fn next(&self) -> Result<Record, LogError>;

    /// Records how far each partition is done, so that the group resumes
    /// from there and other readers see which epochs are done. Partitions
    /// this reader no longer owns are left out. `wait` waits for the log to
    /// confirm it, for a last commit before stopping.
    async fn commit(&self, done: &[Done], wait: bool) -> Result<(), LogError>;

    /// Whether every partition of the group is done with every record of an
    /// epoch below `epoch`, by what the readers have committed.
    async fn epoch_done_below(&self, epoch: u32) -> Result<bool, LogError>;

    /// Stops reading `partition` until `resume`, keeping its place.
    fn pause(&self, partition: i32);

    fn resume(&self, partitions: &[i32]);

    /// Whether the log is reachable now, for `notif_dependency_up`.
    async fn is_reachable(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log did not acknowledge the write in time, or refused it.
    #[error("the log did not accept the write: {0}")]
    Unavailable(String),
    /// Reading from the log, or committing to it, failed.
    #[error("reading the log failed: {0}")]
    Read(String),
    /// A notification could not be encoded (a bug, not bad input).
    #[error("cannot encode a notification: {0}")]
    Encode(#[from] serde_json::Error),
}
