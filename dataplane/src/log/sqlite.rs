//! The log on SQLite, for the standalone service: one table in which a row's
//! `seq` is its offset, in one partition (0). Appends go through the
//! database's writer, which commits everything waiting together, so
//! concurrent publishes share the cost of durability.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::SqliteConnection;
use tokio::sync::{Mutex, Notify};

use super::{Done, Log, LogError, LogReader, Record};
use crate::metrics::PartitionLabels;
use crate::notification::Notification;
use crate::sqlite::Database;

/// The only partition.
const PARTITION: i32 = 0;
/// Rows read at a time.
const PAGE: i64 = 512;

pub struct SqliteLog {
    database: Database,
    /// Told after each write, to wake the reader.
    appended: Arc<Notify>,
    reading: Mutex<Reading>,
    /// The last offset committed, so that an unchanged one is not written again.
    committed: std::sync::Mutex<i64>,
    /// The rows the log holds, which are those not done (done rows are
    /// deleted): the consumer lag.
    lag: Gauge,
}

/// The reader's place: the next offset to read, and rows read but not yet
/// handed out.
struct Reading {
    next: i64,
    buffer: VecDeque<Record>,
}

impl SqliteLog {
    /// The log in `database` (migrated), read from where the last commit
    /// left it; what is written and not yet done is set on `lag`.
    pub async fn open(
        database: Database,
        lag: &Family<PartitionLabels, Gauge>,
    ) -> Result<Self, sqlx::Error> {
        let pool = &database.pool;
        let committed: i64 =
            sqlx::query_scalar("SELECT next_seq FROM log_committed WHERE partition = ?")
                .bind(PARTITION)
                .fetch_optional(pool)
                .await?
                .unwrap_or(0);
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log")
            .fetch_one(pool)
            .await?;
        let lag = lag
            .get_or_create(&PartitionLabels {
                partition: PARTITION.into(),
            })
            .clone();
        lag.set(held);
        Ok(SqliteLog {
            database,
            appended: Arc::new(Notify::new()),
            reading: Mutex::new(Reading {
                next: committed,
                buffer: VecDeque::new(),
            }),
            committed: std::sync::Mutex::new(committed),
            lag,
        })
    }
}

/// Rows per INSERT statement: one round trip to SQLite's thread each.
const ROWS_PER_INSERT: usize = 1000;

/// Appends `records`, within the writer's transaction.
async fn insert(connection: &mut SqliteConnection, records: &[Vec<u8>]) -> Result<(), sqlx::Error> {
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::new("INSERT INTO log (record) ");
        insert.push_values(chunk, |mut row, record| {
            row.push_bind(record);
        });
        insert.build().execute(&mut *connection).await?;
    }
    Ok(())
}

#[async_trait]
impl Log for SqliteLog {
    async fn append(&self, batch: &[Notification]) -> Result<(), LogError> {
        let records = batch
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        let rows = records.len() as i64;
        self.database
            .write(move |connection| async move { insert(connection, &records).await }.boxed())
            .await
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        self.lag.inc_by(rows);
        self.appended.notify_one();
        Ok(())
    }

    async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1")
            .execute(&self.database.pool)
            .await
            .is_ok()
    }
}

#[async_trait]
impl LogReader for SqliteLog {
    async fn next(&self) -> Result<Record, LogError> {
        let mut reading = self.reading.lock().await;
        loop {
            if let Some(record) = reading.buffer.pop_front() {
                return Ok(record);
            }
            // Asked for before reading, so that a write in between still wakes us.
            let woken = self.appended.notified();
            let rows: Vec<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT seq, record FROM log WHERE seq >= ? ORDER BY seq LIMIT ?")
                    .bind(reading.next)
                    .bind(PAGE)
                    .fetch_all(&self.database.pool)
                    .await
                    .map_err(|e| LogError::Read(e.to_string()))?;
            match rows.last() {
                Some(&(last, _)) => reading.next = last + 1,
                // The notification wakes the reader; the timeout is a fallback.
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), woken).await;
                }
            }
            reading
                .buffer
                .extend(rows.into_iter().map(|(seq, payload)| Record {
                    partition: PARTITION,
                    offset: seq,
                    epoch: 0,
                    marker: false,
                    payload,
                }));
        }
    }

    async fn commit(&self, done: &[Done], _wait: bool) -> Result<(), LogError> {
        let Some(next) = done
            .iter()
            .find(|d| d.partition == PARTITION)
            .map(|d| d.offset)
        else {
            return Ok(());
        };
        if next <= *self.committed.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(());
        }
        let commit = async {
            let mut transaction = self.database.pool.begin().await?;
            sqlx::query(
                "INSERT INTO log_committed (partition, next_seq) VALUES (?, ?)
                 ON CONFLICT (partition) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
            )
            .bind(PARTITION)
            .bind(next)
            .execute(&mut *transaction)
            .await?;
            // Routed rows are not read again: the log keeps only what is not done.
            let deleted = sqlx::query("DELETE FROM log WHERE seq < ?")
                .bind(next)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            transaction.commit().await.map(|()| deleted)
        };
        let deleted = commit
            .await
            .map_err(|e: sqlx::Error| LogError::Read(format!("committing failed: {e}")))?;
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = next;
        self.lag.dec_by(deleted as i64);
        Ok(())
    }

    /// One partition that never grows: every record is of epoch 0.
    async fn epoch_done_below(&self, _epoch: u32) -> Result<bool, LogError> {
        Ok(true)
    }

    fn pause(&self, _partition: i32) {}

    fn resume(&self, _partitions: &[i32]) {}

    async fn is_reachable(&self) -> bool {
        Log::is_reachable(self).await
    }
}
