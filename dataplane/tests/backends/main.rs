//! The backends behind the roles' traits, each against its real server:
//! the inbox on Postgres, presence on Redis.

mod inbox;
mod presence;
