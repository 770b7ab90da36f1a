//! What makes a file a task database: its tables, its mark (`application_id`) and its schema
//! version (`user_version`), checked before anything in the file is changed.

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::conn::{Done, Failure};
use crate::error::Error;

/// `PRAGMA application_id` of a task database: "TASK" in ASCII.
pub const APPLICATION_ID: i32 = 0x5441_534B;

/// The schema version this code makes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = 1;

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
    /// Something, to be checked by SQLite (which refuses a file that is not a database
    /// without writing to it).
    Existing,
}

fn refused(path: &Path, why: impl std::fmt::Display) -> Failure {
    Failure::Task(Error::InvalidArgument(format!(
        "{} {why}; it was left as it is",
        path.display()
    )))
}

/// Whether the file is there, by its metadata alone. The file itself is read only through
/// SQLite: a process that opens and closes a file of its own on a database loses every POSIX
/// lock it holds on it (SQLite's included), so another process could take itself for the last
/// user and remove the write-ahead log under this one's feet. SQLite's own opens keep such
/// descriptors until the process's last connection to the file is closed.
pub(super) fn check_file(path: &Path) -> Done<FileState> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::New),
        Err(e) => return Err(refused(path, format_args!("cannot be read ({e})"))),
    };
    if meta.is_dir() {
        return Err(refused(path, "is a directory, not a task database file"));
    }
    Ok(if meta.len() == 0 {
        FileState::New
    } else {
        FileState::Existing
    })
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
    let found = identity(conn).map_err(|e| match e.sqlite_error_code() {
        // SQLite reads the header first and writes nothing to a file it does not recognise.
        Some(rusqlite::ErrorCode::NotADatabase) => {
            refused(path, "is not a task database (not an SQLite file)")
        }
        _ => Failure::Sql(e),
    })?;
    if accept(found, path)? {
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
