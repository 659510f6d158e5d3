//! Who may publish, and who a connecting client is.

pub mod api_keys;
pub mod config;
pub mod jwt;
pub mod publisher;
