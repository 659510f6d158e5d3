//! `notifd move-inbox`: the step of adding an inbox shard that moves stored
//! rows to their new shard (docs/scaling.md).

use super::PostgresArgs;
use crate::config::ConfigError;
use crate::retry::{self, Backoff};

/// The shards as the processes now run with them, shards being added.
#[derive(clap::Args, Debug, Clone)]
pub struct MoveInboxArgs {
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

impl MoveInboxArgs {
    /// Moves every recipient whose shard changed; prints what moved.
    pub async fn run(self) -> anyhow::Result<()> {
        if self.postgres.postgres_shards_before.is_none() {
            return Err(ConfigError::new(
                "--postgres-shards-before",
                "is required: it says how many of the listed shards there were before, and so which recipients move",
            )
            .into());
        }
        let inbox = self.postgres.inbox()?;
        // The new shards may not have the schema yet.
        retry::until_ok("inbox migrations", Backoff::DEFAULT, || inbox.migrate()).await;
        let moved = inbox.move_to_homes().await?;
        println!(
            "moved {} stored notifications of {} recipients to their new shards",
            moved.rows, moved.recipients
        );
        Ok(())
    }
}
