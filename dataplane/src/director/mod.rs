//! The director (`notifd director`): reads the log as one consumer group;
//! within a partition, each recipient's notifications are done strictly in
//! offset order while different recipients proceed at once. Each is
//! delivered live to its recipient's connected clients through the
//! distributors that hold them, or stored in the inbox. Offsets are committed
//! only up to what is done, so a crash replays and never skips.
//!
//! A notification's per-recipient position is its offset in its partition:
//! one recipient's notifications share a partition, so their offsets only
//! grow. (Growing the topic's partitions moves recipients; keeping positions
//! and order across that change is not built yet.)

mod config;
mod consume;
mod forwarder;
mod lanes;
mod offsets;
mod purge;
mod route;

pub use config::{Backends, DirectorArgs, DirectorReadiness, RoutingArgs};
pub use consume::Consume;
pub use forwarder::Forwarder;
pub use route::{Outcome, Router};
