//! raw-sqlite: what the gem's SQLite store does, with rusqlite and nothing else, so bin/bench
//! can print how close the binding comes. The store's schema, pragmas (WAL,
//! `synchronous = FULL`), busy handler, transactions (`BEGIN IMMEDIATE` for every write,
//! 1,000 rows to a transaction in a bulk write) and SQL text, copied from
//! ext/task_core/src/sqlite/ (schema.rs, tasks.rs, read.rs, claims.rs, conn.rs).
//!
//!   raw-sqlite <path> <workload> <n> [list]
//!
//! workloads: sequential (save, find, complete one task at a time), threads (n saves from 8
//! threads, a connection each), bulk (n saves, 1,000 to a transaction), load (the same into
//! `list`, kept, for scan and count), scan (page through `list`, 1,000 rows a page), count
//! (count `list`), delete (delete `list`), claim and claim8 (n stored tasks claimed and completed, by one thread or
//! 8). Prints one JSON line: {"ops":..,"seconds":..,"peak_rss_mb":..}.
//!
//! RAW_SYNCHRONOUS=NORMAL sets `synchronous = NORMAL` (the store's other setting).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

// ---- The store's SQL (ext/task_core/src/sqlite/), copied as it is there. ----

/// schema.rs, `CREATE`.
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
/// schema.rs, `APPLICATION_ID` and `SCHEMA_VERSION`: the file is one the gem accepts.
const APPLICATION_ID: i32 = 0x5441_534B;
const SCHEMA_VERSION: i32 = 1;

/// tasks.rs.
const UPSERT: &str = "INSERT INTO tasks (task_list, id, type, data, saved_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (task_list, id, type) DO UPDATE SET \
     data = excluded.data, saved_at = excluded.saved_at, expires_at = excluded.expires_at";
const PURGE: &str = "DELETE FROM tasks WHERE (task_list, id, type) IN \
     (SELECT task_list, id, type FROM tasks WHERE expires_at <= ?1 LIMIT ?2) \
     RETURNING task_list, id";
const PURGE_CLAIM: &str = "DELETE FROM claims WHERE task_list = ?1 AND id = ?2 \
     AND NOT EXISTS (SELECT 1 FROM tasks WHERE task_list = ?1 AND id = ?2)";
const DELETE_TASK: &str = "DELETE FROM tasks WHERE task_list = ?1 AND id = ?2";
const DELETE_CLAIM: &str = "DELETE FROM claims WHERE task_list = ?1 AND id = ?2";
const DELETE_LIST: &str = "DELETE FROM tasks WHERE task_list = ?1";
const DELETE_LIST_CLAIMS: &str = "DELETE FROM claims WHERE task_list = ?1";
const BULK_CHUNK: usize = 1000;
const PURGE_EVERY: u32 = 64;
const PURGE_ROWS: u32 = 500;

/// read.rs (its `live!` condition written out).
const FIND: &str = "SELECT type, data, saved_at FROM tasks WHERE task_list = ?1 AND id = ?2 AND \
     (expires_at IS NULL OR expires_at > ?3) ORDER BY type LIMIT 1";
const PAGE_FROM_START: &str = "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 \
     AND (expires_at IS NULL OR expires_at > ?2) ORDER BY id, type LIMIT ?3";
const PAGE_AFTER: &str = "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 \
     AND (expires_at IS NULL OR expires_at > ?2) AND (id, type) > (?4, ?5) \
     ORDER BY id, type LIMIT ?3";
const COUNT: &str = "SELECT count(*) FROM tasks WHERE task_list = ?1 AND \
     (expires_at IS NULL OR expires_at > ?2)";
/// memory.rs, `DEFAULT_PAGE_SIZE`: the store's page.
const PAGE_SIZE: usize = 1000;

/// claims.rs.
const TASK_LIVE: &str = "SELECT 1 FROM tasks WHERE task_list = ?1 AND id = ?2 \
     AND (expires_at IS NULL OR expires_at > ?3) LIMIT 1";
const READ: &str = "SELECT owner, owner_until, attempts FROM claims \
     WHERE task_list = ?1 AND id = ?2";
const TAKE: &str = "INSERT INTO claims (task_list, id, owner, owner_until, attempts) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (task_list, id) DO UPDATE SET \
     owner = excluded.owner, owner_until = excluded.owner_until, attempts = excluded.attempts";
const MAX_ATTEMPTS: i64 = 25;

/// The store's `retry_deadline` default.
const RETRY_DEADLINE: Duration = Duration::from_secs(5);

/// Writes so far, for the store's "one write in 64 also purges".
static WRITES: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// wait.rs, `busy`: waits a few milliseconds at a time, up to the deadline.
fn busy(tries: i32) -> bool {
    let Some(deadline) = DEADLINE.with(Cell::get) else {
        return false;
    };
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    let step = match tries {
        0..=3 => 1,
        4..=15 => 2,
        _ => 5,
    };
    std::thread::sleep(Duration::from_millis(step).min(deadline - now));
    true
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// conn.rs, `open`: flags, busy handler, statement cache, schema, WAL, synchronous.
fn open(path: &str) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).expect("open");
    conn.busy_handler(Some(busy)).expect("busy handler");
    conn.set_prepared_statement_cache_capacity(32);
    let (app, _version, objects): (i32, i32, i64) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id()), \
                    (SELECT user_version FROM pragma_user_version()), \
                    (SELECT count(*) FROM sqlite_master)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("identity");
    if app != APPLICATION_ID {
        assert_eq!(objects, 0, "{path} is not a task database");
        let _d = deadline();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        tx.execute_batch(CREATE).expect("schema");
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .expect("mark");
        tx.commit().expect("commit");
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode {mode}");
    let sync = match std::env::var("RAW_SYNCHRONOUS").as_deref() {
        Ok("NORMAL") => "NORMAL",
        _ => "FULL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
        .expect("synchronous");
    conn
}

/// Sets the lock-wait deadline of this thread's next call, as the store does per call.
struct Deadline(Option<Instant>);

fn deadline() -> Deadline {
    let until = Instant::now().checked_add(RETRY_DEADLINE);
    Deadline(DEADLINE.with(|d| d.replace(until)))
}

impl Drop for Deadline {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.0));
    }
}

/// `f` in one `BEGIN IMMEDIATE` transaction, committed.
fn write_tx<R>(conn: &mut Connection, f: impl FnOnce(&rusqlite::Transaction<'_>) -> R) -> R {
    let _d = deadline();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin immediate");
    let out = f(&tx);
    tx.commit().expect("commit");
    out
}

/// tasks.rs, `maybe_purge`.
fn maybe_purge(tx: &rusqlite::Transaction<'_>, now: i64) {
    if WRITES
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(PURGE_EVERY)
    {
        let gone = tx
            .prepare_cached(PURGE)
            .expect("purge")
            .query_map(params![now, PURGE_ROWS], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .expect("purge")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("purge");
        let mut forget = tx.prepare_cached(PURGE_CLAIM).expect("purge claim");
        for (list, id) in gone {
            forget.execute(params![list, id]).expect("purge claim");
        }
    }
}

fn data(i: usize) -> String {
    format!("{{\"n\":{i},\"s\":\"payload {i}\"}}")
}

/// tasks.rs, `put`: one row in one transaction.
fn put(conn: &mut Connection, list: &str, id: &str, data: &str) {
    write_tx(conn, |tx| {
        let now = micros_now();
        tx.prepare_cached(UPSERT)
            .expect("upsert")
            .execute(params![list, id, "BenchTask", data, now, None::<i64>])
            .expect("upsert");
        maybe_purge(tx, now);
    });
}

/// tasks.rs, `put_many`: `BULK_CHUNK` rows to a transaction.
fn put_many(conn: &mut Connection, list: &str, n: usize) {
    let mut i = 0;
    while i < n {
        let end = (i + BULK_CHUNK).min(n);
        write_tx(conn, |tx| {
            let now = micros_now();
            let mut upsert = tx.prepare_cached(UPSERT).expect("upsert");
            for j in i..end {
                upsert
                    .execute(params![
                        list,
                        format!("{j:07}"),
                        "BenchTask",
                        data(j),
                        now,
                        None::<i64>
                    ])
                    .expect("upsert");
            }
            drop(upsert);
            maybe_purge(tx, now);
        });
        i = end;
    }
}

/// read.rs, `find`: the row's type, data and saved_at, decoded.
fn find(conn: &Connection, list: &str, id: &str) -> Option<(String, Option<String>, i64)> {
    let _d = deadline();
    conn.prepare_cached(FIND)
        .expect("find")
        .query_row(params![list, id, micros_now()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .expect("find")
}

/// tasks.rs, `delete`: the task and its claim, in one transaction.
fn delete(conn: &mut Connection, list: &str, id: &str) {
    write_tx(conn, |tx| {
        tx.prepare_cached(DELETE_TASK)
            .expect("delete")
            .execute(params![list, id])
            .expect("delete");
        tx.prepare_cached(DELETE_CLAIM)
            .expect("delete claim")
            .execute(params![list, id])
            .expect("delete claim");
    });
}

/// claims.rs, `claim`, for a task nobody holds: is it live, its claim row, the claim
/// written; one transaction. True when won.
fn claim(conn: &mut Connection, list: &str, id: &str, owner: &str) -> bool {
    write_tx(conn, |tx| {
        let now = micros_now();
        if !tx
            .prepare_cached(TASK_LIVE)
            .expect("live")
            .exists(params![list, id, now])
            .expect("live")
        {
            return false;
        }
        let seen: Option<(Option<String>, Option<i64>, i64)> = tx
            .prepare_cached(READ)
            .expect("read")
            .query_row(params![list, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .expect("read");
        let (owner_seen, until, count) = seen.unwrap_or((None, None, 0));
        if owner_seen.is_some() && until.is_some_and(|u| u > now) {
            return false;
        }
        if count >= MAX_ATTEMPTS {
            return false;
        }
        // The store's lease end (lease_until): from the start of this second, the lease
        // rounded up + LEASE_EXTRA_SECS (2).
        let lease_end = (now - now.rem_euclid(1_000_000)) + 62 * 1_000_000;
        tx.prepare_cached(TAKE)
            .expect("take")
            .execute(params![list, id, owner, lease_end, count + 1])
            .expect("take");
        true
    })
}

/// read.rs, `page`: `PAGE_SIZE` rows (one more fetched to know whether more follow),
/// decoded; the sum over the pages.
fn scan(conn: &Connection, list: &str) -> usize {
    let _d = deadline();
    let mut after: Option<(String, String)> = None;
    let mut total = 0;
    loop {
        let now = micros_now();
        let fetch = PAGE_SIZE as i64 + 1;
        let mut stmt;
        let mut rows = match &after {
            None => {
                stmt = conn.prepare_cached(PAGE_FROM_START).expect("page");
                stmt.query(params![list, now, fetch]).expect("page")
            }
            Some((id, ty)) => {
                stmt = conn.prepare_cached(PAGE_AFTER).expect("page");
                stmt.query(params![list, now, fetch, id, ty]).expect("page")
            }
        };
        let mut records: Vec<(String, String, Option<String>, Option<i64>)> = Vec::new();
        let mut more = false;
        while let Some(row) = rows.next().expect("row") {
            if records.len() == PAGE_SIZE {
                more = true;
                break;
            }
            records.push((
                row.get(0).expect("id"),
                row.get(1).expect("type"),
                row.get(2).expect("data"),
                row.get(3).expect("saved_at"),
            ));
        }
        total += records.len();
        after = if more {
            records.last().map(|r| (r.0.clone(), r.1.clone()))
        } else {
            None
        };
        std::hint::black_box(&records);
        if after.is_none() {
            return total;
        }
    }
}

fn count(conn: &Connection, list: &str) -> usize {
    let _d = deadline();
    let n: i64 = conn
        .prepare_cached(COUNT)
        .expect("count")
        .query_row(params![list, micros_now()], |r| r.get(0))
        .expect("count");
    usize::try_from(n).expect("a count")
}

fn delete_list(conn: &mut Connection, list: &str) {
    write_tx(conn, |tx| {
        tx.execute(DELETE_LIST, [list]).expect("delete list");
        tx.execute(DELETE_LIST_CLAIMS, [list])
            .expect("delete list claims");
    });
}

/// This process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `callers` threads, a connection each, claiming and completing every `callers`-th task.
fn claims(path: &str, list: &str, n: usize, callers: usize) {
    std::thread::scope(|s| {
        for c in 0..callers {
            s.spawn(move || {
                let mut conn = open(path);
                let owner = format!("raw-sqlite:{}:{c}", std::process::id());
                for i in (c..n).step_by(callers) {
                    let id = format!("{i:07}");
                    assert!(claim(&mut conn, list, &id, &owner), "claim of {id} refused");
                    delete(&mut conn, list, &id);
                }
            });
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: raw-sqlite <path> <sequential|threads|bulk|load|scan|count|delete|claim|claim8> <n> [list]"
        );
        std::process::exit(2);
    }
    let (path, workload) = (args[1].as_str(), args[2].as_str());
    let n: usize = args[3].parse().expect("n");
    let list = args
        .get(4)
        .cloned()
        .unwrap_or_else(|| format!("raw-{workload}-{}", std::process::id()));
    let mut conn = open(path);

    let mut started = Instant::now();
    let ops = match workload {
        "sequential" => {
            for i in 0..n {
                let id = format!("{i:07}");
                put(&mut conn, &list, &id, &data(i));
                std::hint::black_box(find(&conn, &list, &id).expect("found"));
                delete(&mut conn, &list, &id);
            }
            n
        }
        "threads" => {
            let per = n / 8;
            std::thread::scope(|s| {
                for c in 0..8 {
                    let list = &list;
                    s.spawn(move || {
                        let mut conn = open(path);
                        for i in 0..per {
                            put(&mut conn, list, &format!("{c}-{i:07}"), &data(i));
                        }
                    });
                }
            });
            per * 8
        }
        "bulk" | "load" => {
            put_many(&mut conn, &list, n);
            n
        }
        "claim" | "claim8" => {
            put_many(&mut conn, &list, n);
            started = Instant::now();
            claims(path, &list, n, if workload == "claim8" { 8 } else { 1 });
            n
        }
        "scan" => scan(&conn, &list),
        "count" => count(&conn, &list),
        "delete" => {
            delete_list(&mut conn, &list);
            0
        }
        other => {
            eprintln!("unknown workload {other}");
            std::process::exit(2);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !matches!(workload, "load" | "scan" | "count" | "delete") {
        delete_list(&mut conn, &list);
    }
    println!(
        "{{\"ops\":{ops},\"seconds\":{seconds},\"peak_rss_mb\":{:.1}}}",
        peak_rss_mb()
    );
}
