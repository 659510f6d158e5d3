//! The backends, and the director's forwarding stream, wrapped so that
//! each call meets what the plan says for its target at that moment: it
//! fails, its answer is lost after it did its work, or it stalls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dataplane::forward::{self, Answer, Forward, Outcome};
use dataplane::inbox::{Inbox, InboxError, Positioned};
use dataplane::log::{Done, Log, LogError, LogReader, Record};
use dataplane::notification::Notification;
use dataplane::presence::{Connection, Presence, PresenceError};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::plan::{Fault, Plan, Target};

pub struct Faulty<T: ?Sized> {
    inner: Arc<T>,
    plan: Arc<Plan>,
    target: Target,
}

impl<T: ?Sized> Faulty<T> {
    pub fn new(inner: Arc<T>, plan: Arc<Plan>, target: Target) -> Arc<Faulty<T>> {
        Arc::new(Faulty {
            inner,
            plan,
            target,
        })
    }

    /// What a call meets now, once it has waited out a stall.
    async fn enter(&self) -> Option<Fault> {
        match self.plan.now(self.target) {
            Some(Fault::Stall(pause)) => {
                tokio::time::sleep(pause).await;
                None
            }
            fault => fault,
        }
    }
}

/// Runs `call` as `fault` says: not at all, or with its answer lost.
async fn meet<T, E>(
    fault: Option<Fault>,
    call: impl Future<Output = Result<T, E>>,
    error: impl FnOnce() -> E,
) -> Result<T, E> {
    match fault {
        Some(Fault::Fail) => Err(error()),
        Some(Fault::AnswerLost) => {
            let _ = call.await;
            Err(error())
        }
        _ => call.await,
    }
}

fn log_error() -> LogError {
    LogError::Unavailable("injected: the log is away".into())
}

fn read_error() -> LogError {
    LogError::Read("injected: the log is away".into())
}

fn inbox_error() -> InboxError {
    InboxError::Database(sqlx::Error::PoolTimedOut)
}

fn presence_error() -> PresenceError {
    redis::RedisError::from((redis::ErrorKind::Io, "injected: presence is away")).into()
}

#[async_trait]
impl Log for Faulty<dyn Log> {
    async fn append(&self, batch: &[Notification]) -> Result<(), LogError> {
        meet(self.enter().await, self.inner.append(batch), log_error).await
    }

    async fn is_reachable(&self) -> bool {
        self.plan.now(self.target).is_none() && self.inner.is_reachable().await
    }
}

#[async_trait]
impl LogReader for Faulty<dyn LogReader> {
    async fn next(&self) -> Result<Record, LogError> {
        match self.enter().await {
            // A record read and then lost would be skipped: a reader that
            // loses its connection reads it again instead.
            Some(Fault::Fail | Fault::AnswerLost) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Err(read_error())
            }
            _ => self.inner.next().await,
        }
    }

    async fn commit(&self, done: &[Done], wait: bool) -> Result<(), LogError> {
        meet(
            self.enter().await,
            self.inner.commit(done, wait),
            read_error,
        )
        .await
    }

    async fn epoch_done_below(&self, epoch: u32) -> Result<bool, LogError> {
        meet(
            self.enter().await,
            self.inner.epoch_done_below(epoch),
            read_error,
        )
        .await
    }

    fn pause(&self, partition: i32) {
        self.inner.pause(partition)
    }

    fn resume(&self, partitions: &[i32]) {
        self.inner.resume(partitions)
    }

    async fn is_reachable(&self) -> bool {
        self.plan.now(self.target).is_none() && self.inner.is_reachable().await
    }
}

#[async_trait]
impl Inbox for Faulty<dyn Inbox> {
    async fn store(&self, batch: &[Positioned]) -> Result<(), InboxError> {
        meet(self.enter().await, self.inner.store(batch), inbox_error).await
    }

    async fn pending(
        &self,
        recipient: &str,
        after: Option<u64>,
        limit: u32,
        now_ms: u64,
    ) -> Result<Vec<Positioned>, InboxError> {
        let call = self.inner.pending(recipient, after, limit, now_ms);
        meet(self.enter().await, call, inbox_error).await
    }

    async fn acknowledge(
        &self,
        recipient: &str,
        ids: &[String],
    ) -> Result<Vec<String>, InboxError> {
        let call = self.inner.acknowledge(recipient, ids);
        meet(self.enter().await, call, inbox_error).await
    }

    async fn acknowledge_through(
        &self,
        recipient: &str,
        position: u64,
    ) -> Result<Vec<String>, InboxError> {
        let call = self.inner.acknowledge_through(recipient, position);
        meet(self.enter().await, call, inbox_error).await
    }

    async fn purge(&self, now_ms: u64, retention: Duration) -> Result<u64, InboxError> {
        self.inner.purge(now_ms, retention).await
    }

    async fn is_reachable(&self) -> bool {
        self.plan.now(self.target).is_none() && self.inner.is_reachable().await
    }
}

#[async_trait]
impl Presence for Faulty<dyn Presence> {
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<Vec<bool>, PresenceError> {
        let call = self.inner.register(connections, ttl);
        meet(self.enter().await, call, presence_error).await
    }

    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError> {
        meet(
            self.enter().await,
            self.inner.unregister(connection),
            presence_error,
        )
        .await
    }

    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError> {
        meet(
            self.enter().await,
            self.inner.lookup(recipient),
            presence_error,
        )
        .await
    }

    async fn announce_distributor(
        &self,
        id: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        self.inner.announce_distributor(id, address, ttl).await
    }

    async fn distributor_address(&self, id: &str) -> Result<Option<String>, PresenceError> {
        self.inner.distributor_address(id).await
    }

    async fn is_reachable(&self) -> bool {
        self.plan.now(self.target).is_none() && self.inner.is_reachable().await
    }
}

/// The forwarding stream to a distributor breaking: what is sent meanwhile
/// is lost on the way (`Fail`) or handed over with its outcome lost
/// (`AnswerLost`); either way the director sees a timeout, as it does when
/// a stream breaks. Messages are queued on the stream when `send` is
/// called, so order is kept.
impl Forward for Faulty<dyn Forward> {
    fn send(
        &self,
        distributor: &str,
        recipient: &str,
        message: forward::Message,
    ) -> BoxFuture<'static, Answer> {
        let timed_out = futures::future::ready(Answer::from(Outcome::TimedOut)).boxed();
        match self.plan.now(self.target) {
            Some(Fault::Fail) => timed_out,
            Some(Fault::AnswerLost) => {
                tokio::spawn(self.inner.send(distributor, recipient, message));
                timed_out
            }
            _ => self.inner.send(distributor, recipient, message),
        }
    }
}
