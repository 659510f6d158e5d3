//! The inbox: durable storage of notifications for recipients who were not
//! connected: Postgres in the distributed service (one server, or shards),
//! SQLite in the standalone one. Clients receive their inbox in position
//! order on connect, and acknowledged rows are removed.

mod command;
mod postgres;
mod shards;
mod sqlite;

pub use command::InboxCommand;
pub use postgres::{PostgresArgs, PostgresInbox};
pub use shards::{Layout, Moved, ShardedInbox, shard_of};
pub use sqlite::SqliteInbox;

use async_trait::async_trait;

use crate::notification::Notification;

/// A notification with its per-recipient position.
#[derive(Debug, Clone)]
pub struct Positioned {
    pub position: u64,
    pub notification: Notification,
}

#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Stores `batch`. Storing a notification that is already stored (same
    /// recipient and id) changes nothing, so a replay after a crash is safe.
    async fn store(&self, batch: &[Positioned]) -> Result<(), InboxError>;

    /// The recipient's stored notifications with a position after `after`,
    /// in position order, at most `limit`, leaving out those expired at
    /// `now_ms`.
    async fn pending(
        &self,
        recipient: &str,
        after: Option<u64>,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Positioned>, InboxError>;

    /// Removes the recipient's notifications with these ids; returns the ids
    /// that were stored (and now are not).
    async fn acknowledge(&self, recipient: &str, ids: &[String])
    -> Result<Vec<String>, InboxError>;

    /// Removes the recipient's notifications up to `position`, inclusive (a
    /// long-poll cursor); returns their ids.
    async fn acknowledge_through(
        &self,
        recipient: &str,
        position: u64,
    ) -> Result<Vec<String>, InboxError>;

    /// Removes what expired before `now_ms` and what was stored longer than
    /// `retention` ago; returns how many rows went.
    async fn purge(&self, now_ms: u64, retention: std::time::Duration) -> Result<u64, InboxError>;

    /// Whether the inbox's server is reachable now, for `notif_dependency_up`.
    async fn is_reachable(&self) -> bool;
}

/// A stored row as both databases return it: position, id, kind, payload
/// (JSON text), published_at_ms, expires_at_ms.
type Row = (i64, String, Option<String>, String, i64, Option<i64>);

/// The notification of a stored `row` of `recipient`.
fn from_row(recipient: &str, row: Row) -> Result<Positioned, InboxError> {
    let (position, id, kind, payload, published_at_ms, expires_at_ms) = row;
    Ok(Positioned {
        position: position as u64,
        notification: Notification {
            id,
            recipient: recipient.to_string(),
            payload: serde_json::value::RawValue::from_string(payload)?,
            kind,
            published_at_ms: published_at_ms as u64,
            expires_at_ms: expires_at_ms.map(|e| e as u64),
        },
    })
}

/// Databases store integers signed.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the inbox's database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the inbox's database: {0}")]
    Written(#[from] crate::sqlite::WriteError),
    #[error("a stored payload is not JSON: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("the inbox's database was unreachable moments ago; not asked again yet")]
    Unreachable,
}
