//! Presence on Redis. Each recipient has a sorted set of its connections
//! (`<prefix>presence:<recipient>`), each member `<distributor>|<connection>`
//! scored by the time (ms) it expires; the key itself expires with its last
//! member. Distributors' addresses are plain keys with a TTL.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Connection, Presence, PresenceError};
use crate::notification::now_ms;

#[derive(Clone)]
pub struct RedisPresence {
    redis: ConnectionManager,
    /// Prepended to every key, so that services (or tests) can share a Redis.
    prefix: String,
}

impl RedisPresence {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url)?;
        let redis = ConnectionManager::new(client).await?;
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
    ) -> Result<(), PresenceError> {
        if connections.is_empty() {
            return Ok(());
        }
        let now = now_ms() as i64;
        let expires = now + millis(ttl);
        let mut pipe = redis::pipe();
        for connection in connections {
            let key = self.recipient_key(&connection.recipient);
            pipe.zadd(&key, member(connection), expires)
                .ignore()
                .zrembyscore(&key, "-inf", now)
                .ignore()
                .pexpire(&key, millis(ttl))
                .ignore();
        }
        let mut redis = self.redis.clone();
        pipe.query_async::<()>(&mut redis).await?;
        Ok(())
    }

    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError> {
        let mut redis = self.redis.clone();
        let () = redis
            .zrem(
                self.recipient_key(&connection.recipient),
                member(connection),
            )
            .await?;
        Ok(())
    }

    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError> {
        let mut redis = self.redis.clone();
        let members: Vec<String> = redis
            .zrangebyscore(self.recipient_key(recipient), now_ms() as i64, "+inf")
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
        let mut redis = self.redis.clone();
        let () = redis
            .pset_ex(self.distributor_key(id), address, ttl.as_millis() as u64)
            .await?;
        Ok(())
    }

    async fn distributor_address(&self, id: &str) -> Result<Option<String>, PresenceError> {
        let mut redis = self.redis.clone();
        Ok(redis.get(self.distributor_key(id)).await?)
    }

    async fn is_reachable(&self) -> bool {
        let mut redis = self.redis.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .is_ok()
    }
}
