//! When to make a Kafka client anew: a client whose broker went away and
//! came back can stay without a usable connection for minutes (seen after
//! restarts of Kafka), while a new one connects at once.

use std::time::{Duration, Instant};

/// How long a Kafka client may fail while it should succeed (reads of the
/// partition count; a producer's writes while Kafka answers) before it is
/// made anew.
pub(super) const RENEW_AFTER: Duration = Duration::from_secs(10);

/// Since when a client has failed without a success between.
#[derive(Debug, Default)]
pub(super) struct Failing {
    since: Option<Instant>,
}

impl Failing {
    /// Notes whether the client failed at `now`; whether it has failed for
    /// `renew_after` and is to be made anew (the count then starts over,
    /// for the new one).
    pub(super) fn note(&mut self, failed: bool, now: Instant, renew_after: Duration) -> bool {
        if !failed {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < renew_after {
            return false;
        }
        self.since = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    #[test]
    fn failing_for_a_while_renews_the_client_once() {
        let mut failing = Failing::default();
        let start = Instant::now();
        assert!(!failing.note(true, start, AFTER));
        assert!(!failing.note(true, start + AFTER / 2, AFTER));
        assert!(failing.note(true, start + AFTER, AFTER), "renewed");
        assert!(
            !failing.note(true, start + AFTER, AFTER),
            "the new one gets its own time"
        );
    }

    #[test]
    fn a_success_starts_the_count_over() {
        let mut failing = Failing::default();
        let start = Instant::now();
        failing.note(true, start, AFTER);
        failing.note(false, start + AFTER / 2, AFTER);
        assert!(!failing.note(true, start + AFTER, AFTER), "succeeded since");
    }
}
