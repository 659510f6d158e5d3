//! The receivers' Kafka producer, made anew when its writes keep failing
//! while Kafka answers (see `renew`). What the old one still holds fails
//! back to its writers, whose publishes are answered 503: nothing accepted
//! depends on it.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;

use super::renew::{Failing, RENEW_AFTER};

pub struct Producer {
    current: RwLock<FutureProducer>,
    /// What made it, to make its replacement.
    settings: ClientConfig,
    /// How long a record may wait for room in the queue, and then for the
    /// broker: the old producer is dropped once the writes still using it
    /// are over.
    write_timeout: Duration,
    failing: Mutex<Failing>,
}

impl Producer {
    pub fn new(settings: ClientConfig, write_timeout: Duration) -> KafkaResult<Producer> {
        Ok(Producer {
            current: RwLock::new(settings.create()?),
            settings,
            write_timeout,
            failing: Mutex::default(),
        })
    }

    pub fn get(&self) -> FutureProducer {
        self.current.read().expect("the producer").clone()
    }

    /// Notes how a write went, and whether Kafka answered meanwhile (the
    /// partition count was read); after [`RENEW_AFTER`] of failed writes
    /// while it did, the next writes go through a new producer.
    pub fn note(&self, written: bool, kafka_answers: bool) {
        let renew = self.failing.lock().expect("failing").note(
            counts_as_failing(written, kafka_answers),
            Instant::now(),
            RENEW_AFTER,
        );
        if !renew {
            return;
        }
        let fresh = match self.settings.create() {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a new Kafka producer");
                return;
            }
        };
        tracing::warn!(
            "writes to Kafka keep failing although it answers: writing with a new producer"
        );
        let old = std::mem::replace(&mut *self.current.write().expect("the producer"), fresh);
        // Dropping a producer flushes and joins its thread, blocking: on a
        // thread of its own, once the writes that hold it have timed out.
        let linger = self.write_timeout * 2 + Duration::from_secs(1);
        std::thread::spawn(move || {
            std::thread::sleep(linger);
            drop(old);
        });
    }
}

/// Whether a write counts toward making the producer anew: it failed while
/// Kafka answered. During an outage a new producer would fare no better.
fn counts_as_failing(written: bool, kafka_answers: bool) -> bool {
    !written && kafka_answers
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    /// `Failing` as the producer notes its writes.
    fn note(failing: &mut Failing, written: bool, kafka_answers: bool, at: Instant) -> bool {
        failing.note(counts_as_failing(written, kafka_answers), at, AFTER)
    }

    #[test]
    fn writes_failing_while_kafka_answers_renew_the_producer_once() {
        let mut failing = Failing::default();
        let start = Instant::now();
        assert!(!note(&mut failing, false, true, start));
        assert!(!note(&mut failing, false, true, start + AFTER / 2));
        assert!(note(&mut failing, false, true, start + AFTER), "renewed");
        assert!(
            !note(&mut failing, false, true, start + AFTER),
            "the new one gets its own time"
        );
    }

    #[test]
    fn a_write_that_succeeds_or_an_outage_starts_the_count_over() {
        let mut failing = Failing::default();
        let start = Instant::now();
        note(&mut failing, false, true, start);
        note(&mut failing, true, true, start + AFTER / 2);
        assert!(
            !note(&mut failing, false, true, start + AFTER),
            "written since"
        );
        note(&mut failing, false, false, start + AFTER * 2);
        assert!(
            !note(&mut failing, false, true, start + AFTER * 2),
            "Kafka did not answer: an outage, not a stuck producer"
        );
    }
}
