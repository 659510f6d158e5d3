//! What Redis did for a load, per accepted notification, from its `INFO`
//! taken before and after: the commands it ran, the requests it read (one
//! per round trip, however many commands a pipeline carries) and the CPU it
//! used. Presence is the only user of Redis, and the benchmark runs alone,
//! so the difference is the service's.

use std::collections::BTreeMap;
use std::fmt;

/// Redis's counters at one moment.
pub struct Calls {
    /// Commands run so far, by name.
    commands: BTreeMap<String, u64>,
    /// Reads from clients' sockets (`total_reads_processed`).
    reads: u64,
    /// CPU seconds, user and system, of the server's main thread and others.
    cpu: f64,
}

impl Calls {
    /// The counters now, summed over `servers` (one Redis, or every master
    /// of a Redis Cluster).
    pub async fn now(servers: &[String]) -> Calls {
        let mut sum = Calls {
            commands: BTreeMap::new(),
            reads: 0,
            cpu: 0.0,
        };
        for server in servers {
            let client = redis::Client::open(server.as_str()).expect("a Redis URL");
            let mut redis = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis answers");
            let info: String = redis::cmd("INFO")
                .arg("all")
                .query_async(&mut redis)
                .await
                .expect("INFO all");
            let calls = parse(&info);
            for (name, count) in calls.commands {
                *sum.commands.entry(name).or_default() += count;
            }
            sum.reads += calls.reads;
            sum.cpu += calls.cpu;
        }
        sum
    }

    /// What Redis did since `before`, per one of `count` (accepted
    /// notifications, say: `unit` names them).
    pub fn since(&self, before: &Calls, count: u64, unit: &'static str) -> Work {
        let per = |delta: f64| delta / count.max(1) as f64;
        let command = |name: &str| {
            let count = |calls: &Calls| calls.commands.get(name).copied().unwrap_or(0);
            per(count(self).saturating_sub(count(before)) as f64)
        };
        Work {
            unit,
            // The INFOs this measurement itself sent do not count.
            commands: self.commands.keys().map(|name| command(name)).sum::<f64>() - command("info"),
            lookups: command("zrangebyscore"),
            reads: per(self.reads.saturating_sub(before.reads) as f64),
            cpu_us: per((self.cpu - before.cpu).max(0.0) * 1e6),
        }
    }
}

/// The counters of an `INFO all` answer: `cmdstat_zadd:calls=12,usec=…`
/// lines, `total_reads_processed:…` and `used_cpu_{sys,user}:…`.
fn parse(info: &str) -> Calls {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let number = |name: &str| {
        field(name)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let commands = info
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect();
    Calls {
        commands,
        reads: number("total_reads_processed") as u64,
        cpu: number("used_cpu_sys") + number("used_cpu_user"),
    }
}

/// What Redis did per unit of work.
pub struct Work {
    unit: &'static str,
    commands: f64,
    /// Presence lookups, the director's part.
    lookups: f64,
    /// Requests read: round trips, a pipeline counting once.
    reads: f64,
    cpu_us: f64,
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redis per {}: {:.3} commands ({:.3} presence lookups), \
             {:.3} requests read, {:.1} µs of CPU ({:.0} commands per CPU-second)",
            self.unit,
            self.commands,
            self.lookups,
            self.reads,
            self.cpu_us,
            self.commands / self.cpu_us.max(1e-9) * 1e6
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read_by_name() {
        let info = "# Stats\r\ntotal_reads_processed:42\r\n# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\nused_cpu_sys_children:9.0\r\n# Commandstats\r\ncmdstat_zadd:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_zrangebyscore:calls=7,usec=9\r\n";
        let calls = parse(info);
        assert_eq!(calls.commands["zadd"], 12);
        assert_eq!(calls.commands["zrangebyscore"], 7);
        assert_eq!(calls.commands.len(), 2);
        assert_eq!(calls.reads, 42);
        assert!((calls.cpu - 1.75).abs() < 1e-9);
    }
}
