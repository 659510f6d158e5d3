//! The log on SQLite, for the standalone service: one table in which a row's
//! `seq` is its offset, in one partition (0). Appends from every request are
//! written together by one writer task, one transaction (one fsync) per
//! group, so concurrent publishes share the cost of durability.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::SqlitePool;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::{Done, Log, LogError, LogReader, Record};
use crate::metrics::PartitionLabels;
use crate::notification::Notification;

/// The only partition.
const PARTITION: i32 = 0;
/// Rows read at a time.
const PAGE: i64 = 512;

struct Append {
    records: Vec<Vec<u8>>,
    done: oneshot::Sender<Result<(), String>>,
}

pub struct SqliteLog {
    pool: SqlitePool,
    appends: mpsc::Sender<Append>,
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
    /// The log in `pool`'s database (migrated), read from where the last
    /// commit left it; what is written and not yet done is set on `lag`.
    pub async fn open(
        pool: SqlitePool,
        lag: &Family<PartitionLabels, Gauge>,
    ) -> Result<Self, sqlx::Error> {
        let committed: i64 =
            sqlx::query_scalar("SELECT next_seq FROM log_committed WHERE partition = ?")
                .bind(PARTITION)
                .fetch_optional(&pool)
                .await?
                .unwrap_or(0);
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log")
            .fetch_one(&pool)
            .await?;
        let lag = lag
            .get_or_create(&PartitionLabels {
                partition: PARTITION.into(),
            })
            .clone();
        lag.set(held);
        let (appends, queue) = mpsc::channel(1024);
        let appended = Arc::new(Notify::new());
        tokio::spawn(write(pool.clone(), queue, appended.clone(), lag.clone()));
        Ok(SqliteLog {
            pool,
            appends,
            appended,
            reading: Mutex::new(Reading {
                next: committed,
                buffer: VecDeque::new(),
            }),
            committed: std::sync::Mutex::new(committed),
            lag,
        })
    }
}

/// The writer task: takes every append waiting, writes them in one
/// transaction, and answers each.
async fn write(
    pool: SqlitePool,
    mut queue: mpsc::Receiver<Append>,
    appended: Arc<Notify>,
    lag: Gauge,
) {
    let mut group = Vec::new();
    while queue.recv_many(&mut group, 256).await > 0 {
        let result = match insert(&pool, &group).await {
            Ok(rows) => {
                lag.inc_by(rows);
                appended.notify_one();
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        for append in group.drain(..) {
            let _ = append.done.send(result.clone());
        }
    }
}

/// Rows per INSERT statement: one round trip to SQLite's thread each.
const ROWS_PER_INSERT: usize = 1000;

/// Writes `group`'s records; returns how many.
async fn insert(pool: &SqlitePool, group: &[Append]) -> Result<i64, sqlx::Error> {
    let records: Vec<&Vec<u8>> = group.iter().flat_map(|a| &a.records).collect();
    let mut transaction = pool.begin().await?;
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::new("INSERT INTO log (record) ");
        insert.push_values(chunk, |mut row, record| {
            row.push_bind(*record);
        });
        insert.build().execute(&mut *transaction).await?;
    }
    transaction.commit().await?;
    Ok(records.len() as i64)
}

#[async_trait]
impl Log for SqliteLog {
    async fn append(&self, batch: &[Notification]) -> Result<(), LogError> {
        let records = batch
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        let (done, written) = oneshot::channel();
        self.appends
            .send(Append { records, done })
            .await
            .map_err(|_| LogError::Unavailable("the log's writer stopped".into()))?;
        written
            .await
            .map_err(|_| LogError::Unavailable("the log's writer stopped".into()))?
            .map_err(LogError::Unavailable)
    }

    async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
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
                    .fetch_all(&self.pool)
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
            let mut transaction = self.pool.begin().await?;
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
