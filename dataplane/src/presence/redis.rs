//! Presence on Redis, one server or a Redis Cluster. Each recipient has a
//! sorted set of its connections (`<prefix>presence:<recipient>`), each
//! member `<distributor>|<connection>` scored by the time (ms) it expires;
//! the key itself expires with its last member. Distributors' addresses are
//! plain keys with a TTL. Every command touches one key, so a cluster
//! spreads recipients over its masters by hash slot.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};

use super::{Connection, Presence, PresenceError};
use crate::notification::now_ms;

/// Presence's Redis, as the roles' flags give it.
#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// Redis URL of presence, one server.
    #[arg(
        long,
        env = "NOTIF_REDIS_URL",
        hide_env_values = true,
        required_unless_present = "redis_cluster_urls",
        conflicts_with = "redis_cluster_urls"
    )]
    pub redis_url: Option<String>,
    /// URLs of some masters of a Redis Cluster for presence, comma-separated,
    /// instead of --redis-url; the others are found from them.
    #[arg(
        long,
        env = "NOTIF_REDIS_CLUSTER_URLS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub redis_cluster_urls: Vec<String>,
    /// Prefix of every Redis key, so that services can share a Redis.
    #[arg(long, env = "NOTIF_REDIS_KEY_PREFIX", default_value = "notif:")]
    pub redis_key_prefix: String,
}

impl RedisArgs {
    pub async fn presence(&self) -> Result<RedisPresence, crate::config::ConfigError> {
        let (connected, flag) = match &self.redis_url {
            Some(url) => (
                RedisPresence::connect(url, &self.redis_key_prefix).await,
                "--redis-url",
            ),
            None => (
                RedisPresence::connect_cluster(&self.redis_cluster_urls, &self.redis_key_prefix)
                    .await,
                "--redis-cluster-urls",
            ),
        };
        connected.map_err(|e| crate::config::ConfigError::new(flag, e.to_string()))
    }
}

/// A connection to one Redis, or to a Redis Cluster.
#[derive(Clone)]
enum Redis {
    One(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::One(redis) => redis.req_packed_command(cmd),
            Redis::Cluster(redis) => redis.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Redis::One(redis) => redis.req_packed_commands(pipeline, offset, count),
            Redis::Cluster(redis) => redis.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::One(redis) => redis.get_db(),
            Redis::Cluster(redis) => redis.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisPresence {
    redis: Redis,
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
            redis: Redis::One(redis),
            prefix: prefix.to_string(),
        })
    }

    /// Presence on the Redis Cluster that `urls` (some of its masters) are
    /// part of. It follows the cluster's slots as they move, and gives up
    /// on a master that does not answer as soon as on one Redis.
    pub async fn connect_cluster(urls: &[String], prefix: &str) -> Result<Self, PresenceError> {
        let client = ClusterClientBuilder::new(urls.to_vec())
            .retries(2)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(1))
            .build()?;
        let redis = client.get_async_connection().await?;
        Ok(RedisPresence {
            redis: Redis::Cluster(redis),
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
async fn retried<T, F, Fut>(redis: &Redis, op: F) -> redis::RedisResult<T>
where
    F: Fn(Redis) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    match op(redis.clone()).await {
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
            op(redis.clone()).await
        }
        result => result,
    }
}

/// The distributors of a recipient's `members`, each once.
fn distributors(members: Vec<String>) -> Vec<String> {
    let distributors: BTreeSet<String> = members
        .into_iter()
        .filter_map(|m| {
            m.split_once('|')
                .map(|(distributor, _)| distributor.to_string())
        })
        .collect();
    distributors.into_iter().collect()
}

fn member(connection: &Connection) -> String {
    format!("{}|{}", connection.distributor, connection.id)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Presence for RedisPresence {
    /// One pipeline for them all on one Redis. A cluster refuses a
    /// pipeline whose keys are in different slots, so there each connection
    /// has a pipeline of its own, all sent at once.
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<Vec<bool>, PresenceError> {
        if connections.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms() as i64;
        let expires = now + millis(ttl);
        let pipe_of = |connections: &[Connection]| {
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
            pipe
        };
        let query = |pipe: Pipeline| {
            retried(&self.redis, move |mut redis| {
                let pipe = pipe.clone();
                async move { pipe.query_async::<Vec<usize>>(&mut redis).await }
            })
        };
        let added: Vec<usize> = match self.redis {
            Redis::One(_) => query(pipe_of(connections)).await?,
            Redis::Cluster(_) => {
                let each = connections
                    .iter()
                    .map(|c| query(pipe_of(std::slice::from_ref(c))));
                try_join_all(each).await?.into_iter().flatten().collect()
            }
        };
        Ok(added.into_iter().map(|added| added > 0).collect())
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
        Ok(distributors(members))
    }

    /// One pipeline on one Redis. A cluster refuses a pipeline whose keys
    /// are in different slots, so there each lookup goes on its own, and
    /// the cluster's connection to each master pipelines those that are on
    /// their way at once.
    async fn lookup_many(&self, recipients: &[String]) -> Result<Vec<Vec<String>>, PresenceError> {
        if let Redis::Cluster(_) = self.redis {
            let lookups = recipients.iter().map(|r| self.lookup(r));
            return futures::future::try_join_all(lookups).await;
        }
        let now = now_ms() as i64;
        let mut pipe = redis::pipe();
        for recipient in recipients {
            pipe.zrangebyscore(self.recipient_key(recipient), now, "+inf");
        }
        let members: Vec<Vec<String>> = retried(&self.redis, |mut redis| {
            let pipe = pipe.clone();
            async move { pipe.query_async(&mut redis).await }
        })
        .await?;
        Ok(members.into_iter().map(distributors).collect())
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
