//! The SaaSaparilla Notifications operator (DESIGN.md section 4).
//!
//! # Layout
//!
//! - [`crd`]: the `NotificationCluster` resource, its spec, status and CRD.
//!
//! The controller, which turns a `NotificationCluster` into the running
//! service, is not built yet.

pub mod crd;
