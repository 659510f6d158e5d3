//! Server-Sent Events: notifications over the event stream,
//! acknowledgements by `POST /v1/ack`.

use eventsource_stream::Eventsource;
use futures::StreamExt;

use super::{Ended, Link, check};
use crate::notification::Notification;

pub async fn run(link: &mut Link) -> Ended {
    let request = link
        .http
        .get(link.url("http", "/v1/connect/sse"))
        .header(reqwest::header::ACCEPT, "text/event-stream");
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Ended::Lost(e.to_string()),
    };
    let response = match check(response).await {
        Ok(response) => response,
        Err(ended) => return ended,
    };
    link.set_connected();
    let mut events = response.bytes_stream().eventsource();
    let mut reason = String::from("the stream ended");
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) if event.event == "notification" => {
                    match serde_json::from_str::<Notification>(&event.data) {
                        Ok(notification) => {
                            if let Err(ended) = link.deliver(notification).await {
                                return ended;
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "an event that is not a notification"),
                    }
                }
                Some(Ok(event)) if event.event == "error" => reason = event.data,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Lost(e.to_string()),
                None => return Ended::Lost(reason),
            },
            acks = link.acks() => match acks {
                Ok(acks) => link.post_acks(acks),
                Err(ended) => return ended,
            },
        }
    }
}
