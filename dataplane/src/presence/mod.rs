//! Presence: which distributors hold a live connection of a recipient: Redis
//! in the distributed service, a map in the standalone one. Entries expire unless the distributor's
//! heartbeat refreshes them, so a distributor that dies leaves no lasting
//! trace and the director falls back to the inbox.

mod gathered;
mod memory;
mod redis;

pub use self::gathered::GatheredLookups;
pub use self::memory::MemoryPresence;
pub use self::redis::{RedisArgs, RedisPresence};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// One client connection, as presence knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    pub recipient: String,
    /// The distributor that holds it.
    pub distributor: String,
    /// Unique within its distributor.
    pub id: String,
}

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Records `connections` as live for `ttl` from now: on connect, and
    /// again on every heartbeat. Says, for each, whether it was not listed
    /// (new, or lost since: expired, or gone with Redis's data).
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<Vec<bool>, PresenceError>;

    /// Forgets a connection that closed.
    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError>;

    /// The distributors that hold a live connection of `recipient`, each once.
    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError>;

    /// [`Presence::lookup`] of each of `recipients`, in one round trip where
    /// the server allows.
    async fn lookup_many(&self, recipients: &[String]) -> Result<Vec<Vec<String>>, PresenceError> {
        futures::future::try_join_all(recipients.iter().map(|r| self.lookup(r))).await
    }

    /// Records where distributor `id` takes forwarded notifications, for `ttl`.
    async fn announce_distributor(
        &self,
        id: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<(), PresenceError>;

    /// Where distributor `id` takes forwarded notifications, while it is alive.
    async fn distributor_address(&self, id: &str) -> Result<Option<String>, PresenceError>;

    /// Whether presence's server is reachable now, for `notif_dependency_up`.
    async fn is_reachable(&self) -> bool;
}

/// Shared, so that every lookup of a batch that failed gets the error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("presence (Redis): {0}")]
pub struct PresenceError(Arc<::redis::RedisError>);

impl From<::redis::RedisError> for PresenceError {
    fn from(error: ::redis::RedisError) -> Self {
        PresenceError(Arc::new(error))
    }
}
