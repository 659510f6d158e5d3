//! Presence: which distributors hold a live connection of a recipient: Redis
//! in the distributed service, a map in the standalone one. Entries expire unless the distributor's
//! heartbeat refreshes them, so a distributor that dies leaves no lasting
//! trace and the director falls back to the inbox.

mod memory;
mod redis;

pub use self::memory::MemoryPresence;
pub use self::redis::{RedisArgs, RedisPresence};

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
    /// again on every heartbeat. Returns how many of them were not listed
    /// (new, or lost since: expired, or gone with Redis's data).
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<usize, PresenceError>;

    /// Forgets a connection that closed.
    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError>;

    /// The distributors that hold a live connection of `recipient`, each once.
    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError>;

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

#[derive(Debug, thiserror::Error)]
#[error("presence (Redis): {0}")]
pub struct PresenceError(#[from] ::redis::RedisError);
