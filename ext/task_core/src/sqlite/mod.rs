//! The SQLite store: one file on the host, shared by every thread and process that opens it,
//! with no server. SQLite is compiled into the crate (`rusqlite`'s `bundled` feature), so the
//! gem needs no system library.
//!
//! ```sql
//! CREATE TABLE tasks (
//!   task_list TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
//!   data TEXT,            -- the JSON text as given (the same bytes as the other stores)
//!   saved_at INTEGER,     -- when data was written, microseconds since the Unix epoch
//!   expires_at INTEGER,   -- a task saved with a time to live: when it lapses (same unit)
//!   PRIMARY KEY (task_list, id, type)) WITHOUT ROWID;
//! CREATE TABLE claims (
//!   task_list TEXT NOT NULL, id TEXT NOT NULL,
//!   owner TEXT, owner_until INTEGER,   -- the holder of a claim and when it lapses
//!   attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
//!   PRIMARY KEY (task_list, id)) WITHOUT ROWID;
//! ```
//!
//! Text compares with SQLite's BINARY collation (bytes), so ids and types sort as UTF-8 bytes,
//! the order of the other stores. The file is marked as a task database by `PRAGMA
//! application_id` and carries its schema version in `PRAGMA user_version`; a file that is
//! not one, or of a newer version, is refused at open and left as it was.
//!
//! How it behaves:
//! * Journal: WAL, so readers never block the writer, nor the writer readers.
//! * Every write is one transaction begun with `BEGIN IMMEDIATE`: it takes the file's write
//!   lock first, so it never fails half way for a lock. A claim reads the task row and the
//!   claim row, decides and writes in one such transaction: atomic across processes.
//! * A call waiting for the lock waits at most `retry_deadline` (a busy handler that checks
//!   it), then fails with `Error::Timeout` naming the file; the transaction was not begun, so
//!   nothing of that call was applied.
//! * `synchronous = FULL` (the default; see [`Synchronous`]): each commit syncs the WAL, so a
//!   call that returned survives a process kill, an OS crash and a power loss. `NORMAL`
//!   syncs only at checkpoints: still consistent and complete across a process kill, but the
//!   last commits before an OS crash or power loss may be lost (never half applied).
//! * Leases and times to live are by the host's wall clock (`SystemTime`, stored as Unix
//!   microseconds), which every process on the host shares. A lease ends by the rule of
//!   every store (`expiry`): at least the lease after the call returns, at most `⌈lease⌉ + 2`
//!   seconds after it was made. Expired tasks are invisible to every read and purged now and
//!   then by writes, with their claims (no claim row outlives its task).
//! * Connections are pooled per store and tagged with the process id: a process made by
//!   `fork` never uses (nor closes) its parent's connections; it leaks them and opens its own.
//!   Before a fork, `close_idle` closes the parent's idle connections, so that the child
//!   starts with none of SQLite's per-process state for the file.
//! * A running call can be stopped from another thread (`sqlite3_interrupt`): see
//!   [`CallInterrupt`] and [`SqliteStore::interruptible`].
//!
//! Every method is synchronous and may block (on the disk, or on another process's lock, up
//! to the deadline): the binding runs them on a thread with Ruby's GVL released.

mod backend;
mod claims;
mod conn;
mod read;
mod schema;
mod tasks;
mod wait;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use backend::SqliteSpec;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use wait::CallInterrupt;

use crate::claims::DEFAULT_MAX_ATTEMPTS;
use crate::error::Result;
use crate::memory::DEFAULT_PAGE_SIZE;

/// How long a call waits for another connection's write lock unless told otherwise.
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(5);

/// How often commits reach the disk (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// The WAL is synced at every commit: what a call returned from is kept across a process
    /// kill, an OS crash and a power loss.
    #[default]
    Full,
    /// The WAL is synced only at checkpoints: kept across a process kill; the last commits
    /// may be lost (whole) on an OS crash or power loss. Faster for many small writes.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// What a SQLite store is opened with.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file (made, with its schema, when absent or empty).
    pub path: PathBuf,
    /// The longest a call waits for the write lock held by another connection.
    pub retry_deadline: Duration,
    /// Rows per page of a scan, and names per page of `lists_page`.
    pub page_size: usize,
    /// Claims after which a task is dead (None: never).
    pub max_attempts: Option<u32>,
    /// Time to live of a task saved without one (None: forever).
    pub default_ttl: Option<Duration>,
    pub synchronous: Synchronous,
}

impl SqliteConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            retry_deadline: DEFAULT_RETRY_DEADLINE,
            page_size: DEFAULT_PAGE_SIZE,
            max_attempts: Some(DEFAULT_MAX_ATTEMPTS),
            default_ttl: None,
            synchronous: Synchronous::Full,
        }
    }
}

/// What `SqliteStore::describe` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteReport {
    pub path: PathBuf,
    /// The SQLite library compiled in.
    pub sqlite_version: String,
    /// `PRAGMA user_version` (`SCHEMA_VERSION`).
    pub schema_version: i32,
    /// "wal".
    pub journal_mode: String,
    /// "FULL" or "NORMAL".
    pub synchronous: String,
    /// The database file's size (pages x page size; the WAL beside it not counted).
    pub bytes: u64,
}

/// Where the next page of a scan starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteCursor {
    /// After every type stored under this id (to resume a scan by id).
    AfterId(String),
    /// After this (id, type).
    After(String, String),
}

/// A task store in one SQLite file. Share it between threads (it is `Sync`); open one per
/// process, or keep it across `fork` (the child opens its own connections).
pub struct SqliteStore {
    config: SqliteConfig,
    pool: conn::Pool,
    /// Counts writes, so that one in `PURGE_EVERY` also purges expired rows.
    writes: AtomicU32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the file, making it (with its schema) when it is absent or empty. Refused, with
    /// the file left as it was: a file that is not a task database, or one of a schema
    /// version newer than this code knows.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore> {
        let mut config = config;
        config.page_size = config.page_size.max(1);
        if let Some(ttl) = config.default_ttl {
            crate::expiry::check_ttl("default_ttl", ttl)?;
        }
        let store = SqliteStore {
            pool: conn::Pool::new(),
            config,
            writes: AtomicU32::new(0),
        };
        // Opening the first connection checks (and if need be makes) the file.
        store.with_conn(|| "opening the database".into(), |_| Ok(()))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.config.path
    }

    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }

    pub fn max_attempts(&self) -> Option<u32> {
        self.config.max_attempts
    }

    pub fn default_ttl(&self) -> Option<Duration> {
        self.config.default_ttl
    }

    pub fn page_size(&self) -> usize {
        self.config.page_size
    }

    pub fn retry_deadline(&self) -> Duration {
        self.config.retry_deadline
    }

    /// Makes the tables if they are not there (the store does at open; this is for callers
    /// that ask for it, like the other stores' `create_schema`).
    pub fn create_schema(&self) -> Result<()> {
        self.write_tx(|| "creating the schema".into(), schema::create)
    }

    /// What the file and the library say about themselves (for `describe`).
    pub fn describe(&self) -> Result<SqliteReport> {
        self.with_conn(
            || "describing the database".into(),
            |c| {
                let (journal_mode, synchronous, schema_version, page_size, pages) = c.query_row(
                    "SELECT (SELECT journal_mode FROM pragma_journal_mode()), \
                            (SELECT synchronous FROM pragma_synchronous()), \
                            (SELECT user_version FROM pragma_user_version()), \
                            (SELECT page_size FROM pragma_page_size()), \
                            (SELECT page_count FROM pragma_page_count())",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i32>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )?;
                Ok(SqliteReport {
                    path: self.config.path.clone(),
                    sqlite_version: rusqlite::version().to_string(),
                    schema_version,
                    journal_mode,
                    synchronous: match synchronous {
                        0 => "OFF",
                        1 => "NORMAL",
                        2 => "FULL",
                        _ => "EXTRA",
                    }
                    .to_string(),
                    bytes: u64::try_from(page_size.saturating_mul(pages)).unwrap_or(0),
                })
            },
        )
    }

    /// `PRAGMA integrity_check`: `Ok(())` when SQLite finds the file sound, else the
    /// problems it reports.
    pub fn integrity_check(&self) -> Result<std::result::Result<(), Vec<String>>> {
        self.with_conn(
            || "checking the file's integrity".into(),
            |c| {
                let mut stmt = c.prepare("PRAGMA integrity_check")?;
                let lines = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(if lines == ["ok"] { Ok(()) } else { Err(lines) })
            },
        )
    }
}

/// The clock's time in microseconds since the Unix epoch (the unit of `saved_at`, lease ends
/// and expiry times).
pub(crate) fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// When a claim of `lease` made at `now` (Unix microseconds) lapses: by the rule every store
/// keeps (`expiry::lease_ttl_secs`, counted from the start of the current second), so a
/// claim keeps others out for at least the lease and lapses within `⌈lease⌉ + 2` seconds.
pub(crate) fn lease_until(now: i64, lease: Duration) -> i64 {
    let secs = i64::try_from(crate::expiry::lease_ttl_secs(lease)).unwrap_or(i64::MAX / 2_000_000);
    (now - now.rem_euclid(1_000_000)).saturating_add(secs.saturating_mul(1_000_000))
}

/// A duration in microseconds, rounded up.
pub(crate) fn micros(d: Duration) -> i64 {
    let us = d.as_nanos().div_ceil(1000);
    i64::try_from(us).unwrap_or(i64::MAX)
}
