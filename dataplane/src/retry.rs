//! Retrying a step against a server that may be away, with exponential
//! backoff. Steps that must not be skipped (storing a notification) retry
//! until they succeed: the work waits, and so does whatever comes after it,
//! which is how a role applies backpressure instead of guessing.

use std::time::Duration;

/// Backoff between attempts: doubling from `first` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };

    /// The wait before attempt `attempt` (1 is the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Runs `step` until it succeeds, waiting `backoff` between failures and
/// logging each. `what` names the step in the logs.
pub async fn until_ok<T, E, F, Fut>(what: &str, backoff: Backoff, mut step: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match step().await {
            Ok(value) => {
                if attempt > 0 {
                    tracing::info!(
                        step = what,
                        attempts = attempt + 1,
                        "succeeded after retries"
                    );
                }
                return value;
            }
            Err(e) => {
                attempt += 1;
                let delay = backoff.delay(attempt);
                tracing::warn!(step = what, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_the_maximum() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_is_retried_until_it_succeeds() {
        let mut failures = 3;
        let value = until_ok("test", Backoff::DEFAULT, || {
            let result = if failures > 0 { Err("down") } else { Ok(7) };
            failures -= 1;
            async move { result }
        })
        .await;
        assert_eq!((value, failures), (7, -1));
    }
}
