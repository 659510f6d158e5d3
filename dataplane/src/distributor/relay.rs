//! Acknowledgements that reach one distributor for live notifications that
//! another one waits on: an SSE client's `POST /v1/ack`, or a long-poll
//! cursor, that a load balancer sent elsewhere than the connection. They are
//! passed on to the other distributors presence lists for the recipient, on
//! their internal forward port, so the notification is done at once instead
//! of timing out and coming again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Distributor;
use super::live::Known;
use crate::forward::{RELAY_PATH, RelayAnswer, Relayed};
use axum::Json;
use axum::extract::State;
use futures::future::join_all;

/// How long another distributor may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How long a distributor that could not be reached is left alone. A dead
/// one stays listed in presence until its entries expire, and every
/// acknowledgement for its recipients would otherwise wait on it, and log.
const LEFT_ALONE: Duration = Duration::from_secs(5);

/// How other distributors are reached: one HTTP client, and those that
/// could not be reached lately, left alone for a while.
#[derive(Default)]
pub struct Relay {
    client: reqwest::Client,
    /// Distributor id: when it last could not be reached.
    unreachable: Mutex<HashMap<String, Instant>>,
}

impl Relay {
    fn unreachable(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.unreachable.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_left_alone(&self, other: &str) -> bool {
        self.unreachable()
            .get(other)
            .is_some_and(|since| since.elapsed() < LEFT_ALONE)
    }

    /// Notes that `other` answered, or could not be reached.
    fn reached(&self, other: &str, reached: bool) {
        let mut unreachable = self.unreachable();
        if reached {
            unreachable.remove(other);
        } else {
            unreachable.insert(other.to_string(), Instant::now());
            unreachable.retain(|_, since| since.elapsed() < LEFT_ALONE);
        }
    }
}

/// The receiving end, on the forward port.
pub async fn accept(
    State(distributor): State<Arc<Distributor>>,
    Json(relayed): Json<Relayed>,
) -> Json<RelayAnswer> {
    let live = &distributor.live;
    let mut answer = RelayAnswer::default();
    if let Some(position) = relayed.through {
        let through = live.acknowledge_through(&relayed.recipient, position);
        answer.sent_through = through.sent;
        answer.inbox_fed = through.inbox;
    }
    let known = live.acknowledge(&relayed.recipient, &relayed.ids);
    for (id, known) in relayed.ids.into_iter().zip(known) {
        match known {
            Known::Held => answer.held.insert(id),
            Known::Acknowledged => answer.remembered.insert(id),
            Known::Unknown => false,
        };
    }
    Json(answer)
}

/// Passes `relayed` on to every other distributor that holds a connection of
/// its recipient; returns what they knew, together. One that cannot be
/// reached or asked, or could not be lately, knows nothing: its
/// notification times out and comes again, a duplicate and never a loss.
pub async fn relay(distributor: &Distributor, relayed: &Relayed) -> RelayAnswer {
    let others = match distributor.presence.lookup(&relayed.recipient).await {
        Ok(holders) => holders
            .into_iter()
            .filter(|d| *d != distributor.id && !distributor.relay.is_left_alone(d))
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find the recipient's other distributors");
            return RelayAnswer::default();
        }
    };
    let asks = others.iter().map(|other| ask(distributor, other, relayed));
    let mut together = RelayAnswer::default();
    for answer in join_all(asks).await {
        together.held.extend(answer.held);
        together.remembered.extend(answer.remembered);
        together.sent_through = together.sent_through.max(answer.sent_through);
        together.inbox_fed |= answer.inbox_fed;
    }
    together
}

async fn ask(distributor: &Distributor, other: &str, relayed: &Relayed) -> RelayAnswer {
    let address = match distributor.presence.distributor_address(other).await {
        Ok(Some(address)) => address,
        Ok(None) => return RelayAnswer::default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find another distributor's address");
            return RelayAnswer::default();
        }
    };
    let mut request = distributor
        .relay
        .client
        .post(format!("http://{address}{RELAY_PATH}"))
        .timeout(TIMEOUT)
        .json(relayed);
    if let Some(secret) = &distributor.forward_secret {
        request = request.header(axum::http::header::AUTHORIZATION, secret.header());
    }
    let answer = request.send().await.and_then(|r| r.error_for_status());
    distributor.relay.reached(other, answer.is_ok());
    match answer {
        Ok(answer) => answer.json::<RelayAnswer>().await.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, distributor = other, "cannot pass an acknowledgement on; leaving that distributor alone for {} s", LEFT_ALONE.as_secs());
            RelayAnswer::default()
        }
    }
}
