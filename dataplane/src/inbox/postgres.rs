//! The inbox on Postgres: one table, `inbox`, made by the migrations in
//! `dataplane/migrations/postgres`, on one server or on each of several
//! shards (`shards`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use super::shards::{Layout, ShardedInbox};
use super::{Inbox, InboxError, Positioned, Row, to_i64};
use crate::config::ConfigError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The inbox's database, as the roles' flags give it.
#[derive(clap::Args, Debug, Clone)]
pub struct PostgresArgs {
    /// PostgreSQL URL of the inbox database, one server.
    #[arg(
        long,
        env = "NOTIF_POSTGRES_URL",
        hide_env_values = true,
        required_unless_present = "postgres_shard_urls",
        conflicts_with = "postgres_shard_urls"
    )]
    pub postgres_url: Option<String>,
    /// PostgreSQL URLs of the inbox's shards, comma-separated, instead of
    /// --postgres-url: each recipient's rows are on one of them, by a hash of
    /// the recipient. Add shards only at the end (docs/scaling.md).
    #[arg(
        long,
        env = "NOTIF_POSTGRES_SHARD_URLS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub postgres_shard_urls: Vec<String>,
    /// While shards are being added: how many of the listed shards there
    /// were before. Recipients that move are read from both places.
    #[arg(long, env = "NOTIF_POSTGRES_SHARDS_BEFORE")]
    pub postgres_shards_before: Option<usize>,
    /// While shards are being added: new notifications are still stored
    /// where they were before, until every process reads both places.
    #[arg(
        long,
        env = "NOTIF_POSTGRES_STORE_AS_BEFORE",
        requires = "postgres_shards_before"
    )]
    pub postgres_store_as_before: bool,
}

impl PostgresArgs {
    /// The inbox on pools that connect when first used, so that a role
    /// starts while PostgreSQL is away and recovers when it returns.
    pub fn inbox(&self) -> Result<ShardedInbox, ConfigError> {
        let (urls, flag) = match &self.postgres_url {
            Some(url) => (std::slice::from_ref(url), "--postgres-url"),
            None => (self.postgres_shard_urls.as_slice(), "--postgres-shard-urls"),
        };
        let layout = Layout::new(
            urls.len(),
            self.postgres_shards_before,
            self.postgres_store_as_before,
        )
        .map_err(|e| ConfigError::new("--postgres-shards-before", e))?;
        let shards = urls
            .iter()
            .map(|url| {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy(url)
                    .map_err(|e| ConfigError::new(flag, e.to_string()))?;
                Ok(PostgresInbox::new(pool))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(ShardedInbox::new(shards, layout))
    }
}

/// How long, after PostgreSQL was found unreachable, queries are answered
/// at once with an error instead of waiting for the pool's acquire timeout:
/// longer than the dependency check's period, which finds it again.
const FAIL_FAST: Duration = Duration::from_secs(5);

/// How long the dependency check waits for an answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct PostgresInbox {
    pool: PgPool,
    /// When a query last found PostgreSQL unreachable, until one reaches it.
    unreachable_since: Arc<Mutex<Option<Instant>>>,
}

impl PostgresInbox {
    pub fn new(pool: PgPool) -> Self {
        PostgresInbox {
            pool,
            unreachable_since: Arc::default(),
        }
    }

    fn unreachable_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.unreachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `query`, or fails at once while PostgreSQL was found
    /// unreachable lately: a client's request is then answered 503 at
    /// once, not after the pool's acquire timeout.
    async fn run<T>(
        &self,
        query: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, InboxError> {
        if self
            .unreachable_since()
            .is_some_and(|since| since.elapsed() < FAIL_FAST)
        {
            return Err(InboxError::Unreachable);
        }
        let result = query.await;
        self.note(result.as_ref().err());
        Ok(result?)
    }

    /// Notes whether a query reached PostgreSQL.
    fn note(&self, error: Option<&sqlx::Error>) {
        use sqlx::Error::{Io, PoolClosed, PoolTimedOut, Tls};
        match error {
            None => *self.unreachable_since() = None,
            Some(PoolTimedOut | PoolClosed | Io(_) | Tls(_)) => {
                *self.unreachable_since() = Some(Instant::now());
            }
            Some(_) => {}
        }
    }

    /// Brings the schema up to date. Safe to run from every director at
    /// once: sqlx takes an advisory lock, and applied migrations are skipped.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Stores `batch`, as [`Inbox::store`] does.
    pub(super) async fn insert(&self, batch: Vec<&Positioned>) -> Result<(), InboxError> {
        if batch.is_empty() {
            return Ok(());
        }
        // One statement for the batch: arrays of columns, unnested.
        let mut recipients = Vec::with_capacity(batch.len());
        let mut positions = Vec::with_capacity(batch.len());
        let mut ids = Vec::with_capacity(batch.len());
        let mut kinds = Vec::with_capacity(batch.len());
        let mut payloads = Vec::with_capacity(batch.len());
        let mut published = Vec::with_capacity(batch.len());
        let mut expires = Vec::with_capacity(batch.len());
        for Positioned {
            position,
            notification: n,
        } in batch
        {
            recipients.push(n.recipient.as_str());
            positions.push(to_i64(*position));
            ids.push(n.id.as_str());
            kinds.push(n.kind.as_deref());
            payloads.push(n.payload.get());
            published.push(to_i64(n.published_at_ms));
            expires.push(n.expires_at_ms.map(to_i64));
        }
        let insert = sqlx::query(
            "INSERT INTO inbox (recipient, position, id, kind, payload, published_at_ms, expires_at_ms)
             SELECT r, p, i, k, pl::json, pa, ea
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
                  AS t(r, p, i, k, pl, pa, ea)
             ON CONFLICT DO NOTHING",
        )
        .bind(&recipients)
        .bind(&positions)
        .bind(&ids)
        .bind(&kinds)
        .bind(&payloads)
        .bind(&published)
        .bind(&expires)
        .execute(&self.pool);
        self.run(insert).await?;
        Ok(())
    }

    /// Recipients with stored rows, in order, the first `limit` after
    /// `after` (`""` for the first ones).
    pub(super) async fn recipients_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, InboxError> {
        let list = sqlx::query_scalar(
            "SELECT DISTINCT recipient FROM inbox WHERE recipient > $1 ORDER BY recipient LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool);
        self.run(list).await
    }
}

#[async_trait]
impl Inbox for PostgresInbox {
    async fn store(&self, batch: &[Positioned]) -> Result<(), InboxError> {
        self.insert(batch.iter().collect()).await
    }

    async fn pending(
        &self,
        recipient: &str,
        after: Option<u64>,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Positioned>, InboxError> {
        let rows: Vec<Row> = self
            .run(
                sqlx::query_as(
            "SELECT position, id, kind, payload::text, published_at_ms, expires_at_ms
             FROM inbox
             WHERE recipient = $1 AND position > $2 AND (expires_at_ms IS NULL OR expires_at_ms > $3)
             ORDER BY position
             LIMIT $4",
        )
        .bind(recipient)
        .bind(after.map(to_i64).unwrap_or(-1))
        .bind(to_i64(now_ms))
        .bind(i64::from(limit))
        .fetch_all(&self.pool),
            )
            .await?;
        rows.into_iter()
            .map(|row| super::from_row(recipient, row))
            .collect()
    }

    async fn acknowledge(
        &self,
        recipient: &str,
        ids: &[String],
    ) -> Result<Vec<String>, InboxError> {
        let delete = sqlx::query_scalar(
            "DELETE FROM inbox WHERE recipient = $1 AND id = ANY($2) RETURNING id",
        )
        .bind(recipient)
        .bind(ids)
        .fetch_all(&self.pool);
        let removed: Vec<String> = self.run(delete).await?;
        Ok(removed)
    }

    async fn acknowledge_through(
        &self,
        recipient: &str,
        position: u64,
    ) -> Result<Vec<String>, InboxError> {
        let delete = sqlx::query_scalar(
            "DELETE FROM inbox WHERE recipient = $1 AND position <= $2 RETURNING id",
        )
        .bind(recipient)
        .bind(to_i64(position))
        .fetch_all(&self.pool);
        let removed: Vec<String> = self.run(delete).await?;
        Ok(removed)
    }

    async fn purge(&self, now_ms: u64, retention: Duration) -> Result<u64, InboxError> {
        let delete = sqlx::query(
            "DELETE FROM inbox
             WHERE expires_at_ms <= $1 OR stored_at < now() - make_interval(secs => $2)",
        )
        .bind(to_i64(now_ms))
        .bind(retention.as_secs_f64())
        .execute(&self.pool);
        Ok(self.run(delete).await?.rows_affected())
    }

    /// Always asks, and what it finds decides whether queries fail fast.
    async fn is_reachable(&self) -> bool {
        let check = sqlx::query("SELECT 1").execute(&self.pool);
        let result = tokio::time::timeout(CHECK_TIMEOUT, check)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        self.note(result.as_ref().err());
        result.is_ok()
    }
}
