//! The controller on the test environment's real kube-apiserver,
//! kube-controller-manager and Kafka: each test runs its own operator process
//! for a namespace of its own, applies NotificationClusters as a user would,
//! and checks what the operator made and reported.

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod changes;
mod chart;
mod deletion;
mod exclusive;
mod leader;
mod operations;
mod rbac;
mod samples;
