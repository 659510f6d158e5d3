//! Long-polling: each poll acknowledges, by its cursor, everything the
//! previous ones delivered, and waits for what follows. So that nothing is
//! acknowledged before the application has it, a poll waits until the
//! application has taken everything the previous one brought.

use serde::Deserialize;

use super::{Ended, Link, check};
use crate::notification::Notification;

/// Seconds a poll waits on the server for a first notification.
const WAIT_SECS: u32 = 25;

#[derive(Deserialize)]
struct PollAnswer {
    notifications: Vec<Notification>,
}

pub async fn run(link: &mut Link) -> Ended {
    loop {
        if let Err(ended) = link.all_taken().await {
            return ended;
        }
        let url = format!("{}&wait={WAIT_SECS}", link.url("http", "/v1/connect/poll"));
        // Acknowledgements are the cursor's job here.
        link.forget_acks();
        let response = match link.http.get(url).send().await {
            Ok(response) => response,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let answer = match check(response).await {
            Ok(response) => response.json::<PollAnswer>().await,
            Err(ended) => return ended,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        link.set_connected();
        for notification in answer.notifications {
            if let Err(ended) = link.deliver(notification).await {
                return ended;
            }
        }
    }
}
