//! The inbox on SQLite, for the standalone service: the `inbox` table of
//! `dataplane/migrations/sqlite`, with the same rules as on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;

use super::{Inbox, InboxError, Positioned, Row, to_i64};
use crate::notification::now_ms;

#[derive(Clone)]
pub struct SqliteInbox {
    pool: SqlitePool,
}

impl SqliteInbox {
    /// The inbox in `pool`'s database, which must be migrated.
    pub fn new(pool: SqlitePool) -> Self {
        SqliteInbox { pool }
    }
}

/// Ids as one JSON array, for `IN (SELECT value FROM json_each(?))`.
fn id_list(ids: &[String]) -> Result<String, serde_json::Error> {
    serde_json::to_string(ids)
}

#[async_trait]
impl Inbox for SqliteInbox {
    async fn store(&self, batch: &[Positioned]) -> Result<(), InboxError> {
        let stored_at = to_i64(now_ms());
        // One statement per chunk: one round trip to SQLite's thread each,
        // within SQLite's limit of bound values.
        let mut transaction = self.pool.begin().await?;
        for chunk in batch.chunks(1000) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO inbox (recipient, position, id, kind, payload, published_at_ms, expires_at_ms, stored_at_ms) ",
            );
            insert.push_values(
                chunk,
                |mut row,
                 Positioned {
                     position,
                     notification: n,
                 }| {
                    row.push_bind(&n.recipient)
                        .push_bind(to_i64(*position))
                        .push_bind(&n.id)
                        .push_bind(n.kind.as_deref())
                        .push_bind(n.payload.get())
                        .push_bind(to_i64(n.published_at_ms))
                        .push_bind(n.expires_at_ms.map(to_i64))
                        .push_bind(stored_at);
                },
            );
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn pending(
        &self,
        recipient: &str,
        after: Option<u64>,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Positioned>, InboxError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT position, id, kind, payload, published_at_ms, expires_at_ms
             FROM inbox
             WHERE recipient = ? AND position > ? AND (expires_at_ms IS NULL OR expires_at_ms > ?)
             ORDER BY position
             LIMIT ?",
        )
        .bind(recipient)
        .bind(after.map(to_i64).unwrap_or(-1))
        .bind(to_i64(now_ms))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM inbox
             WHERE recipient = ? AND id IN (SELECT value FROM json_each(?))
             RETURNING id",
        )
        .bind(recipient)
        .bind(id_list(ids)?)
        .fetch_all(&self.pool)
        .await?;
        Ok(removed)
    }

    async fn acknowledge_through(
        &self,
        recipient: &str,
        position: u64,
    ) -> Result<Vec<String>, InboxError> {
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM inbox WHERE recipient = ? AND position <= ? RETURNING id",
        )
        .bind(recipient)
        .bind(to_i64(position))
        .fetch_all(&self.pool)
        .await?;
        Ok(removed)
    }

    async fn purge(&self, now_ms: u64, retention: Duration) -> Result<u64, InboxError> {
        let stored_before =
            now_ms.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
        let result = sqlx::query("DELETE FROM inbox WHERE expires_at_ms <= ? OR stored_at_ms < ?")
            .bind(to_i64(now_ms))
            .bind(to_i64(stored_before))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}
