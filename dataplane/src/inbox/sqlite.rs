//! The inbox on SQLite, for the standalone service: the `inbox` table of
//! `dataplane/migrations/sqlite`, with the same rules as on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use sqlx::SqliteConnection;

use super::{Inbox, InboxError, Positioned, Row, to_i64};
use crate::notification::now_ms;
use crate::sqlite::Database;

/// Its changes go through the database's writer, in commits shared with
/// the log's appends and each other.
#[derive(Clone)]
pub struct SqliteInbox {
    database: Database,
}

impl SqliteInbox {
    /// The inbox in `database`, which must be migrated.
    pub fn new(database: Database) -> Self {
        SqliteInbox { database }
    }
}

/// Ids as one JSON array, for `IN (SELECT value FROM json_each(?))`.
fn id_list(ids: &[String]) -> Result<String, serde_json::Error> {
    serde_json::to_string(ids)
}

#[async_trait]
impl Inbox for SqliteInbox {
    async fn store(&self, batch: &[Positioned]) -> Result<(), InboxError> {
        let (batch, stored_at) = (batch.to_vec(), to_i64(now_ms()));
        self.database
            .write(move |connection| {
                async move { insert(connection, &batch, stored_at).await }.boxed()
            })
            .await?;
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
        .fetch_all(&self.database.pool)
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
        let (recipient, ids) = (recipient.to_owned(), id_list(ids)?);
        let removed = self
            .database
            .write(move |connection| {
                sqlx::query_scalar(
                    "DELETE FROM inbox
                     WHERE recipient = ? AND id IN (SELECT value FROM json_each(?))
                     RETURNING id",
                )
                .bind(recipient)
                .bind(ids)
                .fetch_all(connection)
                .boxed()
            })
            .await?;
        Ok(removed)
    }

    async fn acknowledge_through(
        &self,
        recipient: &str,
        position: u64,
    ) -> Result<Vec<String>, InboxError> {
        let recipient = recipient.to_owned();
        let removed = self
            .database
            .write(move |connection| {
                sqlx::query_scalar(
                    "DELETE FROM inbox WHERE recipient = ? AND position <= ? RETURNING id",
                )
                .bind(recipient)
                .bind(to_i64(position))
                .fetch_all(connection)
                .boxed()
            })
            .await?;
        Ok(removed)
    }

    async fn purge(&self, now_ms: u64, retention: Duration) -> Result<u64, InboxError> {
        let stored_before =
            now_ms.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
        let result = sqlx::query("DELETE FROM inbox WHERE expires_at_ms <= ? OR stored_at_ms < ?")
            .bind(to_i64(now_ms))
            .bind(to_i64(stored_before))
            .execute(&self.database.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1")
            .execute(&self.database.pool)
            .await
            .is_ok()
    }
}

/// Stores `batch`, within the writer's transaction: one statement per
/// chunk, within SQLite's limit of bound values.
async fn insert(
    connection: &mut SqliteConnection,
    batch: &[Positioned],
    stored_at: i64,
) -> Result<(), sqlx::Error> {
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
        insert.build().execute(&mut *connection).await?;
    }
    Ok(())
}
