//! The director (`notifd director`): reads the log as one consumer group;
//! within a partition, each recipient's notifications go in offset order
//! through a lane of their own (`lane`), while different recipients proceed
//! at once. Each is delivered live to its recipient's connected clients
//! through the distributors that hold them, a window of them at a time, or
//! stored in the inbox. Offsets are committed only up to what is done, so a
//! crash replays and never skips.
//!
//! A notification's per-recipient position comes from its epoch and offset
//! (`log::position`): it grows along a recipient's notifications, also when
//! the topic grows (docs/ordering.md).

mod ack_time;
mod config;
mod consume;
mod forwarder;
mod lane;
mod offsets;
mod purge;
mod route;

pub use config::{Backends, DirectorArgs, RoutingArgs};
pub use consume::Consume;
pub use forwarder::Forwarder;
pub use route::{Outcome, Router};
