//! Claims: each decided and written in one `BEGIN IMMEDIATE` transaction, so that two
//! processes claiming one task at once cannot both win. Lease ends are wall-clock times
//! (Unix microseconds), which every process on the host reads alike.

use std::time::Instant;

use rusqlite::{params, OptionalExtension, Row};

use super::conn::Done;
use super::{lease_until, micros_now, SqliteStore};
use crate::claims::{ClaimBatch, ClaimInfo, ClaimOutcome, ClaimTerms};
use crate::error::Result;
use crate::expiry::{check_lease, lease_covers};
use crate::record::{check_list, shown, TaskKey};

const TASK_LIVE: &str = "SELECT 1 FROM tasks WHERE task_list = ?1 AND id = ?2 \
     AND (expires_at IS NULL OR expires_at > ?3) LIMIT 1";
const READ: &str = "SELECT owner, owner_until, attempts FROM claims \
     WHERE task_list = ?1 AND id = ?2";
const FORGET: &str = "DELETE FROM claims WHERE task_list = ?1 AND id = ?2";
const TAKE: &str = "INSERT INTO claims (task_list, id, owner, owner_until, attempts) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (task_list, id) DO UPDATE SET \
     owner = excluded.owner, owner_until = excluded.owner_until, attempts = excluded.attempts";
const EXTEND: &str = "UPDATE claims SET owner_until = ?4 \
     WHERE task_list = ?1 AND id = ?2 AND owner = ?3 AND owner_until > ?5";
const RELEASE: &str = "UPDATE claims SET owner = NULL, owner_until = NULL, \
     last_error = coalesce(?4, last_error) \
     WHERE task_list = ?1 AND id = ?2 AND owner = ?3 AND owner_until > ?5";
const GIVE_BACK: &str = "UPDATE claims SET owner = NULL, owner_until = NULL, \
     attempts = CASE WHEN attempts = ?5 THEN max(attempts - 1, 0) ELSE attempts END \
     WHERE task_list = ?1 AND id = ?2 AND owner = ?3 AND owner_until > ?4";
const RETRY: &str = "UPDATE claims SET attempts = 0, last_error = NULL \
     WHERE task_list = ?1 AND id = ?2";
const INFO_LIST: &str = "SELECT id, owner, owner_until, attempts, last_error FROM claims \
     WHERE task_list = ?1 ORDER BY id";
const INFO_ONE: &str = "SELECT id, owner, owner_until, attempts, last_error FROM claims \
     WHERE task_list = ?1 AND id = ?2";

fn what(verb: &str, key: &TaskKey) -> String {
    format!(
        "{verb} task {} in list {}",
        shown(&key.id),
        shown(&key.task_list)
    )
}

/// Attempts as stored (an INTEGER column) as a count.
fn attempts(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn info(row: &Row<'_>, now: i64) -> rusqlite::Result<ClaimInfo> {
    let owner: Option<String> = row.get(1)?;
    let until: Option<i64> = row.get(2)?;
    let live = until.filter(|u| *u > now);
    Ok(ClaimInfo {
        id: row.get(0)?,
        owner: owner.filter(|_| live.is_some()),
        attempts: attempts(row.get(3)?),
        last_error: row.get(4)?,
        expires_in: live.map(|u| {
            let secs = (u - now + 999_999) / 1_000_000;
            u32::try_from(secs).unwrap_or(u32::MAX)
        }),
    })
}

impl SqliteStore {
    /// Claims a task for `terms.owner` for `terms.lease`: won (counting an attempt), held by
    /// another owner, dead (attempts used up), or gone (not stored; its claim row is
    /// removed). A live claim the same owner holds is extended and counts no attempt.
    ///
    /// A claim won keeps others out for at least `terms.lease` from the moment this returns
    /// (renewed at once if the call took so long that it would not), and lapses by itself
    /// within `⌈lease⌉ + 2` seconds of it (see `expiry`).
    pub fn claim(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<ClaimOutcome> {
        check_lease(terms.lease)?;
        let mut began = Instant::now();
        let out = self.write_tx(
            || what("claiming", key),
            |tx| {
                began = Instant::now();
                self.claim_in(tx, key, terms)
            },
        )?;
        if matches!(out, ClaimOutcome::Won { .. })
            && !lease_covers(terms.lease, began.elapsed())
            && !self.renew(key, terms)?
        {
            return Ok(ClaimOutcome::Held);
        }
        Ok(out)
    }

    /// Claims some tasks of one list in one `BEGIN IMMEDIATE` transaction: one outcome per
    /// id, in order (see `claim`; a claim that took long is not renewed here: see
    /// `Store::claim_many`).
    pub fn claim_many(
        &self,
        task_list: &str,
        ids: &[String],
        terms: &ClaimTerms,
    ) -> Result<ClaimBatch> {
        check_lease(terms.lease)?;
        let outcomes = self.write_tx(
            || format!("claiming {} tasks of list {}", ids.len(), shown(task_list)),
            |tx| {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let key = TaskKey {
                        task_list: task_list.to_string(),
                        id: id.clone(),
                    };
                    out.push(self.claim_in(tx, &key, terms)?);
                }
                Ok(out)
            },
        )?;
        Ok(ClaimBatch {
            outcomes,
            collisions: 0,
            transactions: 1,
            settled: 0,
        })
    }

    /// Releases, in one transaction, the claims `owner` still holds among `held` (id, attempts
    /// it was won with), uncounting their attempts; how many were.
    pub fn give_back(&self, task_list: &str, held: &[(String, u32)], owner: &str) -> Result<u32> {
        self.write_tx(
            || {
                format!(
                    "giving back {} claims of list {}",
                    held.len(),
                    shown(task_list)
                )
            },
            |tx| {
                let now = micros_now();
                let mut n = 0;
                for (id, attempts) in held {
                    n += tx.prepare_cached(GIVE_BACK)?.execute(params![
                        task_list,
                        id,
                        owner,
                        now,
                        i64::from(*attempts)
                    ])?;
                }
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            },
        )
    }

    /// One claim, inside the caller's transaction.
    fn claim_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        key: &TaskKey,
        terms: &ClaimTerms,
    ) -> Done<ClaimOutcome> {
        let (list, id) = (&key.task_list, &key.id);
        let now = micros_now();
        if !tx
            .prepare_cached(TASK_LIVE)?
            .exists(params![list, id, now])?
        {
            tx.prepare_cached(FORGET)?.execute(params![list, id])?;
            return Ok(ClaimOutcome::Gone);
        }
        let seen: Option<(Option<String>, Option<i64>, i64)> = tx
            .prepare_cached(READ)?
            .query_row(params![list, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let (owner, until, count) = seen.unwrap_or((None, None, 0));
        let count = attempts(count);
        let lease_end = lease_until(now, terms.lease);
        let live_owner = owner.filter(|_| until.is_some_and(|u| u > now));
        match live_owner {
            Some(o) if o == terms.owner => {
                tx.prepare_cached(EXTEND)?.execute(params![
                    list,
                    id,
                    terms.owner,
                    lease_end,
                    now
                ])?;
                return Ok(ClaimOutcome::Won { attempts: count });
            }
            Some(_) => return Ok(ClaimOutcome::Held),
            None => {}
        }
        if self.config.max_attempts.is_some_and(|m| count >= m) {
            return Ok(ClaimOutcome::Dead { attempts: count });
        }
        let won = count.saturating_add(1);
        tx.prepare_cached(TAKE)?
            .execute(params![list, id, terms.owner, lease_end, won])?;
        Ok(ClaimOutcome::Won { attempts: won })
    }

    /// Extends the live claim `terms.owner` holds; false when it holds none.
    pub fn renew(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<bool> {
        check_lease(terms.lease)?;
        self.write_tx(
            || what("renewing the claim on", key),
            |tx| {
                let now = micros_now();
                let n = tx.prepare_cached(EXTEND)?.execute(params![
                    key.task_list,
                    key.id,
                    terms.owner,
                    lease_until(now, terms.lease),
                    now
                ])?;
                Ok(n == 1)
            },
        )
    }

    /// Ends the live claim `owner` holds, recording `error` ("Class: message") when given;
    /// false when it holds none.
    pub fn release(&self, key: &TaskKey, owner: &str, error: Option<&str>) -> Result<bool> {
        self.write_tx(
            || what("releasing the claim on", key),
            |tx| {
                let n = tx.prepare_cached(RELEASE)?.execute(params![
                    key.task_list,
                    key.id,
                    owner,
                    error,
                    micros_now()
                ])?;
                Ok(n == 1)
            },
        )
    }

    /// Makes a task claimable again: its attempts and last error cleared.
    pub fn retry(&self, key: &TaskKey) -> Result<()> {
        self.write_tx(
            || what("retrying", key),
            |tx| {
                tx.prepare_cached(RETRY)?
                    .execute(params![key.task_list, key.id])?;
                Ok(())
            },
        )
    }

    /// The claim state of one task (`None`: never claimed, or its claim row is gone).
    pub fn claim_info(&self, key: &TaskKey) -> Result<Option<ClaimInfo>> {
        self.with_conn(
            || what("reading the claim on", key),
            |c| -> Done<Option<ClaimInfo>> {
                let now = micros_now();
                Ok(c.prepare_cached(INFO_ONE)?
                    .query_row(params![key.task_list, key.id], |r| info(r, now))
                    .optional()?)
            },
        )
    }

    /// The claim states of a list's tasks, in id order.
    pub fn claim_infos(&self, task_list: &str) -> Result<Vec<ClaimInfo>> {
        check_list(task_list)?;
        self.with_conn(
            || format!("reading the claims of task list {}", shown(task_list)),
            |c| -> Done<Vec<ClaimInfo>> {
                let now = micros_now();
                let mut stmt = c.prepare_cached(INFO_LIST)?;
                let rows = stmt.query_map([task_list], |r| info(r, now))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            },
        )
    }
}
