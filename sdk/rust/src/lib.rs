//! Rust client for SaaSaparilla Notifications.
//!
//! The client protocol it will speak is specified in DESIGN.md section 3; the
//! transports are not built yet, so this crate has no API so far.
