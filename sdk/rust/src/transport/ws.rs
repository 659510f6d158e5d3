//! WebSocket: notifications and acknowledgements both over the socket.

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Ended, Link, SILENCE, classify};
use crate::notification::Notification;

/// A frame's type, and an error frame's fields. A notification frame is
/// read again as a [`Notification`]: serde cannot read its raw payload
/// through an internally tagged enum.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Read at a time; a larger frame takes several reads.
const READ_BUFFER: usize = 8 * 1024;

/// Error frames that answer an acknowledgement; the connection stays open.
const ACK_ERRORS: [&str; 5] = [
    "unknown_id",
    "beyond_sent",
    "invalid_id",
    "too_many_ids",
    "empty_ack",
];

pub async fn run(link: &mut Link) -> Ended {
    let url = link.url("ws", "/v1/connect/ws");
    // tungstenite zero-fills its whole read buffer before each read: its
    // default of 128 KiB costs more than the notifications themselves. Acks
    // are small and go out at once (no write buffer, no Nagle).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    // A hung server's kernel still completes the TCP handshake: without a
    // limit, the WebSocket handshake would wait for it for ever.
    let handshake = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    let Ok(handshake) = tokio::time::timeout(SILENCE, handshake).await else {
        return Ended::Lost(format!(
            "the handshake was not answered within {} s",
            SILENCE.as_secs()
        ));
    };
    let socket = match handshake {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            return classify(response.status(), String::from_utf8_lossy(body).into());
        }
        Err(e) => return Ended::Lost(e.to_string()),
    };
    link.set_connected();
    let (mut outgoing, mut incoming) = socket.split();
    // The server's last word before it closes, for the log.
    let mut reason = String::from("the server closed the connection");
    loop {
        tokio::select! {
            frame = tokio::time::timeout(SILENCE, incoming.next()) => {
                let Ok(frame) = frame else {
                    return Ended::Lost(format!("nothing heard from the server for {} s", SILENCE.as_secs()));
                };
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(close))) => {
                        return Ended::Lost(format!("{reason} ({close:?})"));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Ended::Lost(e.to_string()),
                    None => return Ended::Lost(reason),
                };
                let frame = match serde_json::from_str::<Frame>(&text) {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::debug!(error = %e, "a frame that is not JSON");
                        continue;
                    }
                };
                match frame.kind.as_str() {
                    "notification" => match serde_json::from_str::<Notification>(&text) {
                        Ok(notification) => {
                            if let Err(ended) = link.deliver(notification).await {
                                return ended;
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "a notification frame without a notification"),
                    },
                    // An acknowledgement of an id the server no longer
                    // remembers, or refused: nothing to do, and no reason
                    // to close (what was not acknowledged comes again).
                    "error" if ACK_ERRORS.contains(&frame.code.as_str()) => tracing::debug!(code = %frame.code, message = %frame.message, "an acknowledgement was not taken"),
                    "error" => reason = format!("{}: {}", frame.code, frame.message),
                    _ => {}
                }
            }
            acks = link.acks() => {
                let acks = match acks {
                    Ok(acks) => acks,
                    Err(ended) => return ended,
                };
                let mut frame = acks.to_json();
                frame.insert("type".into(), "ack".into());
                let frame = serde_json::Value::Object(frame).to_string();
                if let Err(e) = outgoing.send(Message::text(frame)).await {
                    link.unsent.merge(acks);
                    return Ended::Lost(e.to_string());
                }
            }
        }
    }
}
