//! Presence on Redis. Each recipient has a sorted set of its connections
//! (`<prefix>presence:<recipient>`), each member `<distributor>|<connection>`
//! scored by the time (ms) it expires; the key itself expires with its last
//! member. Distributors' addresses are plain keys with a TTL.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Connection, Presence, PresenceError};
use crate::notification::now_ms;

/// Presence's Redis, as the roles' flags give it.
#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// Redis URL of presence.
    #[arg(long, env = "NOTIF_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// Prefix of every Redis key, so that services can share a Redis.
    #[arg(long, env = "NOTIF_REDIS_KEY_PREFIX", default_value = "notif:")]
    pub redis_key_prefix: String,
}

impl RedisArgs {
    pub async fn presence(&self) -> Result<RedisPresence, crate::config::ConfigError> {
        RedisPresence::connect(&self.redis_url, &self.redis_key_prefix)
            .await
            .map_err(|e| crate::config::ConfigError::new("--redis-url", e.to_string()))
    }
}

#[derive(Clone)]
pub struct RedisPresence {
    redis: ConnectionManager,
    /// Prepended to every key, so that services (or tests) can share a Redis.
    prefix: String,
}

impl RedisPresence {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url)?;
        // Few, short reconnection attempts: a request waits for them, and
        // while Redis is away a client connecting should get its 503 in
        // about a second, not after the default's many seconds of backoff.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisPresence {
            redis,
            prefix: prefix.to_string(),
        })
    }

    fn recipient_key(&self, recipient: &str) -> String {
        format!("{}presence:{recipient}", self.prefix)
    }

    fn distributor_key(&self, id: &str) -> String {
        format!("{}distributor:{id}", self.prefix)
    }
}

/// Runs `op` on the connection, once more if the first try found the
/// connection broken: the manager reconnects after a failure, so the request
/// that saw Redis come back would otherwise fail for nothing.
async fn retried<T, F, Fut>(redis: &ConnectionManager, op: F) -> redis::RedisResult<T>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    match op(redis.clone()).await {
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
            op(redis.clone()).await
        }
        result => result,
    }
}

fn member(connection: &Connection) -> String {
    format!("{}|{}", connection.distributor, connection.id)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Presence for RedisPresence {
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<usize, PresenceError> {
        if connections.is_empty() {
            return Ok(0);
        }
        let now = now_ms() as i64;
        let expires = now + millis(ttl);
        let mut pipe = redis::pipe();
        for connection in connections {
            let key = self.recipient_key(&connection.recipient);
            // Expired members go first, so that ZADD counts one as new.
            pipe.zrembyscore(&key, "-inf", now)
                .ignore()
                .zadd(&key, member(connection), expires)
                .pexpire(&key, millis(ttl))
                .ignore();
        }
        let added: Vec<usize> = retried(&self.redis, |mut redis| {
            let pipe = pipe.clone();
            async move { pipe.query_async(&mut redis).await }
        })
        .await?;
        Ok(added.into_iter().sum())
    }

    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError> {
        let (key, member) = (
            self.recipient_key(&connection.recipient),
            member(connection),
        );
        retried(&self.redis, |mut redis| {
            let (key, member) = (key.clone(), member.clone());
            async move { redis.zrem::<_, _, ()>(key, member).await }
        })
        .await?;
        Ok(())
    }

    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError> {
        let key = self.recipient_key(recipient);
        let members: Vec<String> = retried(&self.redis, |mut redis| {
            let key = key.clone();
            async move { redis.zrangebyscore(key, now_ms() as i64, "+inf").await }
        })
        .await?;
        let distributors: BTreeSet<String> = members
            .into_iter()
            .filter_map(|m| {
                m.split_once('|')
                    .map(|(distributor, _)| distributor.to_string())
            })
            .collect();
        Ok(distributors.into_iter().collect())
    }

    async fn announce_distributor(
        &self,
        id: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        let key = self.distributor_key(id);
        retried(&self.redis, |mut redis| {
            let key = key.clone();
            async move {
                redis
                    .pset_ex::<_, _, ()>(key, address, ttl.as_millis() as u64)
                    .await
            }
        })
        .await?;
        Ok(())
    }

    async fn distributor_address(&self, id: &str) -> Result<Option<String>, PresenceError> {
        let key = self.distributor_key(id);
        let address = retried(&self.redis, |mut redis| {
            let key = key.clone();
            async move { redis.get(key).await }
        })
        .await?;
        Ok(address)
    }

    async fn is_reachable(&self) -> bool {
        let mut redis = self.redis.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .is_ok()
    }
}
