//! Serving a role's public port and its admin port together, until asked to
//! stop; then in-flight requests finish before the servers return.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

/// Listens on `addr`, given by `flag`.
pub async fn bind(
    flag: &'static str,
    addr: std::net::SocketAddr,
) -> Result<TcpListener, ConfigError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ConfigError::new(flag, format!("cannot listen on {addr}: {e}")))
}

/// Serves `public` and `admin` until `stop` is cancelled.
pub async fn serve(
    public: (TcpListener, Router),
    admin: (TcpListener, Router),
    stop: CancellationToken,
) -> std::io::Result<()> {
    let public =
        axum::serve(public.0, public.1).with_graceful_shutdown(stop.clone().cancelled_owned());
    let admin = axum::serve(admin.0, admin.1).with_graceful_shutdown(stop.cancelled_owned());
    let (public, admin) = tokio::join!(public.into_future(), admin.into_future());
    public.and(admin)
}

/// A token cancelled when `shutdown` completes.
pub fn cancel_on(shutdown: impl Future<Output = ()> + Send + 'static) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        cancel.cancel();
    });
    token
}
