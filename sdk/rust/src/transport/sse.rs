//! Server-Sent Events: notifications over the event stream,
//! acknowledgements by `POST /v1/ack`, one request at a time: what the
//! application acknowledges meanwhile goes in the next one, mostly as one
//! cumulative acknowledgement.

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
    let mut posting: Option<tokio::task::JoinHandle<()>> = None;
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
            _ = async { posting.as_mut().expect("checked").await }, if posting.is_some() => posting = None,
            acks = link.acks(), if posting.is_none() => match acks {
                Ok(acks) => posting = Some(link.post_acks(acks)),
                Err(ended) => return ended,
            },
        }
    }
}
