//! The SaaSaparilla Notifications operator (DESIGN.md section 4).
//!
//! # Layout
//!
//! - [`crd`]: the `NotificationCluster` resource, its spec, status and CRD.
//! - [`controller`]: the reconcile function and the controller around it.
//! - [`resources`]: the objects made for a cluster, one module per kind.
//! - [`topic`]: the Kafka topic, through Kafka's admin API.
//! - [`status`]: the conditions, ready replicas and endpoints reported.
//! - [`run`]: leader election, the admin port and the controller's lifetime.

pub mod admin;
pub mod controller;
pub mod crd;
pub mod error;
pub mod metrics;
pub mod resources;
pub mod run;
pub mod status;
pub mod topic;
