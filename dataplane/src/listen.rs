//! The public port's server: clients on the internet connect here, so a
//! connection that sends nothing, or only part of its headers, is closed
//! after a timeout, and connections beyond a limit, or beyond a limit per
//! remote address, are answered `503` at once instead of exhausting the
//! process's open files (which its database and log need too).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::api_error::ApiError;
use crate::config::ConfigError;

/// How the public port guards itself against clients that hold connections.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenArgs {
    /// Most client connections held at once; past it, a new connection is
    /// answered 503 and closed. At most the open-files limit less a reserve
    /// for the process's own files.
    #[arg(long, env = "NOTIF_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Most client connections held at once from one remote address (an
    /// IPv6 address's /64); past it, a new one from there is answered 503
    /// and closed. 0: no such limit.
    #[arg(
        long,
        env = "NOTIF_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 4096
    )]
    pub max_connections_per_address: usize,
    /// Networks of the load balancers and proxies in front of this port,
    /// comma-separated CIDRs (`10.0.0.0/8,fd00::/8`): their connections
    /// carry many clients' and are not limited per address.
    #[arg(long, env = "NOTIF_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds a connection may take to send a request's headers, and may
    /// stay idle between requests, before it is closed (over HTTP/2: to
    /// answer a ping, sent as often).
    #[arg(long, env = "NOTIF_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
}

/// Open files kept for the process itself (its database, its log, its
/// connections to servers) whatever its clients hold.
const RESERVED_FILES: u64 = 1024;

/// Connections over the limit being answered at once; more are closed
/// without an answer.
const REFUSING: usize = 256;

/// How long a connection over the limit gets to send its request's headers
/// and read its `503`.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

impl ListenArgs {
    /// The connection limit, within what the open-files limit allows.
    fn connection_limit(&self) -> usize {
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft);
        let allowed = usize::try_from(files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
        if allowed < self.max_connections {
            tracing::warn!(
                max_connections = self.max_connections,
                open_files = files,
                allowed,
                "the open-files limit allows fewer connections than --max-connections; raise it (ulimit -n) to hold more"
            );
        }
        self.max_connections.min(allowed).max(1)
    }
}

/// Connections held per remote address.
struct PerAddress {
    limit: usize,
    trusted: Vec<IpNet>,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection admitted, counted for its address until dropped (or not
/// counted: no limit, or a trusted proxy).
struct AddressPermit(Option<(Arc<PerAddress>, IpAddr)>);

impl PerAddress {
    fn new(args: &ListenArgs) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            limit: args.max_connections_per_address,
            trusted: args.trusted_proxies.clone(),
            held: Mutex::default(),
        })
    }

    /// Admits a connection from `peer`; None when its address holds the
    /// limit.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<AddressPermit> {
        let peer = peer.to_canonical();
        if self.limit == 0 || self.trusted.iter().any(|net| net.contains(&peer)) {
            return Some(AddressPermit(None));
        }
        // One host of IPv6 commonly has a whole /64.
        let address = match peer {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            v4 => v4,
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(address).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressPermit(Some((self.clone(), address))))
    }
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let Some((counts, address)) = &self.0 else {
            return;
        };
        let mut held = counts.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(address) {
            *count -= 1;
            if *count == 0 {
                held.remove(address);
            }
        }
    }
}

/// Listens on `addr`, given by `flag`.
pub async fn bind(
    flag: &'static str,
    addr: std::net::SocketAddr,
) -> Result<TcpListener, ConfigError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ConfigError::new(flag, format!("cannot listen on {addr}: {e}")))
}

/// Serves `router` on `listener` until `stop` is cancelled, then waits for
/// the open connections to finish. Handlers may ask for the peer's
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    args: &ListenArgs,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let held = Arc::new(Semaphore::new(args.connection_limit()));
    let per_address = PerAddress::new(args);
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let header_timeout = Duration::from_secs(args.header_read_timeout_secs.max(1));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    // HTTP/2 has no header timeout: a peer that does not answer pings within
    // the same time is closed instead.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of files, most likely: wait for some to close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let permits = match (
            held.clone().try_acquire_owned(),
            per_address.admit(peer.ip()),
        ) {
            (Ok(permit), Some(address_permit)) => (permit, address_permit),
            (held, _) => {
                let why = match held {
                    Err(_) => {
                        "this server holds as many connections as it may; reconnect later, or to another"
                    }
                    Ok(_) => {
                        "this server holds as many connections from your address as it may; close some, or reconnect later"
                    }
                };
                if let Ok(refusal) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream, why).await;
                        drop(refusal);
                    });
                }
                continue;
            }
        };
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            // hyper's timeouts start only once it has told HTTP/1 from
            // HTTP/2, which it does without a timer: a connection that sends
            // nothing, or a part of HTTP/2's preface, gets the same time.
            let told = tokio::time::timeout(header_timeout, version_told(&stream)).await;
            if !matches!(told, Ok(true)) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %e, %peer, "a client connection ended with an error");
            }
            drop(permits);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/2's connection preface, with which a client that speaks it first
/// (with prior knowledge) opens a connection.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until `stream`'s first bytes tell HTTP/1 from HTTP/2, without
/// reading them: true once they do, false if the connection closes first.
async fn version_told(stream: &tokio::net::TcpStream) -> bool {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    loop {
        let Ok(peeked) = stream.peek(&mut first).await else {
            return false;
        };
        if peeked == 0 {
            return false;
        }
        if peeked == first.len() || first[..peeked] != HTTP2_PREFACE[..peeked] {
            return true;
        }
        // A part of the preface: peeking again at once would find the same.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Answers a connection over a limit with `503`, saying `why`, and closes
/// it.
async fn refuse(stream: tokio::net::TcpStream, why: &'static str) {
    let answer = hyper::service::service_fn(move |_request: hyper::Request<Incoming>| async move {
        let refused = ApiError::unavailable(why, 5);
        Ok::<_, std::convert::Infallible>(refused.into_response())
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), answer);
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, connection).await;
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Serves a route answering the peer's address, guarded by `args`.
    async fn start(args: ListenArgs) -> (SocketAddr, CancellationToken) {
        let router = Router::new().route(
            "/peer",
            get(async |ConnectInfo(peer): ConnectInfo<SocketAddr>| peer.ip().to_string()),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("its address");
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move { serve(listener, router, &args, stopped).await });
        (address, stop)
    }

    fn args(max_connections: usize, header_read_timeout_secs: u64) -> ListenArgs {
        ListenArgs {
            max_connections,
            max_connections_per_address: 0,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs,
        }
    }

    /// A connection to `address` from `ip`, a loopback address.
    async fn connect_from(ip: &str, address: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(format!("{ip}:0").parse().expect("an address"))
            .expect("bound");
        socket.connect(address).await.expect("a connection")
    }

    /// Sends a whole request on `socket` and reads the answer to its end.
    async fn get_peer(socket: &mut TcpStream) -> String {
        socket
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("a request");
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.expect("an answer");
        answer
    }

    #[tokio::test]
    async fn a_connection_that_sends_part_of_its_headers_is_closed_after_the_timeout() {
        let (address, _stop) = start(args(10, 1)).await;
        let mut silent = TcpStream::connect(address).await.expect("a connection");
        let mut partial = TcpStream::connect(address).await.expect("a connection");
        partial
            .write_all(b"GET /peer HTTP/1.1\r\nHo")
            .await
            .expect("a part");
        for (socket, which) in [(&mut silent, "silent"), (&mut partial, "partial")] {
            let mut rest = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
            assert!(
                closed.is_ok(),
                "the {which} connection is closed within the timeout"
            );
        }
        let mut whole = TcpStream::connect(address).await.expect("a connection");
        let answer = get_peer(&mut whole).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.1"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_connection_idle_after_a_request_is_closed_after_the_timeout() {
        let (address, _stop) = start(args(10, 1)).await;
        let mut socket = TcpStream::connect(address).await.expect("a connection");
        socket
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("a request, keeping the connection");
        let mut answer = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "closed within the timeout");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "answered first: {answer}"
        );
    }

    #[tokio::test]
    async fn a_part_of_the_http2_preface_or_the_preface_alone_is_closed_after_the_timeout() {
        let (address, _stop) = start(args(10, 1)).await;
        let mut part = TcpStream::connect(address).await.expect("a connection");
        part.write_all(&HTTP2_PREFACE[..5]).await.expect("a part");
        let mut preface = TcpStream::connect(address).await.expect("a connection");
        preface.write_all(HTTP2_PREFACE).await.expect("the preface");
        // Within the header timeout, or the ping's interval and timeout.
        for (socket, which) in [(&mut part, "part"), (&mut preface, "preface")] {
            let mut rest = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "the connection with the {which} is closed");
        }
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_answered_503_until_one_closes() {
        let (address, _stop) = start(args(2, 30)).await;
        let first = TcpStream::connect(address).await.expect("a connection");
        let _second = TcpStream::connect(address).await.expect("a connection");
        // Accepted in order: the third waits for nothing but its answer.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(address).await.expect("a connection");
        let answer = get_peer(&mut third).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 5"),
            "{answer}"
        );
        assert!(answer.contains(r#""code":"unavailable""#), "{answer}");

        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fourth = TcpStream::connect(address).await.expect("a connection");
        let answer = get_peer(&mut fourth).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_per_address_are_answered_503_except_from_proxies() {
        let (address, _stop) = start(ListenArgs {
            max_connections_per_address: 2,
            trusted_proxies: vec!["127.0.0.3/32".parse().expect("a CIDR")],
            ..args(100, 30)
        })
        .await;
        let _held = [
            connect_from("127.0.0.1", address).await,
            connect_from("127.0.0.1", address).await,
            connect_from("127.0.0.3", address).await,
            connect_from("127.0.0.3", address).await,
        ];
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = get_peer(&mut connect_from("127.0.0.1", address).await).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("from your address"), "{answer}");
        for other in ["127.0.0.2", "127.0.0.3"] {
            let answer = get_peer(&mut connect_from(other, address).await).await;
            assert!(
                answer.starts_with("HTTP/1.1 200") && answer.ends_with(other),
                "{other}: {answer}"
            );
        }
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() {
        let counts = PerAddress::new(&ListenArgs {
            max_connections_per_address: 1,
            ..args(100, 30)
        });
        let admit = |ip: &str| counts.admit(ip.parse().expect("an address"));
        let first = admit("2001:db8::1").expect("admitted");
        assert!(admit("2001:db8::2").is_none(), "the same /64");
        let _other = admit("2001:db8:0:1::1").expect("another /64");
        let _v4 = admit("127.0.0.1").expect("admitted");
        assert!(admit("::ffff:127.0.0.1").is_none(), "the same IPv4 address");
        drop(first);
        assert!(admit("2001:db8::2").is_some(), "counted down when closed");
    }
}
