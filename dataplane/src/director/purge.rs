//! Clearing the inbox of what it no longer needs to hold: notifications
//! past their ttl, and those kept longer than the retention (their
//! recipients never came back for them).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::inbox::Inbox;
use crate::notification::now_ms;

/// Purges every `every` until `stop`. Every director does, and the deletes
/// are idempotent: several at once do no harm.
pub async fn run(
    inbox: Arc<dyn Inbox>,
    retention: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => match inbox.purge(now_ms(), retention).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "purged expired and old notifications from the inbox"),
                Err(e) => tracing::warn!(error = %e, "cannot purge the inbox; trying again later"),
            },
            () = stop.cancelled() => return,
        }
    }
}
