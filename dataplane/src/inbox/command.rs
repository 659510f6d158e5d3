//! `notifd inbox`: the steps of adding an inbox shard that no role does by
//! itself (docs/scaling.md): the schema on a new shard before any process
//! reads it, and the move of stored rows to their new shards.

use super::PostgresArgs;
use crate::config::ConfigError;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum InboxCommand {
    /// Applies the inbox's schema to every listed shard.
    Migrate(PostgresArgs),
    /// While shards are being added (--postgres-shards-before), moves the
    /// stored notifications of every recipient whose shard changed.
    Move(PostgresArgs),
}

impl InboxCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            InboxCommand::Migrate(postgres) => {
                postgres.inbox()?.migrate().await?;
                println!("the inbox's schema is up to date on every shard");
            }
            InboxCommand::Move(postgres) => {
                if postgres.postgres_shards_before.is_none() {
                    return Err(ConfigError::new(
                        "--postgres-shards-before",
                        "is required: it says how many of the listed shards there were before, and so which recipients move",
                    )
                    .into());
                }
                if postgres.postgres_store_as_before {
                    return Err(ConfigError::new(
                        "--postgres-store-as-before",
                        "must be off: rows are moved once every process stores new ones on the new shards, or later ones would be left behind",
                    )
                    .into());
                }
                let inbox = postgres.inbox()?;
                inbox.migrate().await?;
                let moved = inbox.move_rows().await?;
                println!(
                    "moved {} stored notifications of {} recipients to their new shards",
                    moved.rows, moved.recipients
                );
            }
        }
        Ok(())
    }
}
