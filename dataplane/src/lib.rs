//! The message path of SaaSaparilla Notifications.
//!
//! # Layout
//! - [`notification`]: the notification, and the rules for ids and recipients.
//! - [`receiver`]: the publish API; writes to the log.
//! - [`director`]: routes each notification read from the log; commits only
//!   what is done.
//! - [`log`]: the durable, ordered log between receivers and directors, behind
//!   the [`log::Log`] and [`log::LogReader`] traits (Kafka, or SQLite).
//! - [`inbox`]: notifications waiting for their recipient, behind the
//!   [`inbox::Inbox`] trait (Postgres, or SQLite).
//! - [`presence`]: which distributors hold a recipient's connections, behind
//!   the [`presence::Presence`] trait (Redis, or in process).
//! - [`auth`]: publisher API keys and JWTs.
//! - [`api_error`]: the error answers of the public API.
//! - [`openapi`]: the public API's OpenAPI document, served at
//!   `/v1/openapi.json`.
//! - [`admin`], [`metrics`], [`dependencies`]: the admin port, what it
//!   reports, and the shared servers' state for it.
//! - [`distributor`]: clients' WebSocket and SSE connections, their inbox,
//!   live delivery and acknowledgements.
//! - [`forward`]: what travels on the distributors' forward port: the
//!   stream from directors, and acknowledgements relayed between them.
//! - [`compose`]: the roles of one process, built from their flags and
//!   backends.
//! - [`standalone`]: the whole service in one process, on SQLite and
//!   in-process presence.
//! - [`config`], [`retry`], [`serve`], [`shutdown`], [`tasks`]: flags'
//!   errors, retrying with backoff, serving the ports, the signal to drain,
//!   and the tasks of a role under one token, drained within a grace period.

pub mod admin;
pub mod api_error;
pub mod auth;
pub mod compose;
pub mod config;
pub mod dependencies;
pub mod director;
pub mod distributor;
pub mod forward;
pub mod forward_secret;
pub mod inbox;
pub mod json_body;
pub mod listen;
pub mod log;
pub mod metrics;
pub mod notification;
pub mod openapi;
pub mod presence;
pub mod process;
pub mod receiver;
pub mod retry;
pub mod shutdown;
pub mod sqlite;
pub mod standalone;
pub mod whole_number;
