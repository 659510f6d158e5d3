//! The standalone service's data directory: its database and its
//! development credentials, locked so that one process uses it at a time.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::ConfigError;
use crate::sqlite::Database;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// `~/.local/share/saasaparilla` on Linux (`$XDG_DATA_HOME` when set).
pub fn default_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("saasaparilla")
}

/// A data directory this process holds the lock of, until it exits.
pub struct DataDir {
    pub path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Makes the directory if needed and takes its lock; fails, naming the
    /// process that holds it, when another notifd uses it.
    pub fn lock(path: &Path) -> Result<DataDir, ConfigError> {
        let error = |what: &str, e: std::io::Error| {
            ConfigError::new("--data-dir", format!("{what} {}: {e}", path.display()))
        };
        fs::create_dir_all(path).map_err(|e| error("cannot create", e))?;
        // It holds every payload not yet delivered, and the credentials.
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|e| error("cannot make private", e))?;
        let lock_path = path.join("notifd.lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| error("cannot open the lock file in", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                return Err(ConfigError::new(
                    "--data-dir",
                    format!(
                        "{} is in use by another notifd (process {}); stop it, or give another --data-dir",
                        path.display(),
                        holder.trim()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(error("cannot lock", e)),
        }
        // Who holds it, for the message above.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The database (`notifd.sqlite`), made and migrated on first use.
    /// Every commit is synced to disk before it returns: an accepted
    /// notification survives a crash or a power cut.
    pub async fn database(&self) -> anyhow::Result<Database> {
        let file = self.path.join("notifd.sqlite");
        private_database_files(&file)
            .map_err(|e| anyhow::anyhow!("cannot make {} private: {e}", file.display()))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // One connection: SQLite has one writer at a time anyway, and
        // writers on several connections would wait for each other in
        // SQLite's busy handler, which sleeps. Statements queue here instead.
        // No ping before each use: the database is a file, not a server
        // that could have gone, and a ping cut short by a caller that
        // stopped waiting (the director's reads are raced against its other
        // work) makes the pool close the connection and open a new one.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate {}: {e}", file.display()))?;
        Ok(Database::new(pool))
    }
}

/// Makes the database file, if it is not there yet, readable by its owner
/// only (SQLite gives its journal files the database's permissions), and
/// takes the others' access away from files an earlier version made.
fn private_database_files(file: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(file)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .expect("it is there")
            .permissions()
            .mode()
            & 0o777
    }

    #[tokio::test]
    async fn a_data_dir_an_earlier_version_left_open_is_made_private() {
        let path = std::env::temp_dir().join(crate::notification::new_id());
        fs::create_dir(&path).expect("a directory");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("0755");
        let database = path.join("notifd.sqlite");
        for file in [database.clone(), path.join("notifd.sqlite-wal")] {
            fs::write(&file, b"").expect("a file");
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("0644");
        }

        let data_dir = DataDir::lock(&path).expect("locked");
        data_dir.database().await.expect("the database opens");
        assert_eq!(mode(&path), 0o700, "the directory");
        for name in ["notifd.sqlite", "notifd.sqlite-wal", "notifd.lock"] {
            assert_eq!(mode(&path.join(name)), 0o600, "{name}");
        }
        drop(data_dir);
        fs::remove_dir_all(&path).expect("removed");
    }

    #[tokio::test]
    async fn queries_their_callers_stop_waiting_for_keep_the_one_connection() {
        let path = std::env::temp_dir().join(crate::notification::new_id());
        let data_dir = DataDir::lock(&path).expect("locked");
        let pool = data_dir.database().await.expect("the database opens").pool;
        // A temporary table lives as long as its connection.
        sqlx::query("CREATE TEMP TABLE marker (x INTEGER)")
            .execute(&pool)
            .await
            .expect("made");
        for _ in 0..10 {
            // Back in the pool, idle; then a query given up at its first wait.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = futures::FutureExt::now_or_never(sqlx::query("SELECT 1").execute(&pool));
        }
        sqlx::query("SELECT x FROM marker")
            .execute(&pool)
            .await
            .expect("the same connection: its temporary table is there");
        drop(data_dir);
        fs::remove_dir_all(&path).expect("removed");
    }
}
