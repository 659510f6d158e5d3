//! Rust client for SaaSaparilla Notifications.
//!
//! - [`Publisher`]: a product backend publishes notifications to the
//!   receiver, one or a batch at a time.
//! - [`Subscriber`]: a client connects as one recipient over WebSocket,
//!   Server-Sent Events or long-polling and gets a [`Subscription`]: its
//!   notifications, in order, each once. Dropped connections are made again
//!   with backoff and jitter, resuming after the last position received;
//!   notifications that come again are left out by id; acknowledgements are
//!   sent over the connection's transport.
//!
//! ```no_run
//! # async fn example() -> Result<(), notif_sdk::Error> {
//! use notif_sdk::{Subscriber, Transport};
//!
//! let mut subscription = Subscriber::new("http://127.0.0.1:8080", "<client JWT>")
//!     .transport(Transport::WebSocket)
//!     .subscribe();
//! loop {
//!     let notification = subscription.next().await?;
//!     println!("{}: {}", notification.position, notification.payload);
//!     subscription.ack(&notification.id);
//! }
//! # }
//! ```
//!
//! The protocol is described in `docs/protocol.md`.

mod notification;
mod publisher;
mod recent;
mod subscriber;
mod transport;

pub use notification::Notification;
pub use publisher::{NewNotification, PublishError, Publisher};
pub use subscriber::{Error, Resume, Subscriber, Subscription, Transport};
