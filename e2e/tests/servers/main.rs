//! Smoke tests of the local test environment: each server is real, and is
//! reached through the library the project uses for it.
//!
//! Tests under `exclusive` stop and start shared servers; `just test` runs
//! them alone, after the others.

mod exclusive;
mod kafka;
mod kubernetes;
mod postgres;
mod redis;
