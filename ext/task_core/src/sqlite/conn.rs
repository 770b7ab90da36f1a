//! Connections: the per-process pool, opening one, transactions, and what SQLite's errors
//! become.

use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use super::wait::{busy, interrupted_here, DeadlineGuard, Registration};

use super::{schema, SqliteConfig, SqliteStore};
use crate::error::{Error, Result};

/// Idle connections a store keeps open; more are opened when more threads call at once,
/// and closed when given back to a full pool.
const MAX_IDLE: usize = 8;

/// Virtual machine steps between two looks at the call's interrupt.
const PROGRESS_STEPS: i32 = 1000;

/// What went wrong inside a call, before it is given the call's description.
#[derive(Debug)]
pub(super) enum Failure {
    Sql(rusqlite::Error),
    Task(Error),
    /// The call's `CallInterrupt` fired between two statements.
    Interrupted,
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Task(e)
    }
}

pub(super) type Done<T> = std::result::Result<T, Failure>;

/// The connections of one store, all opened by the process `pid`.
pub(super) struct Pool {
    state: Mutex<PoolState>,
}

struct PoolState {
    pid: u32,
    idle: Vec<Connection>,
}

impl Pool {
    pub(super) fn new() -> Self {
        Pool {
            state: Mutex::new(PoolState {
                pid: std::process::id(),
                idle: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Each change to the state is one push, pop or swap: a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection of this process, if any. In a process made by fork, the parent's
    /// connections are forgotten first: closing them would release locks and change state
    /// the parent still relies on.
    fn take(&self, pid: u32) -> Option<Connection> {
        let mut st = self.lock();
        if st.pid != pid {
            st.pid = pid;
            leak(std::mem::take(&mut st.idle));
        }
        st.idle.pop()
    }

    /// Gives back a connection opened by `pid` (the process that took it).
    fn give(&self, conn: Connection, pid: u32) {
        let mut st = self.lock();
        if st.pid != pid || std::process::id() != pid {
            // Taken before a fork and given back in the child (or the other way round).
            leak(vec![conn]);
        } else if st.idle.len() < MAX_IDLE {
            st.idle.push(conn);
        }
    }
}

impl Pool {
    /// Closes the idle connections of this process (another process's are forgotten).
    fn close_idle(&self) {
        let idle = {
            let mut st = self.lock();
            let idle = std::mem::take(&mut st.idle);
            if st.pid != std::process::id() {
                leak(idle);
                return;
            }
            idle
        };
        // Closed outside the lock: the last close of a file checkpoints it.
        drop(idle);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if st.pid != std::process::id() {
            leak(std::mem::take(&mut st.idle));
        }
    }
}

/// Connections of another process (the parent of a fork): never used nor closed here.
fn leak(conns: Vec<Connection>) {
    for c in conns {
        std::mem::forget(c);
    }
}

/// Opens, checks and sets up one connection.
fn open(config: &SqliteConfig) -> Done<Connection> {
    let path = &config.path;
    let state = schema::check_file(path)?;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if state == schema::FileState::New {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(busy))?;
    // Every so many steps a statement looks at its call's interrupt: an interrupt that came
    // between two statements (which `sqlite3_interrupt` alone would miss: SQLite clears it
    // when a statement starts on an idle connection) still stops the next one.
    conn.progress_handler(PROGRESS_STEPS, Some(interrupted_here));
    conn.set_prepared_statement_cache_capacity(32);
    // Checked (and on an empty file, made) before anything else touches the file.
    schema::check_or_create(&mut conn, path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Failure::Task(Error::QueryRejected(format!(
            "{} cannot be put in WAL mode (SQLite answered journal_mode {mode:?})",
            path.display()
        ))));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {};",
        config.synchronous.pragma()
    ))?;
    Ok(conn)
}

impl SqliteStore {
    /// Closes the connections no call is using (the next call opens one again). Call it just
    /// before `fork` (the binding does, from `Process._fork`): a child made while its parent
    /// holds no connection to the file starts with none of SQLite's per-process state for
    /// it (its lock and shared-memory bookkeeping), which a child must not share. The pool's
    /// process check is the fallback when that was not done: the child then leaks the
    /// parent's connections and opens its own, but SQLite's bookkeeping for the file, copied
    /// from the parent, may still be wrong for it (SQLite's rule: no connection open across
    /// fork).
    pub fn close_idle(&self) {
        self.pool.close_idle();
    }

    /// Runs `f` on a connection of this process (opened if none is idle). `what` describes
    /// the call for error messages.
    pub(super) fn with_conn<R>(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&mut Connection) -> Done<R>,
    ) -> Result<R> {
        let _deadline = DeadlineGuard::set(self.config.retry_deadline);
        let pid = std::process::id();
        let mut conn = match self.pool.take(pid) {
            Some(c) => c,
            None => open(&self.config)
                .map_err(|e| self.error(e, || "opening the database".to_string()))?,
        };
        let out = match Registration::new(&conn) {
            Ok(reg) => {
                let out = f(&mut conn);
                drop(reg);
                out
            }
            Err(e) => Err(e),
        };
        // A transaction a failure left open (its rollback failed too) must not reach the
        // next call: rolled back here, or the connection is closed instead of kept.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if conn.is_autocommit() {
            self.pool.give(conn, pid);
        }
        out.map_err(|e| self.error(e, what))
    }

    /// `f` in one write transaction (`BEGIN IMMEDIATE`) on a connection of this process.
    pub(super) fn write_tx<R>(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&Transaction<'_>) -> Done<R>,
    ) -> Result<R> {
        self.with_conn(what, |c| self.tx_on(c, f))
    }

    /// `f` in one write transaction on `conn`: committed when it succeeds and the call was
    /// not interrupted, else rolled back.
    pub(super) fn tx_on<R>(
        &self,
        conn: &mut Connection,
        f: impl FnOnce(&Transaction<'_>) -> Done<R>,
    ) -> Done<R> {
        // The wait for the lock starts now, whatever the call did before.
        let _deadline = DeadlineGuard::set(self.config.retry_deadline);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        if interrupted_here() {
            return Err(Failure::Interrupted);
        }
        tx.commit()?;
        Ok(out)
    }

    /// The error a failure comes to, naming the call and the file.
    pub(super) fn error(&self, failure: Failure, what: impl FnOnce() -> String) -> Error {
        let path = self.config.path.display();
        let interrupted = |what: String| {
            Error::Timeout(format!(
                "{what} on {path} was interrupted; nothing of it was applied"
            ))
        };
        let e = match failure {
            Failure::Task(e) => return e,
            Failure::Interrupted => return interrupted(what()),
            Failure::Sql(e) => e,
        };
        let made = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) if interrupted_here() => {
                interrupted(what())
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Timeout(format!(
                "{} on {path} timed out after {:?} waiting for another connection's lock \
                 (retry_deadline); nothing of it was applied",
                what(),
                self.config.retry_deadline
            )),
            Some(ErrorCode::OperationInterrupted) => interrupted(what()),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::BadData(format!(
                "{}: {path} is damaged or not a task database: {e}",
                what()
            )),
            _ => Error::QueryRejected(format!("{}: SQLite failed on {path}: {e}", what())),
        };
        made.caused_by(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_process_leaks_its_parents_connections_and_opens_its_own() {
        let pool = Pool::new();
        let me = std::process::id();
        pool.give(Connection::open_in_memory().unwrap(), me);
        assert!(pool.take(me).is_some());
        pool.give(Connection::open_in_memory().unwrap(), me);
        // As a child would see it: another pid. The parent's connection is not handed out
        // (and not closed: forgotten).
        let child = me.wrapping_add(1);
        assert!(pool.take(child).is_none());
        assert!(pool.lock().idle.is_empty());
        assert_eq!(pool.lock().pid, child);
        // A connection taken before the fork and given back after it is forgotten too.
        pool.give(Connection::open_in_memory().unwrap(), me);
        assert!(pool.lock().idle.is_empty());
        // Closing the idle connections, in the process that opened them and in another.
        let pool = Pool::new();
        pool.give(Connection::open_in_memory().unwrap(), me);
        pool.close_idle();
        assert!(pool.lock().idle.is_empty());
        pool.give(Connection::open_in_memory().unwrap(), me);
        pool.lock().pid = child;
        pool.close_idle();
        assert!(pool.lock().idle.is_empty());
    }
}
