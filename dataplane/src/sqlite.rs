//! The standalone service's database: one SQLite connection, and one writer
//! task that commits the log's appends and the inbox's changes in groups.
//! Every write waiting when a commit ends goes into the next transaction,
//! so writers at the same moment share one commit and its sync to disk:
//! a burst of hundreds of inbox stores (silent clients timing out together)
//! costs a few syncs, not hundreds, and publishes do not queue behind them.

use std::any::Any;

use futures::future::BoxFuture;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Writes taken into one transaction, at most.
const GROUP: usize = 256;

/// A write that did not commit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(String);

/// One connection's pool, and the writer that groups writes on it.
#[derive(Clone)]
pub struct Database {
    pub pool: SqlitePool,
    writes: mpsc::Sender<Job>,
}

/// What a write's statements returned, handed back to its caller.
type Value = Box<dyn Any + Send>;

/// A write's statements, run in its group's transaction.
type Statements = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<Value, sqlx::Error>>
        + Send,
>;

/// A write, and its caller.
struct Job {
    statements: Statements,
    done: oneshot::Sender<Result<Value, WriteError>>,
}

impl Database {
    /// Writes to `pool`'s database through a writer task of its own.
    pub fn new(pool: SqlitePool) -> Database {
        let (writes, queue) = mpsc::channel(1024);
        tokio::spawn(write_groups(pool.clone(), queue));
        Database { pool, writes }
    }

    /// Runs `statements` in the next group's transaction and returns what
    /// they returned once it is committed. Should a write of the group
    /// fail, the whole group is rolled back, and every caller gets an error.
    /// The statements use only the connection they are given: until the
    /// commit, the pool's one connection is the writer's.
    pub async fn write<T, F>(&self, statements: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job = Job {
            statements: Box::new(move |connection| {
                Box::pin(async move { Ok(Box::new(statements(connection).await?) as Value) })
            }),
            done,
        };
        let stopped = || WriteError("the database's writer stopped".into());
        self.writes.send(job).await.map_err(|_| stopped())?;
        let value = answer.await.map_err(|_| stopped())??;
        Ok(*value
            .downcast::<T>()
            .expect("the type its statements return"))
    }
}

async fn write_groups(pool: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(GROUP);
    while queue.recv_many(&mut group, GROUP).await > 0 {
        commit(&pool, group.drain(..)).await;
    }
}

/// Runs `group`'s writes in one transaction, and answers each caller.
async fn commit(pool: &SqlitePool, mut group: impl Iterator<Item = Job>) {
    let mut ran = Vec::new();
    let committed = async {
        let failed = |e: sqlx::Error| WriteError(e.to_string());
        let mut transaction = pool.begin().await.map_err(failed)?;
        for job in group.by_ref() {
            match (job.statements)(&mut transaction).await {
                Ok(value) => ran.push((job.done, value)),
                Err(e) => {
                    let _ = job.done.send(Err(WriteError(e.to_string())));
                    return Err(WriteError(format!(
                        "rolled back with a write of the same commit that failed: {e}"
                    )));
                }
            }
        }
        transaction.commit().await.map_err(failed)
    }
    .await;
    for (done, value) in ran {
        let _ = done.send(committed.clone().map(|()| value));
    }
    if let Err(e) = committed {
        for job in group {
            let _ = job.done.send(Err(e.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;

    async fn database() -> Database {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").expect("options");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("opened");
        sqlx::query("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .expect("made");
        Database::new(pool)
    }

    fn insert(
        x: i64,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64, sqlx::Error>>
    + Send
    + 'static {
        move |connection| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (x) VALUES (?)")
                    .bind(x)
                    .execute(&mut *connection)
                    .await?;
                Ok(x)
            })
        }
    }

    async fn rows(database: &Database) -> Vec<i64> {
        sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&database.pool)
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn writes_at_the_same_moment_share_a_commit_and_each_gets_its_answer() {
        let database = database().await;
        let writes = (0..100).map(|x| database.write(insert(x)));
        let answers = futures::future::join_all(writes).await;
        for (x, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.expect("committed"), x as i64);
        }
        assert_eq!(rows(&database).await, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_failing_write_rolls_its_group_back_and_everyone_hears_of_it() {
        let database = database().await;
        database.write(insert(7)).await.expect("committed");
        // Queued together: the second repeats a key and fails.
        let (first, repeated, third) = tokio::join!(
            database.write(insert(1)),
            database.write(insert(7)),
            database.write(insert(2))
        );
        let repeated = repeated.expect_err("the repeated key is refused");
        assert!(repeated.to_string().contains("UNIQUE"), "{repeated}");
        assert!(first.is_err(), "rolled back with its group");
        assert!(third.is_err(), "not run: its group failed first");
        assert_eq!(
            rows(&database).await,
            vec![7],
            "nothing of the failed group"
        );
        // The writer goes on.
        assert_eq!(database.write(insert(3)).await.expect("committed"), 3);
    }
}
