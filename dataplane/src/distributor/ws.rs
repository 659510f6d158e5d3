//! `GET /v1/connect/ws`: WebSocket. The server sends text frames
//! `{"type":"notification", ...envelope}`; the client acknowledges with
//! `{"type":"ack","through":position}` or `{"type":"ack","ids":[...]}` and is
//! answered `{"type":"acked",...}` with what is acknowledged now.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::session::{FeedError, Session};
use super::sse::ConnectQuery;
use super::{Distributor, Envelope, token};
use crate::api_error::{ApiError, ErrorBody, Unauthorized, Unavailable};

/// A WebSocket text frame the server sends, told apart by `type`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A notification: the envelope's fields beside `type`.
    Notification(Envelope),
    /// The answer to an `ack`: its ids that were held for the recipient and
    /// now are not, or that it had acknowledged already; and its `through`,
    /// when it had one.
    Acked {
        ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        through: Option<u64>,
    },
    /// `bad_frame`: the client sent something that is not a client frame.
    /// `empty_ack`, `too_many_ids`, `invalid_id`, `beyond_sent`: an `ack`
    /// refused, as `POST /v1/ack` refuses it; nothing of it is taken. The
    /// connection stays open after any of these. `unknown_id`:
    /// after the `acked`, the ids of an `ack` never sent to the recipient,
    /// as far as the service remembers; the connection stays open.
    /// `unavailable`: the inbox is unreachable; either an `ack` was not
    /// taken (the connection stays open: send it again later) or the
    /// connection is closing with 1013. `slow_client`: the connection is
    /// closing with 4001. `ack_timeout`: the connection is closing with
    /// 4002.
    Error { code: String, message: String },
}

/// A WebSocket text frame a client sends, told apart by `type`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Acknowledges notifications: everything up to `through` that this
    /// connection was sent, and the `ids` (up to 1000); one of the two at
    /// least. They are not delivered again.
    Ack {
        #[serde(default)]
        #[schema(max_items = 1000, value_type = Vec<super::ack::NotificationId>)]
        ids: Vec<String>,
        #[serde(default, deserialize_with = "crate::whole_number::optional")]
        #[schema(nullable = false)]
        through: Option<u64>,
    },
}

/// Connect by WebSocket
///
/// A WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`). On
/// `101` the server sends the recipient's inbox, in position order, then its
/// live notifications, each as a text frame, and the client acknowledges
/// what it received. Every frame is a JSON object with a `type`:
///
/// - server to client (schema `ServerFrame`):
///   `{"type":"notification", ...envelope}`, `{"type":"acked","ids":[...]}`
///   answering an `ack`, `{"type":"error","code":"...","message":"..."}`;
/// - client to server (schema `ClientFrame`):
///   `{"type":"ack","through":1042}` (everything this connection was sent up
///   to that position) or `{"type":"ack","ids":[...]}`.
///
/// While presence (where connections are registered) is unreachable, the
/// handshake is answered `503` `unavailable` with `Retry-After`.
///
/// Live notifications are sent without waiting for acknowledgements, up to
/// the delivery window (128 by default) not yet acknowledged. The server
/// closes with `1001` when the distributor stops (reconnect), `1013` when
/// the inbox is unreachable, `4001` when more live notifications waited for
/// this connection than its queue holds (256 by default) and `4002` when a
/// notification sent to it was not acknowledged within the acknowledgement
/// timeout (10 s by default); an `error` frame with the reason
/// (`unavailable`, `slow_client`, `ack_timeout`) comes just before the last
/// three.
/// An `ack` the server could not take (the inbox is unreachable) is answered
/// with an `error` frame `unavailable` instead of `acked`, and the
/// connection stays open: send the `ack` again later. An `ack` of ids never
/// sent to the recipient is answered with `acked` for the others, then an
/// `error` frame `unknown_id` naming them. Nothing
/// unacknowledged is lost: reconnect with `after`, with backoff.
#[utoipa::path(
    get,
    path = "/v1/connect/ws",
    operation_id = "connect_ws",
    tag = "connect",
    params(ConnectQuery),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open; frames as described above."),
        (status = 400, description = "A query parameter that is not understood (`invalid_query`, `field` the parameter: `after` not a whole number from 0 to 9223372036854775807, say), answered before the token is checked; or not a WebSocket handshake (`not_a_websocket`).", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 426, description = "The connection cannot be upgraded (`not_a_websocket`).", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("client_jwt" = []), ("client_token" = [])),
)]
pub async fn connect(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    query: Result<Query<ConnectQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // The query first, as the token may be in it; then who it is: an
    // unauthenticated client learns nothing more.
    let Query(query) = query?;
    let recipient = token::recipient(&headers, query.token.as_deref(), &distributor.jwt)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "not_a_websocket",
            format!("this endpoint speaks WebSocket: {rejection}"),
        )
    })?;
    let session = Session::open(distributor, recipient, query.after, "ws", Duration::ZERO).await?;
    // Small buffers: a client sends little (acknowledgements), and frames to
    // it are written one by one. tungstenite's defaults (128 KiB to read and
    // to write, 64 MiB messages) would cost every idle connection hundreds
    // of KiB, and let a client make the server hold a large message (a
    // frame is checked against its own limit first: 16 MiB by default).
    const MAX_MESSAGE: usize = 1024 * 1024;
    let upgrade = upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE);
    Ok(upgrade.on_upgrade(move |socket| {
        let span = session.span();
        serve(socket, session).instrument(span)
    }))
}

/// Close code for a client that did not keep up with its notifications.
pub const CLOSE_SLOW_CLIENT: u16 = 4001;

/// Close code for a client that acknowledged nothing in time.
pub const CLOSE_SILENT: u16 = 4002;

async fn serve(mut socket: WebSocket, mut session: Session) {
    let stop = session.stop();
    let mut keep_alive = tokio::time::interval_at(
        tokio::time::Instant::now() + super::KEEP_ALIVE,
        super::KEEP_ALIVE,
    );
    loop {
        tokio::select! {
            fed = session.next() => match fed {
                Ok(envelope) => {
                    if send(&mut socket, &ServerFrame::Notification(envelope)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "closing a WebSocket");
                    let _ = send(&mut socket, &error(e.code(), &e.to_string())).await;
                    let code = match e {
                        FeedError::SlowClient => CLOSE_SLOW_CLIENT,
                        FeedError::Silent => CLOSE_SILENT,
                        FeedError::Inbox(_) => close_code::AGAIN,
                    };
                    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(e.code()) }))).await;
                    return;
                }
            },
            message = socket.recv() => {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        // A frame over the size limit, or one that breaks
                        // the protocol: say which before closing.
                        let (code, reason) = match e.to_string().contains("too long") {
                            true => (close_code::SIZE, "a frame is at most 1 MiB"),
                            false => (close_code::PROTOCOL, "not a WebSocket frame"),
                        };
                        tracing::debug!(error = %e, "closing a WebSocket that sent a bad frame");
                        let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))).await;
                        return;
                    }
                    None => return,
                };
                let reply = match message {
                    Message::Text(text) => match serde_json::from_str::<ClientFrame>(&text) {
                        Ok(ClientFrame::Ack { ids, through }) => match acknowledge(&session, ids, through).await {
                            Ok((acked, None)) => acked,
                            Ok((acked, Some(unknown))) => {
                                if send(&mut socket, &acked).await.is_err() {
                                    return;
                                }
                                unknown
                            }
                            Err(refused) => refused,
                        },
                        Err(e) => error("bad_frame", &format!("not a client frame: {e}")),
                    },
                    Message::Binary(_) => error("bad_frame", "client frames are JSON text; a binary frame is not read"),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if send(&mut socket, &reply).await.is_err() {
                    return;
                }
            }
            _ = keep_alive.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            () = stop.cancelled() => {
                let close = CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from_static("the distributor is stopping; reconnect") };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
        }
    }
}

/// Takes an `ack` frame: the `acked` answer, and an `unknown_id` error for
/// ids never sent; or, when nothing was taken, the error that says why.
async fn acknowledge(
    session: &Session,
    ids: Vec<String>,
    through: Option<u64>,
) -> Result<(ServerFrame, Option<ServerFrame>), ServerFrame> {
    let refused = |e: ApiError| error(e.code, &e.message);
    super::ack::check(&ids, through).map_err(refused)?;
    let unavailable = |e: crate::inbox::InboxError| {
        tracing::warn!(error = %e, "cannot acknowledge");
        error(
            "unavailable",
            "the inbox is unreachable; acknowledge again later",
        )
    };
    if let Some(position) = through {
        if session.fed_through().is_none_or(|fed| position > fed) {
            return Err(refused(super::ack::beyond_sent(position)));
        }
        session
            .acknowledge_through(position)
            .await
            .map_err(unavailable)?;
    }
    let found = session.acknowledge(&ids).await.map_err(unavailable)?;
    let acked = ServerFrame::Acked {
        ids: found.known,
        through,
    };
    let unknown = (!found.unknown.is_empty())
        .then(|| error("unknown_id", &super::ack::unknown_message(&found.unknown)));
    Ok((acked, unknown))
}

fn error(code: &str, message: &str) -> ServerFrame {
    ServerFrame::Error {
        code: code.into(),
        message: message.into(),
    }
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).unwrap_or_default();
    socket.send(Message::Text(Utf8Bytes::from(text))).await
}
