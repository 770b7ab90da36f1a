//! What makes a file a task database: its tables, its mark (`application_id`) and its schema
//! version (`user_version`), checked before anything in the file is changed.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::conn::{Done, Failure};
use crate::error::Error;

/// `PRAGMA application_id` of a task database: "TASK" in ASCII.
pub const APPLICATION_ID: i32 = 0x5441_534B;

/// The schema version this code makes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = 1;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS tasks (
  task_list TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
  data TEXT, saved_at INTEGER, expires_at INTEGER,
  PRIMARY KEY (task_list, id, type)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS claims (
  task_list TEXT NOT NULL, id TEXT NOT NULL,
  owner TEXT, owner_until INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  PRIMARY KEY (task_list, id)) WITHOUT ROWID;
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileState {
    /// Absent or empty: made on open.
    New,
    /// An SQLite file, to be checked by SQLite.
    Sqlite,
}

fn refused(path: &Path, why: impl std::fmt::Display) -> Failure {
    Failure::Task(Error::InvalidArgument(format!(
        "{} {why}; it was left as it is",
        path.display()
    )))
}

/// Looks at the file's first bytes, without SQLite (which could change a file it takes for
/// its own): a file that is not an SQLite database is refused here.
pub(super) fn check_file(path: &Path) -> Done<FileState> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::New),
        Err(e) => return Err(refused(path, format_args!("cannot be read ({e})"))),
    };
    if meta.is_dir() {
        return Err(refused(path, "is a directory, not a task database file"));
    }
    if meta.len() == 0 {
        return Ok(FileState::New);
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Ok(()) if &head == SQLITE_MAGIC => Ok(FileState::Sqlite),
        Ok(()) => Err(refused(path, "is not a task database (not an SQLite file)")),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(refused(
            path,
            "is not a task database (too short for an SQLite file)",
        )),
        Err(e) => Err(refused(path, format_args!("cannot be read ({e})"))),
    }
}

/// The file's mark, its schema version and how many objects its schema has.
fn identity(conn: &Connection) -> rusqlite::Result<(i32, i32, i64)> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id()), \
                (SELECT user_version FROM pragma_user_version()), \
                (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Accepts a task database of a version this code reads, and makes an empty database one
/// (in one transaction, so that processes opening a new file at once make it once).
/// Anything else is refused before anything is written.
pub(super) fn check_or_create(conn: &mut Connection, path: &Path) -> Done<()> {
    if accept(identity(conn)?, path)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Made by another connection meanwhile?
    if !accept(identity(&tx)?, path)? {
        create(&tx)?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
    }
    tx.commit()?;
    Ok(())
}

/// True for a task database this code reads, false for an empty database (to be made);
/// anything else is refused.
fn accept((app, version, objects): (i32, i32, i64), path: &Path) -> Done<bool> {
    match app {
        APPLICATION_ID if version == SCHEMA_VERSION => Ok(true),
        APPLICATION_ID if version > SCHEMA_VERSION => Err(refused(
            path,
            format_args!(
                "has task schema version {version}, newer than this version of the gem \
                 reads ({SCHEMA_VERSION}): open it with a newer gem"
            ),
        )),
        APPLICATION_ID => Err(refused(
            path,
            format_args!("has an unknown task schema version {version}"),
        )),
        0 if version == 0 && objects == 0 => Ok(false),
        0 => Err(refused(
            path,
            "is not a task database (an SQLite database of something else)",
        )),
        other => Err(refused(
            path,
            format_args!(
                "is not a task database (an SQLite database of another application, \
                 application_id {other:#x})"
            ),
        )),
    }
}

/// Makes the tables (idempotent).
pub(super) fn create(tx: &Transaction<'_>) -> Done<()> {
    tx.execute_batch(CREATE)?;
    Ok(())
}
