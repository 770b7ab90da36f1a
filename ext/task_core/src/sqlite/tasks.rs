//! Writing tasks: one, with a time to live, many; deleting them; purging expired ones.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::{params, Connection, Transaction};

use super::conn::{Done, Failure};
use super::wait;
use super::{micros, micros_now, SqliteStore};
use crate::error::Result;
use crate::expiry::check_ttl;
use crate::record::{check_list, shown, TaskKey, TaskRecord};

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

fn saving(r: &TaskRecord) -> String {
    format!(
        "saving task {} in list {}",
        shown(&r.id),
        shown(&r.task_list)
    )
}

pub(super) fn of_key(verb: &str, key: &TaskKey) -> String {
    format!(
        "{verb} task {} in list {}",
        shown(&key.id),
        shown(&key.task_list)
    )
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
                let done = if wait::interrupted() {
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
}

fn delete_in(tx: &Transaction<'_>, key: &TaskKey) -> Done<()> {
    tx.prepare_cached("DELETE FROM tasks WHERE task_list = ?1 AND id = ?2")?
        .execute(params![key.task_list, key.id])?;
    tx.prepare_cached("DELETE FROM claims WHERE task_list = ?1 AND id = ?2")?
        .execute(params![key.task_list, key.id])?;
    Ok(())
}
