//! How long clients lately took to acknowledge what was sent to them: the
//! measure a lane's wait is compared with when the director holds too much.
//! A wait far beyond it marks a slow or silent client; a director that is
//! merely busy slows every acknowledgement alike, and stores nothing for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A moving average of acknowledgement times, shared by all lanes.
#[derive(Debug, Default)]
pub struct AckTime {
    micros: AtomicU64,
}

/// Each new time moves the average by this fraction of the difference.
const WEIGHT: u64 = 16;

impl AckTime {
    /// Counts one notification acknowledged `took` after it was sent.
    /// Concurrent updates may lose one another's step: an average of many
    /// does not need every one.
    pub fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.micros.load(Ordering::Relaxed);
        let new = match old {
            0 => sample,
            _ => old - old / WEIGHT + sample / WEIGHT,
        };
        self.micros.store(new.max(1), Ordering::Relaxed);
    }

    /// The average so far; zero before the first acknowledgement.
    pub fn typical(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_times_recorded() {
        let time = AckTime::default();
        assert_eq!(time.typical(), Duration::ZERO);
        time.record(Duration::from_millis(10));
        assert_eq!(time.typical(), Duration::from_millis(10));
        for _ in 0..200 {
            time.record(Duration::from_millis(100));
        }
        let typical = time.typical();
        assert!(
            typical > Duration::from_millis(95) && typical <= Duration::from_millis(100),
            "{typical:?}"
        );
    }
}
