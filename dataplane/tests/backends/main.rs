//! The backends behind the roles' traits, each against its real server or
//! file: the inbox on Postgres and SQLite, presence on Redis, the
//! standalone log on SQLite.

mod inbox;
mod log;
mod presence;
