//! The admin port every role serves: `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// Address of the admin port: /metrics, /healthz and /readyz.
    #[arg(long, env = "NOTIF_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
}

/// Whether this process can serve: it has started, and its stop has not
/// begun. The servers it uses (Kafka, Redis, PostgreSQL) do not count: were
/// readiness to follow a shared server, every replica would leave its Service
/// at once, and clients would be refused connections instead of getting the
/// role's own 503 with `Retry-After`. Their state is in `notif_dependency_up`.
#[derive(Clone)]
pub struct Ready {
    started: Arc<AtomicBool>,
    /// The role's stop: once cancelled, the role drains and is not ready, so
    /// that Kubernetes takes it out of its Service before connections close.
    stop: CancellationToken,
}

impl Ready {
    /// Not ready until [`Ready::started`], nor once `stop` is cancelled.
    pub fn new(stop: CancellationToken) -> Ready {
        Ready {
            started: Arc::default(),
            stop,
        }
    }

    /// The role has started: ready from now until its stop.
    pub fn started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// `Err` says why not: `starting` or `draining`.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.stop.is_cancelled() {
            Err("draining")
        } else if !self.started.load(Ordering::Acquire) {
            Err("starting")
        } else {
            Ok(())
        }
    }
}

struct AdminState {
    registry: Registry,
    ready: Ready,
}

pub fn router(registry: Registry, ready: Ready) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(AdminState { registry, ready }))
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode the metrics: {e}"),
        ),
    }
}

async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, &'static str) {
    match state.ready.check() {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readyz_of(ready: &Ready) -> (StatusCode, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!(
            "http://{}/readyz",
            listener.local_addr().expect("an address")
        );
        let server = tokio::spawn(
            axum::serve(listener, router(Registry::default(), ready.clone())).into_future(),
        );
        let response = reqwest::get(url).await.expect("/readyz answers");
        let answer = (response.status(), response.text().await.expect("a body"));
        server.abort();
        answer
    }

    #[tokio::test]
    async fn ready_from_the_start_until_the_stop_begins() {
        let stop = CancellationToken::new();
        let ready = Ready::new(stop.clone());
        assert_eq!(
            readyz_of(&ready).await,
            (StatusCode::SERVICE_UNAVAILABLE, "starting".into())
        );
        ready.started();
        assert_eq!(readyz_of(&ready).await, (StatusCode::OK, "ok".into()));
        stop.cancel();
        assert_eq!(
            readyz_of(&ready).await,
            (StatusCode::SERVICE_UNAVAILABLE, "draining".into())
        );
    }
}
