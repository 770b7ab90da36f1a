//! Tasks: writes (one, with a time to live, many), reads, deletes, scans, counts and list names.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::conn::{self, Done, Failure};
use super::{micros, micros_now, SqliteCursor, SqliteStore};
use crate::error::{Error, Result};
use crate::expiry::check_ttl;
use crate::record::{check_list, shown, TaskKey, TaskRecord};
use crate::Page;

/// Rows written per transaction by `put_many`: large enough that a bulk write costs few
/// syncs, small enough that other writers wait little for the lock.
pub const BULK_CHUNK: usize = 1000;

/// One write in this many also purges expired rows (at most `PURGE_ROWS` of them).
const PURGE_EVERY: u32 = 64;
const PURGE_ROWS: u32 = 500;

const UPSERT: &str = "INSERT INTO tasks (task_list, id, type, data, saved_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (task_list, id, type) DO UPDATE SET \
     data = excluded.data, saved_at = excluded.saved_at, expires_at = excluded.expires_at";

const PURGE: &str = "DELETE FROM tasks WHERE (task_list, id, type) IN \
     (SELECT task_list, id, type FROM tasks WHERE expires_at <= ?1 LIMIT ?2) \
     RETURNING task_list, id";
/// The claim of a task purged, unless another type is still stored under its id.
const PURGE_CLAIM: &str = "DELETE FROM claims WHERE task_list = ?1 AND id = ?2 \
     AND NOT EXISTS (SELECT 1 FROM tasks WHERE task_list = ?1 AND id = ?2)";

/// The condition that hides expired rows (`?` numbered by the caller).
macro_rules! live {
    ($n:literal) => {
        concat!("(expires_at IS NULL OR expires_at > ?", $n, ")")
    };
}

const FIND: &str = concat!(
    "SELECT type, data, saved_at FROM tasks WHERE task_list = ?1 AND id = ?2 AND ",
    live!(3),
    " ORDER BY type LIMIT 1"
);

const PAGE_FROM_START: &str = concat!(
    "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " ORDER BY id, type LIMIT ?3"
);
const PAGE_AFTER_ID: &str = concat!(
    "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " AND id > ?4 ORDER BY id, type LIMIT ?3"
);
const PAGE_AFTER: &str = concat!(
    "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " AND (id, type) > (?4, ?5) ORDER BY id, type LIMIT ?3"
);

const COUNT: &str = concat!(
    "SELECT count(*) FROM tasks WHERE task_list = ?1 AND ",
    live!(2)
);

const NEXT_LIST: &str = "SELECT task_list FROM tasks WHERE task_list > ?1 \
     ORDER BY task_list LIMIT 1";
const LIST_LIVE: &str = concat!(
    "SELECT 1 FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " LIMIT 1"
);

fn saving(r: &TaskRecord) -> String {
    format!(
        "saving task {} in list {}",
        shown(&r.id),
        shown(&r.task_list)
    )
}

fn of_key(verb: &str, key: &TaskKey) -> String {
    format!(
        "{verb} task {} in list {}",
        shown(&key.id),
        shown(&key.task_list)
    )
}

/// A text column read back (`data` of another tool may be a number or a blob: given as its
/// text, for the reader's bad-row handling; text that is not UTF-8 is bad data).
fn text(row: &Row<'_>, i: usize, list: &str, what: &str) -> Done<Option<String>> {
    let bad = |detail: &str| {
        Failure::Task(Error::BadData(format!(
            "a row of task list {} has {what} {detail}",
            shown(list)
        )))
    };
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => {
            Some(String::from_utf8(b.to_vec()).map_err(|_| bad("that is not UTF-8 text"))?)
        }
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

fn key_text(row: &Row<'_>, i: usize, list: &str, what: &str) -> Done<String> {
    text(row, i, list, what)?.ok_or_else(|| {
        Failure::Task(Error::BadData(format!(
            "a row of task list {} has a null {what}",
            shown(list)
        )))
    })
}

impl SqliteStore {
    fn expires_at(&self, now: i64, ttl: Option<Duration>) -> Option<i64> {
        ttl.or(self.config.default_ttl)
            .map(|t| now.saturating_add(micros(t)))
    }

    /// Writes one row, and now and then purges expired rows.
    fn write_row(
        &self,
        tx: &Transaction<'_>,
        r: &TaskRecord,
        now: i64,
        expires: Option<i64>,
    ) -> Done<()> {
        let saved_at = r.data.as_ref().map(|_| now);
        tx.prepare_cached(UPSERT)?.execute(params![
            r.task_list,
            r.id,
            r.type_name,
            r.data,
            saved_at,
            expires
        ])?;
        Ok(())
    }

    fn maybe_purge(&self, tx: &Transaction<'_>, now: i64) -> Done<()> {
        if self
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            let gone = tx
                .prepare_cached(PURGE)?
                .query_map(params![now, PURGE_ROWS], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut forget = tx.prepare_cached(PURGE_CLAIM)?;
            for (list, id) in gone {
                forget.execute(params![list, id])?;
            }
        }
        Ok(())
    }

    /// Upserts one row, with the default time to live. The record is written as given:
    /// callers check it first (`TaskRecord::validate`, or `store`).
    pub fn put(&self, record: &TaskRecord) -> Result<()> {
        self.put_ttl(record, None)
    }

    /// Upserts one row that expires after `ttl` (None: the default time to live).
    pub fn put_ttl(&self, record: &TaskRecord, ttl: Option<Duration>) -> Result<()> {
        if let Some(t) = ttl {
            check_ttl("ttl", t)?;
        }
        self.write_tx(
            || saving(record),
            |tx| {
                let now = micros_now();
                self.write_row(tx, record, now, self.expires_at(now, ttl))?;
                self.maybe_purge(tx, now)
            },
        )
    }

    /// Checks the record, then upserts it.
    pub fn store(&self, record: &TaskRecord) -> Result<()> {
        record.validate()?;
        self.put(record)
    }

    /// Writes the row as given, checking only its key columns (migrations, repair, tests).
    pub fn store_raw(&self, record: &TaskRecord) -> Result<()> {
        record.validate_columns()?;
        self.put(record)
    }

    /// Upserts every record (already checked), `BULK_CHUNK` to a transaction; one result
    /// per record, in order. A chunk that fails (a lock wait past the deadline, an
    /// interrupt) is not applied; the chunks after it are not tried and fail the same way.
    pub fn put_many(&self, records: &[TaskRecord]) -> Vec<Result<()>> {
        let mut out: Vec<Result<()>> = Vec::with_capacity(records.len());
        let first = || match records.first() {
            Some(r) => format!(
                "saving {} tasks (from {} in list {})",
                records.len(),
                shown(&r.id),
                shown(&r.task_list)
            ),
            None => "saving no tasks".to_string(),
        };
        let all = self.with_conn(first, |c: &mut Connection| {
            let expires = self.expires_at(micros_now(), None);
            for chunk in records.chunks(BULK_CHUNK) {
                let done = if conn::interrupted() {
                    Err(Failure::Interrupted)
                } else {
                    self.tx_on(c, |tx| {
                        let now = micros_now();
                        for r in chunk {
                            self.write_row(tx, r, now, expires)?;
                        }
                        self.maybe_purge(tx, now)
                    })
                };
                match done {
                    Ok(()) => out.extend(chunk.iter().map(|_| Ok(()))),
                    Err(f) => {
                        let e = self.error(f, || {
                            format!(
                                "saving {} tasks (from {} in list {})",
                                chunk.len(),
                                shown(&chunk[0].id),
                                shown(&chunk[0].task_list)
                            )
                        });
                        let left = records.len() - out.len();
                        out.extend(std::iter::repeat_n(e, left).map(Err));
                        break;
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = all {
            // No connection could be had: nothing was written.
            out.clear();
            out.extend(std::iter::repeat_n(e, records.len()).map(Err));
        }
        out
    }

    /// The first live row under (list, id) in type order, or `None`.
    pub fn find(&self, key: &TaskKey) -> Result<Option<TaskRecord>> {
        self.with_conn(
            || of_key("reading", key),
            |c| {
                let mut stmt = c.prepare_cached(FIND)?;
                let mut rows = stmt.query(params![key.task_list, key.id, micros_now()])?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                Ok(Some(TaskRecord {
                    task_list: key.task_list.clone(),
                    id: key.id.clone(),
                    type_name: key_text(row, 0, &key.task_list, "type")?,
                    data: text(row, 1, &key.task_list, "data")?,
                    saved_at: row.get(2)?,
                }))
            },
        )
    }

    /// Deletes every type under (list, id), and its claim; deleting what is not there is fine.
    pub fn delete(&self, key: &TaskKey) -> Result<()> {
        self.write_tx(|| of_key("deleting", key), |tx| delete_in(tx, key))
    }

    /// Deletes each key, in one transaction; one result per key, in order.
    pub fn delete_many(&self, keys: &[TaskKey]) -> Vec<Result<()>> {
        let done = self.write_tx(
            || format!("deleting {} tasks", keys.len()),
            |tx| {
                for k in keys {
                    delete_in(tx, k)?;
                }
                Ok(())
            },
        );
        match done {
            Ok(()) => keys.iter().map(|_| Ok(())).collect(),
            Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Deletes a whole task list and its claims.
    pub fn delete_list(&self, task_list: &str) -> Result<()> {
        check_list(task_list)?;
        self.write_tx(
            || format!("deleting task list {}", shown(task_list)),
            |tx| {
                tx.prepare_cached("DELETE FROM tasks WHERE task_list = ?1")?
                    .execute([task_list])?;
                tx.prepare_cached("DELETE FROM claims WHERE task_list = ?1")?
                    .execute([task_list])?;
                Ok(())
            },
        )
    }

    /// One page (`page_size` rows) of the list in (id, type) order, after `after`.
    pub fn page(
        &self,
        task_list: &str,
        after: Option<&SqliteCursor>,
    ) -> Result<Page<SqliteCursor>> {
        check_list(task_list)?;
        let limit = self.config.page_size;
        self.with_conn(
            || format!("reading task list {}", shown(task_list)),
            |c| {
                let now = micros_now();
                let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
                let (mut stmt, mut rows);
                match after {
                    None => {
                        stmt = c.prepare_cached(PAGE_FROM_START)?;
                        rows = stmt.query(params![task_list, now, fetch])?;
                    }
                    Some(SqliteCursor::AfterId(id)) => {
                        stmt = c.prepare_cached(PAGE_AFTER_ID)?;
                        rows = stmt.query(params![task_list, now, fetch, id])?;
                    }
                    Some(SqliteCursor::After(id, ty)) => {
                        stmt = c.prepare_cached(PAGE_AFTER)?;
                        rows = stmt.query(params![task_list, now, fetch, id, ty])?;
                    }
                }
                let mut records = Vec::new();
                let mut more = false;
                while let Some(row) = rows.next()? {
                    if records.len() == limit {
                        more = true;
                        break;
                    }
                    records.push(TaskRecord {
                        task_list: task_list.to_string(),
                        id: key_text(row, 0, task_list, "id")?,
                        type_name: key_text(row, 1, task_list, "type")?,
                        data: text(row, 2, task_list, "data")?,
                        saved_at: row.get(3)?,
                    });
                }
                let next = if more {
                    records
                        .last()
                        .map(|r| SqliteCursor::After(r.id.clone(), r.type_name.clone()))
                } else {
                    None
                };
                Ok(Page { records, next })
            },
        )
    }

    /// How many live rows the list holds.
    pub fn count(&self, task_list: &str) -> Result<u64> {
        check_list(task_list)?;
        self.with_conn(
            || format!("counting task list {}", shown(task_list)),
            |c| {
                let n: i64 = c
                    .prepare_cached(COUNT)?
                    .query_row(params![task_list, micros_now()], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            },
        )
    }

    /// Up to `page_size` names of lists that hold live rows, after `after`, in name order,
    /// and the name to continue after when more follow.
    pub fn lists_page(&self, after: Option<&str>) -> Result<(Vec<String>, Option<String>)> {
        let limit = self.config.page_size;
        self.with_conn(
            || "listing the task lists".to_string(),
            |c| {
                // One read transaction: one snapshot for the whole page.
                let tx = c.transaction()?;
                let now = micros_now();
                let mut names = Vec::new();
                let mut from = after.unwrap_or("").to_string();
                let mut more = false;
                {
                    let mut next = tx.prepare_cached(NEXT_LIST)?;
                    let mut live = tx.prepare_cached(LIST_LIVE)?;
                    while let Some(name) = next
                        .query_row([&from], |r| r.get::<_, String>(0))
                        .optional()?
                    {
                        if live.exists(params![name, now])? {
                            if names.len() == limit {
                                more = true;
                                break;
                            }
                            names.push(name.clone());
                        }
                        from = name;
                    }
                }
                tx.commit()?;
                let next = if more { names.last().cloned() } else { None };
                Ok((names, next))
            },
        )
    }
}

fn delete_in(tx: &Transaction<'_>, key: &TaskKey) -> Done<()> {
    tx.prepare_cached("DELETE FROM tasks WHERE task_list = ?1 AND id = ?2")?
        .execute(params![key.task_list, key.id])?;
    tx.prepare_cached("DELETE FROM claims WHERE task_list = ?1 AND id = ?2")?
        .execute(params![key.task_list, key.id])?;
    Ok(())
}
