//! The director's presence lookups, gathered: lookups asked for while a
//! batch is on its way to Redis wait for it to come back, then go together
//! as the next batch, in one round trip ([`Presence::lookup_many`]). A
//! lookup alone goes at once; under load, one round trip carries many
//! notifications' lookups, so Redis's work per notification falls as the
//! load rises. Nothing is cached: every answer is Redis's at the time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{Connection, Presence, PresenceError};

/// The most lookups in one batch.
const BATCH: usize = 256;

type Answer = oneshot::Sender<Result<Vec<String>, PresenceError>>;

/// `presence`, with its lookups gathered; everything else goes straight
/// through.
pub struct GatheredLookups {
    presence: Arc<dyn Presence>,
    lookups: mpsc::UnboundedSender<(String, Answer)>,
}

impl GatheredLookups {
    /// Gathers `presence`'s lookups, in a task that ends when this is dropped.
    pub fn new(presence: Arc<dyn Presence>) -> GatheredLookups {
        let (lookups, asked) = mpsc::unbounded_channel();
        tokio::spawn(gather(presence.clone(), asked));
        GatheredLookups { presence, lookups }
    }
}

/// Looks up, a batch at a time, what was asked while the last batch was
/// on its way.
async fn gather(presence: Arc<dyn Presence>, mut asked: mpsc::UnboundedReceiver<(String, Answer)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while asked.recv_many(&mut batch, BATCH).await > 0 {
        let (recipients, answers): (Vec<String>, Vec<Answer>) = batch.drain(..).unzip();
        match presence.lookup_many(&recipients).await {
            Ok(found) => {
                for (answer, distributors) in answers.into_iter().zip(found) {
                    let _ = answer.send(Ok(distributors));
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}

#[async_trait]
impl Presence for GatheredLookups {
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<Vec<bool>, PresenceError> {
        self.presence.register(connections, ttl).await
    }

    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError> {
        self.presence.unregister(connection).await
    }

    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError> {
        let (answer, answered) = oneshot::channel();
        self.lookups
            .send((recipient.to_string(), answer))
            .expect("the gathering task lives as long as this");
        answered
            .await
            .expect("the gathering task answers every lookup")
    }

    async fn announce_distributor(
        &self,
        id: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        self.presence.announce_distributor(id, address, ttl).await
    }

    async fn distributor_address(&self, id: &str) -> Result<Option<String>, PresenceError> {
        self.presence.distributor_address(id).await
    }

    async fn is_reachable(&self) -> bool {
        self.presence.is_reachable().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::join_all;

    use super::*;

    /// Answers each recipient with one distributor named after it, after a
    /// round trip's wait, and notes each batch's size.
    #[derive(Default)]
    struct Slow {
        batches: Mutex<Vec<usize>>,
        fail: bool,
    }

    #[async_trait]
    impl Presence for Slow {
        async fn register(
            &self,
            connections: &[Connection],
            _: Duration,
        ) -> Result<Vec<bool>, PresenceError> {
            Ok(vec![false; connections.len()])
        }

        async fn unregister(&self, _: &Connection) -> Result<(), PresenceError> {
            Ok(())
        }

        async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError> {
            let mut found = self.lookup_many(&[recipient.to_string()]).await?;
            Ok(found.remove(0))
        }

        async fn lookup_many(
            &self,
            recipients: &[String],
        ) -> Result<Vec<Vec<String>>, PresenceError> {
            self.batches.lock().unwrap().push(recipients.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail {
                let error = ::redis::RedisError::from((::redis::ErrorKind::Io, "gone"));
                return Err(error.into());
            }
            Ok(recipients.iter().map(|r| vec![format!("{r}@d")]).collect())
        }

        async fn announce_distributor(
            &self,
            _: &str,
            _: &str,
            _: Duration,
        ) -> Result<(), PresenceError> {
            Ok(())
        }

        async fn distributor_address(&self, _: &str) -> Result<Option<String>, PresenceError> {
            Ok(None)
        }

        async fn is_reachable(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn lookups_asked_while_a_batch_is_away_go_together_and_each_gets_its_answer() {
        let slow = Arc::new(Slow::default());
        let gathered = GatheredLookups::new(slow.clone());
        let first = gathered.lookup("r0");
        let (first, rest) = tokio::join!(first, async {
            // Asked once the first batch is on its way.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let recipients: Vec<String> = (1..100).map(|i| format!("r{i}")).collect();
            let answers = join_all(recipients.iter().map(|r| gathered.lookup(r))).await;
            recipients.into_iter().zip(answers).collect::<Vec<_>>()
        });
        assert_eq!(first.expect("found"), ["r0@d"]);
        for (recipient, answer) in rest {
            assert_eq!(answer.expect("found"), [format!("{recipient}@d")]);
        }
        assert_eq!(
            *slow.batches.lock().unwrap(),
            [1, 99],
            "the first alone, then the rest at once"
        );
    }

    #[tokio::test]
    async fn every_lookup_of_a_failed_batch_gets_the_error() {
        let slow = Arc::new(Slow {
            fail: true,
            ..Slow::default()
        });
        let gathered = GatheredLookups::new(slow);
        let recipients: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
        let answers = join_all(recipients.iter().map(|r| gathered.lookup(r))).await;
        for answer in answers {
            let error = answer.expect_err("failed");
            assert!(error.to_string().contains("gone"), "{error}");
        }
    }
}
