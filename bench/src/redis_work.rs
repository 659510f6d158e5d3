//! What Redis did for a load: the commands it ran while the load was
//! published and delivered, from its `INFO commandstats`, per accepted
//! notification. Presence is the only user of Redis, and the benchmark runs
//! alone, so the difference is the service's.

use std::collections::BTreeMap;
use std::fmt;

/// Commands run so far, by name.
pub struct Calls(BTreeMap<String, u64>);

impl Calls {
    /// The counts now, from the test environment's Redis.
    pub async fn now() -> Calls {
        let client = redis::Client::open(testenv::redis_url()).expect("a Redis URL");
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers");
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut redis)
            .await
            .expect("INFO commandstats");
        Calls(parse(&info))
    }

    /// The commands run since `before`, per notification of `accepted`.
    pub fn since(&self, before: &Calls, accepted: u64) -> Work {
        let per = |name: &str| {
            let count = |calls: &Calls| calls.0.get(name).copied().unwrap_or(0);
            let delta = count(self).saturating_sub(count(before));
            delta as f64 / accepted.max(1) as f64
        };
        Work {
            // The INFO this measurement itself sent does not count.
            total: self.0.keys().map(|name| per(name)).sum::<f64>() - per("info"),
            lookups: per("zrangebyscore"),
        }
    }
}

/// `cmdstat_zadd:calls=12,usec=…` lines, as `zadd → 12`.
fn parse(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

/// Redis commands per accepted notification.
pub struct Work {
    total: f64,
    /// Presence lookups, the director's part.
    lookups: f64,
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redis: {:.3} commands per accepted notification, {:.3} of them presence lookups",
            self.total, self.lookups
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_are_read_by_name() {
        let info = "# Commandstats\r\ncmdstat_zadd:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_zrangebyscore:calls=7,usec=9\r\n";
        let calls = parse(info);
        assert_eq!(calls["zadd"], 12);
        assert_eq!(calls["zrangebyscore"], 7);
        assert_eq!(calls.len(), 2);
    }
}
