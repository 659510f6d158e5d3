//! Serving a role's public port and its admin port together, until asked to
//! stop; then in-flight requests finish before the servers return.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::listen::ListenArgs;

/// Listens on `addr`, given by `flag`.
pub async fn bind(
    flag: &'static str,
    addr: std::net::SocketAddr,
) -> Result<TcpListener, ConfigError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ConfigError::new(flag, format!("cannot listen on {addr}: {e}")))
}

/// Serves `public` until `stop` is cancelled, guarded as `listen` says (its
/// handlers may ask for the peer's `ConnectInfo<SocketAddr>`), and `admin`
/// until `public` has finished its requests: while the role drains,
/// `/readyz` answers `draining` and `/metrics` still answers.
pub async fn serve(
    public: (TcpListener, Router),
    listen: &ListenArgs,
    admin: (TcpListener, Router),
    stop: CancellationToken,
) -> std::io::Result<()> {
    let drained = CancellationToken::new();
    let public = async {
        let served = crate::listen::serve(public.0, public.1, listen, stop).await;
        drained.cancel();
        served
    };
    let admin =
        axum::serve(admin.0, admin.1).with_graceful_shutdown(drained.clone().cancelled_owned());
    let (public, admin) = tokio::join!(public, admin.into_future());
    public.and(admin)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::routing::get;
    use prometheus_client::registry::Registry;
    use tokio::sync::Notify;

    use super::*;
    use crate::admin::{self, Ready};

    #[tokio::test]
    async fn while_a_request_drains_the_admin_port_answers_draining() {
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let slow = Router::new().route(
            "/slow",
            get({
                let (entered, release) = (entered.clone(), release.clone());
                async move || {
                    entered.notify_one();
                    release.notified().await;
                    "done"
                }
            }),
        );
        let public = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let (public_addr, admin_addr) = (
            public.local_addr().expect("an address"),
            admin.local_addr().expect("an address"),
        );
        let stop = CancellationToken::new();
        let ready = Ready::new(stop.clone());
        ready.started();
        let listen = ListenArgs {
            max_connections: 100,
            max_connections_per_address: 0,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: 10,
        };
        let stopped = stop.clone();
        let served = tokio::spawn(async move {
            serve(
                (public, slow),
                &listen,
                (admin, admin::router(Registry::default(), ready)),
                stopped,
            )
            .await
        });

        let request = tokio::spawn(reqwest::get(format!("http://{public_addr}/slow")));
        entered.notified().await;
        stop.cancel();
        let readyz = reqwest::get(format!("http://{admin_addr}/readyz"))
            .await
            .expect("the admin port answers while the public one drains");
        assert_eq!(readyz.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readyz.text().await.expect("a body"), "draining");

        release.notify_one();
        let finished = request.await.expect("the request").expect("an answer");
        assert_eq!(finished.text().await.expect("a body"), "done");
        served.await.expect("served").expect("no error");
    }
}
