//! The local test environment, as tests see it.
//!
//! `e2e/env/notif-env up` starts real servers on loopback and writes their
//! addresses to one file; `just test` exports them as `NOTIF_TEST_*` and
//! `KUBECONFIG` before it runs the suites. A test asks this crate for the
//! server it needs: when the variable is missing the test **fails** with a
//! message that says how to start the environment; it never skips.
//!
//! The servers are shared by tests that run in parallel, so every test keeps
//! to a name of its own ([`unique_name`]): its own Kafka topic, Postgres
//! database, Redis key prefix and Kubernetes namespace.
//!
//! # Layout
//! - [`servers`]: the addresses of the servers, and clients for them.
//! - [`kafka`]: a topic of the test's own, and reading back what it holds.
//! - [`control`]: stopping and starting one server, for fault tests.
//! - [`notifd`]: the service as processes, distributed or standalone.
//! - [`docker`]: the project's images as containers.
//! - [`pulumi`]: the Pulumi program in deploy/pulumi, as a stack of a test's own.

pub mod control;
pub mod docker;
pub mod kafka;
pub mod notifd;
pub mod pulumi;
pub mod servers;

pub use servers::{
    TestDatabase, apply_secret, create_namespace, kafka_bootstrap, kube_client, postgres_url,
    redis_cluster_urls, redis_url, second_postgres_url,
};

use std::time::Duration;

/// Waits until `check` passes, trying every 100 ms for up to `limit`; fails
/// the test, naming `what`, when it never does.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A name no other test (nor an earlier run) uses: `prefix` and 8 random hex
/// digits, in the characters that Kafka topics, Postgres identifiers, Redis
/// keys and Kubernetes names all accept.
pub fn unique_name(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &random[..8])
}

/// The sum of the samples of metric `name` (every label set) in a
/// Prometheus text exposition; 0 when it has none.
pub fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends a `POST` of `path` to `address` (`host:port`) that declares a
/// JSON body of `length` bytes but sends only `sent` of it, with
/// `authorization` as the header's value when given; returns the status
/// line, which must come within 5 s (before the rest of the body, that
/// never comes).
pub async fn status_of_partial_post(
    address: &str,
    path: &str,
    authorization: Option<&str>,
    length: usize,
    sent: &[u8],
) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("the server's port");
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{authorization}Content-Length: {length}\r\n\r\n",
    );
    socket
        .write_all(&[head.as_bytes(), sent].concat())
        .await
        .expect("the headers are sent");
    let mut status = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(socket).read_line(&mut status),
    )
    .await
    .expect("an answer before the rest of the body is sent")
    .expect("a status line");
    status
}
