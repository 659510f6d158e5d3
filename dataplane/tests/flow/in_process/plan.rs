//! A seeded plan of faults: which part of the service fails, how, from when
//! to when. The same seed gives the same plan. Each scenario has a seed of
//! its own; `NOTIF_FAULT_SEED` runs it on another (a number, or `random`
//! for a fresh one, which is printed).

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The part of the service a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The receivers' writes to the log.
    Log,
    /// The director's reads from the log and its commits.
    Reader,
    Inbox,
    Presence,
    /// The director's forwarding stream to the distributors.
    Forward,
    /// The director's routing as a whole: it crashes, and starts again from
    /// what it committed.
    Director,
    /// The second distributor: it stops, and a new one starts in its place.
    Distributor,
    /// Some recipients' clients: they leave, and come back.
    Clients,
}

impl Target {
    const ALL: [(&str, Target); 8] = [
        ("log", Target::Log),
        ("reader", Target::Reader),
        ("inbox", Target::Inbox),
        ("presence", Target::Presence),
        ("forward", Target::Forward),
        ("director", Target::Director),
        ("distributor", Target::Distributor),
        ("clients", Target::Clients),
    ];

    /// The targets `NOTIF_FAULT_TARGETS` names, when it is set.
    pub fn from_env() -> Option<Vec<Target>> {
        let names = std::env::var("NOTIF_FAULT_TARGETS").ok()?;
        let target = |name: &str| {
            Target::ALL
                .iter()
                .find(|(n, _)| *n == name.trim())
                .map(|(_, t)| *t)
                .unwrap_or_else(|| panic!("NOTIF_FAULT_TARGETS: no target {name:?}"))
        };
        Some(names.split(',').map(target).collect())
    }

    /// The faults that make sense for this target.
    fn faults(self) -> &'static [Kind] {
        match self {
            Target::Log | Target::Inbox | Target::Reader => {
                &[Kind::Fail, Kind::AnswerLost, Kind::Stall]
            }
            Target::Presence => &[Kind::Fail, Kind::Stall, Kind::Forget],
            Target::Forward => &[Kind::Fail, Kind::AnswerLost],
            Target::Director | Target::Distributor => &[Kind::Crash],
            Target::Clients => &[Kind::Leave],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fail,
    AnswerLost,
    Stall,
    Forget,
    Crash,
    Leave,
}

/// What a call meets while a fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails and does nothing (a server away, a stream broken).
    Fail,
    /// The call does its work, and then fails: the answer was lost on the
    /// way back, so the caller must not know whether it happened.
    AnswerLost,
    /// The call waits this long first (a server paused), then goes on.
    Stall(Duration),
    /// Presence loses every entry (a flush, a failover to an empty
    /// replica) when the window opens, and again every half second until it
    /// closes.
    Forget,
    /// The director crashes when the window opens (or the second
    /// distributor stops), and starts again when it closes.
    Crash,
    /// One recipient in `every` loses its client when the window opens, and
    /// connects again when it closes.
    Leave { every: usize },
}

/// One fault over a span of the scenario's time.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub target: Target,
    pub fault: Fault,
    pub from: Duration,
    pub to: Duration,
}

pub struct Plan {
    pub seed: u64,
    pub windows: Vec<Window>,
    started: Instant,
}

impl Plan {
    /// Faults on each of `targets`, one after another with gaps between
    /// them, from the start until `length`, from `seed` or the one
    /// `NOTIF_FAULT_SEED` says.
    pub fn seeded(seed: u64, length: Duration, targets: &[Target]) -> Plan {
        let seed = match std::env::var("NOTIF_FAULT_SEED").as_deref() {
            Ok("random") => fastrand::u64(..),
            Ok(seed) => seed
                .parse()
                .expect("NOTIF_FAULT_SEED: a whole number, or random"),
            Err(_) => seed,
        };
        Plan::with_seed(seed, length, targets)
    }

    pub fn with_seed(seed: u64, length: Duration, targets: &[Target]) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut windows = Vec::new();
        for &target in targets {
            let mut at = millis(&mut rng, 0..1_000);
            while at < length {
                let lasts = millis(&mut rng, 200..2_500);
                let kinds = target.faults();
                let fault = match kinds[rng.usize(..kinds.len())] {
                    Kind::Fail => Fault::Fail,
                    Kind::AnswerLost => Fault::AnswerLost,
                    Kind::Stall => Fault::Stall(millis(&mut rng, 50..1_500)),
                    Kind::Forget => Fault::Forget,
                    Kind::Crash => Fault::Crash,
                    Kind::Leave => Fault::Leave {
                        every: rng.usize(2..5),
                    },
                };
                windows.push(Window {
                    target,
                    fault,
                    from: at,
                    to: at + lasts,
                });
                at += lasts + millis(&mut rng, 500..3_000);
            }
        }
        windows.sort_by_key(|w| w.from);
        Plan {
            seed,
            windows,
            started: Instant::now(),
        }
    }

    /// The scenario's clock starts now.
    pub fn start(&mut self) {
        self.started = Instant::now();
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The fault `target` meets now, if any.
    pub fn now(&self, target: Target) -> Option<Fault> {
        let at = self.started.elapsed();
        self.windows
            .iter()
            .find(|w| w.target == target && w.from <= at && at < w.to)
            .map(|w| w.fault)
    }
}

fn millis(rng: &mut fastrand::Rng, range: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rng.u64(range))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} ({} faults; NOTIF_FAULT_SEED={} runs it again)",
            self.seed,
            self.windows.len(),
            self.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_plan() {
        let targets = [Target::Log, Target::Presence, Target::Clients];
        let length = Duration::from_secs(30);
        let one = Plan::with_seed(7, length, &targets);
        let again = Plan::with_seed(7, length, &targets);
        let other = Plan::with_seed(8, length, &targets);
        let spans = |plan: &Plan| -> Vec<String> {
            plan.windows.iter().map(|w| format!("{w:?}")).collect()
        };
        assert_eq!(spans(&one), spans(&again));
        assert_ne!(spans(&one), spans(&other));
        assert!(one.windows.len() >= 3 * 5, "every target, again and again");
    }
}
