//! Claims on Cassandra: a table of their own beside the task table (whose bytes stay task_rb's),
//! changed only by lightweight transactions at SERIAL or LOCAL_SERIAL. A claim's owner is
//! written with a TTL, so it lapses by the server's clock; attempts and the last error are
//! written without one.
//!
//! Every write to a claim row, deletions included, is a transaction. A transaction's write
//! carries its ballot's timestamp, which can be later than the timestamp of a plain write
//! sent after it (the ballot is taken when the transaction starts, and moves forward under
//! contention): a plain delete sent after a claim's answer could be older than the claim and
//! leave it standing, with the task gone. Among transactions on a partition, a later one
//! always carries a later timestamp, so a transactional delete removes whatever claim was
//! written before it. Deleting a whole list's claims is a plain partition deletion (a
//! transaction cannot delete a partition) followed by a serial read of what outlived it,
//! deleted by transactions.
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS <keyspace>.<table>_claims (
//!   task_list text, id text,
//!   owner text,        -- the holder of a live claim; written USING TTL <lease>
//!   attempts int,      -- claims won so far
//!   last_error text,   -- "Class: message" of the last recorded failure
//!   PRIMARY KEY ((task_list), id));
//! ```

use std::time::Instant;

use scylla::client::session::Session;
use scylla::response::query_result::QueryResult;
use scylla::response::PagingState;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};
use tokio::sync::OnceCell;

use super::errors::{execution_error, prepare_error};
use super::{CassandraConfig, CassandraStore, Deadline, Serial};
use crate::claims::{ClaimInfo, ClaimOutcome, ClaimTerms};
use crate::error::{Error, Result};
use crate::expiry::{lease_covers, lease_ttl_secs};
use crate::record::TaskKey;
use crate::schema::DEFAULT_GC_GRACE_SECONDS;

/// How many times a claim is tried again after losing a race or an unknown outcome (a
/// serial read settles what happened before each new try).
const CLAIM_ROUNDS: usize = 8;

/// How many times a renewal is made in all when each answer comes too late for the lease to
/// last from it (see `expiry::lease_covers`).
const RENEW_ROUNDS: usize = 3;

/// An attempts count no claim row holds: `IF attempts != NO_ATTEMPTS` always holds, on a row
/// that exists or not.
const NO_ATTEMPTS: i32 = -1;

/// How long deletions take the claims table for missing once they found it so.
const ABSENT_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) type ClaimStatements = OnceCell<Stmts>;

pub(super) struct Stmts {
    /// `claim_many`'s statements (see `claim_many.rs`): a first claim's row and owner, a
    /// later claim's owner and attempts, the claim rows and task rows of some ids, and a
    /// claim given back.
    pub(super) first_insert: PreparedStatement,
    pub(super) take: PreparedStatement,
    pub(super) next_if: PreparedStatement,
    pub(super) set_attempts: PreparedStatement,
    pub(super) read_many: PreparedStatement,
    pub(super) read_many_serial: PreparedStatement,
    pub(super) stored: PreparedStatement,
    pub(super) give_back: PreparedStatement,
    read: PreparedStatement,
    read_serial: PreparedStatement,
    list: PreparedStatement,
    /// The first claim of a task: the row is made with its attempt and its owner.
    first: Batch,
    /// A later claim: no live owner and the attempts read, else nothing.
    next: Batch,
    pub(super) renew: PreparedStatement,
    release: PreparedStatement,
    fail: PreparedStatement,
    retry: PreparedStatement,
    /// One task's claim state, by itself.
    one: PreparedStatement,
    /// A claim row deleted by a transaction, if it exists (nothing is written otherwise).
    delete: PreparedStatement,
    /// A claim row deleted by a transaction whatever it holds (its condition always holds, so
    /// that many of one list go in one conditional batch, which applies only if all of its
    /// conditions do). Only for rows a serial read has just seen.
    pub(super) delete_seen: PreparedStatement,
    /// A claim row deleted by a transaction while it holds the attempts it was won with (a
    /// claim counted since is another worker's, and stays).
    pub(super) forget_won: PreparedStatement,
    /// Which of some ids of a list have claim rows (sent at SERIAL).
    which_serial: PreparedStatement,
    /// Every claim row of a list (sent at SERIAL).
    all_serial: PreparedStatement,
    delete_list: PreparedStatement,
}

pub(super) fn create_table_cql(config: &CassandraConfig, gc_grace_seconds: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (task_list text, id text, owner text, attempts int, \
         last_error text, PRIMARY KEY ((task_list), id)) WITH {}",
        config.qualified_claims_table(),
        crate::schema::churn_options(gc_grace_seconds)
    )
}

pub(super) fn serial(config: &CassandraConfig) -> SerialConsistency {
    match config.serial {
        Serial::Serial => SerialConsistency::Serial,
        Serial::LocalSerial => SerialConsistency::LocalSerial,
    }
}

/// `[applied]` of a lightweight transaction's answer.
pub(super) fn applied(res: QueryResult, what: &str) -> Result<bool> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::BadData(format!(
            "{what}: unexpected answer to a lightweight transaction: {e}"
        ))
    };
    let rows = res.into_rows_result().map_err(|e| bad(&e))?;
    let row: Row = rows.first_row().map_err(|e| bad(&e))?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(b))) => Ok(*b),
        other => Err(bad(&format!("{other:?}"))),
    }
}

/// True for the error of a statement on a table that does not exist.
fn missing_table(err: &Error) -> bool {
    matches!(err.kind(), Error::QueryRejected(m)
        if m.contains("does not exist") || m.contains("unconfigured table"))
}

/// A claim row as `claim_info` reads it: owner, attempts, last error, TTL of the owner.
type ClaimRow = (Option<String>, Option<i32>, Option<String>, Option<i32>);

fn info(
    id: String,
    owner: Option<String>,
    attempts: Option<i32>,
    last_error: Option<String>,
    ttl: Option<i32>,
) -> ClaimInfo {
    ClaimInfo {
        id,
        expires_in: owner.as_ref().and(ttl).map(|t| t.max(0) as u32),
        owner,
        attempts: attempts.unwrap_or(0).max(0) as u32,
        last_error,
    }
}

/// The ids of an answer whose rows are `(id)`.
fn ids_of(res: QueryResult, what: &str) -> Result<Vec<String>> {
    let bad = |e: &dyn std::fmt::Display| Error::BadData(format!("{what}: {e}"));
    let rows = res.into_rows_result().map_err(|e| bad(&e))?;
    let mut out = Vec::with_capacity(rows.rows_num());
    for row in rows.rows::<(String,)>().map_err(|e| bad(&e))? {
        out.push(row.map_err(|e| bad(&e))?.0);
    }
    Ok(out)
}

struct Seen {
    exists: bool,
    owner: Option<String>,
    attempts: u32,
}

impl CassandraStore {
    fn claims_table(&self) -> String {
        self.config.qualified_claims_table()
    }

    pub(super) async fn claim_statements(&self) -> Result<(&Session, &Stmts)> {
        let (session, _) = self.statements().await?;
        let c = self.claims_table();
        let stmts = self
            .claims
            .get_or_try_init(|| async {
                let prep = |cql: String, lwt: bool| async move {
                    let mut p = session.prepare(cql).await.map_err(|e| {
                        let err =
                            prepare_error(&self.op("preparing the claim statements", false), &e);
                        if missing_table(&err) {
                            err.with_message(format!(
                                "the claims table {} does not exist ({}); create it with \
                                 CassandraAdapter#create_claims_table (or create_schema)",
                                self.claims_table(),
                                err.message()
                            ))
                        } else {
                            err
                        }
                    })?;
                    p.set_request_timeout(Some(self.config.request_timeout));
                    if lwt {
                        p.set_consistency(self.config.consistency.0);
                        p.set_serial_consistency(Some(serial(&self.config)));
                        p.set_is_idempotent(false);
                    } else {
                        p.set_consistency(self.config.consistency.0);
                        p.set_is_idempotent(true);
                    }
                    Ok::<_, Error>(p)
                };
                let batch = |a: PreparedStatement, b: PreparedStatement| {
                    let mut batch = Batch::default();
                    batch.append_statement(a);
                    batch.append_statement(b);
                    batch.set_consistency(self.config.consistency.0);
                    batch.set_serial_consistency(Some(serial(&self.config)));
                    batch.set_request_timeout(Some(self.config.request_timeout));
                    batch.set_is_idempotent(false);
                    batch
                };
                let read_cql =
                    format!("SELECT owner, attempts FROM {c} WHERE task_list = ? AND id = ?");
                // A serial read sees every committed transaction and completes one left
                // half-done, so it settles a claim whose answer was lost; it costs a round
                // of Paxos, so a claim starts with a plain read.
                let serial_read = |cql: String| async move {
                    let mut p = prep(cql, false).await?;
                    p.set_consistency(match self.config.serial {
                        Serial::Serial => Consistency::Serial,
                        Serial::LocalSerial => Consistency::LocalSerial,
                    });
                    Ok::<_, Error>(p)
                };
                let mut delete_seen = prep(
                    format!(
                        "DELETE FROM {c} WHERE task_list = ? AND id = ? IF attempts != {NO_ATTEMPTS}"
                    ),
                    true,
                )
                .await?;
                // Only ever sent inside a batch, which carries its own settings.
                delete_seen.set_is_idempotent(true);
                let mut forget_won = prep(
                    format!("DELETE FROM {c} WHERE task_list = ? AND id = ? IF attempts = ?"),
                    true,
                )
                .await?;
                // Sent twice, the second finds the row gone and changes nothing.
                forget_won.set_is_idempotent(true);
                let first_insert = prep(
                    format!(
                        "INSERT INTO {c} (task_list, id, attempts) VALUES (?, ?, 1) IF NOT EXISTS"
                    ),
                    true,
                )
                .await?;
                let take = prep(
                    format!(
                        "UPDATE {c} USING TTL ? SET owner = ? WHERE task_list = ? AND id = ?"
                    ),
                    true,
                )
                .await?;
                let next_if = prep(
                    format!(
                        "UPDATE {c} USING TTL ? SET owner = ? WHERE task_list = ? \
                         AND id = ? IF owner = null AND attempts = ?"
                    ),
                    true,
                )
                .await?;
                let set_attempts = prep(
                    format!("UPDATE {c} SET attempts = ? WHERE task_list = ? AND id = ?"),
                    true,
                )
                .await?;
                let read_many_cql =
                    format!("SELECT id, owner, attempts FROM {c} WHERE task_list = ? AND id IN ?");
                Ok::<_, Error>(Stmts {
                    read: prep(read_cql.clone(), false).await?,
                    read_serial: serial_read(read_cql).await?,
                    one: prep(
                        format!(
                            "SELECT owner, attempts, last_error, TTL(owner) FROM {c} \
                             WHERE task_list = ? AND id = ?"
                        ),
                        false,
                    )
                    .await?,
                    delete_seen,
                    forget_won,
                    which_serial: serial_read(format!(
                        "SELECT id FROM {c} WHERE task_list = ? AND id IN ?"
                    ))
                    .await?,
                    all_serial: serial_read(format!("SELECT id FROM {c} WHERE task_list = ?"))
                        .await?,
                    list: prep(
                        format!(
                            "SELECT id, owner, attempts, last_error, TTL(owner) FROM {c} WHERE task_list = ?"
                        ),
                        false,
                    )
                    .await?,
                    first: batch(first_insert.clone(), take.clone()),
                    next: batch(next_if.clone(), set_attempts.clone()),
                    first_insert,
                    take,
                    next_if,
                    set_attempts,
                    read_many: prep(read_many_cql.clone(), false).await?,
                    read_many_serial: serial_read(read_many_cql).await?,
                    stored: prep(
                        format!(
                            "SELECT id FROM {} WHERE task_list = ? AND id IN ?",
                            self.config.qualified_table()
                        ),
                        false,
                    )
                    .await?,
                    give_back: prep(
                        format!(
                            "UPDATE {c} SET owner = null, attempts = ? WHERE task_list = ? \
                             AND id = ? IF owner = ? AND attempts = ?"
                        ),
                        true,
                    )
                    .await?,
                    renew: prep(
                        format!(
                            "UPDATE {c} USING TTL ? SET owner = ? WHERE task_list = ? AND id = ? \
                             IF owner = ?"
                        ),
                        true,
                    )
                    .await?,
                    release: prep(
                        format!(
                            "UPDATE {c} SET owner = null WHERE task_list = ? AND id = ? IF owner = ?"
                        ),
                        true,
                    )
                    .await?,
                    fail: prep(
                        format!(
                            "UPDATE {c} SET owner = null, last_error = ? WHERE task_list = ? \
                             AND id = ? IF owner = ?"
                        ),
                        true,
                    )
                    .await?,
                    retry: prep(
                        format!(
                            "UPDATE {c} SET attempts = 0, last_error = null WHERE task_list = ? \
                             AND id = ? IF EXISTS"
                        ),
                        true,
                    )
                    .await?,
                    delete: prep(
                        format!("DELETE FROM {c} WHERE task_list = ? AND id = ? IF EXISTS"),
                        true,
                    )
                    .await?,
                    delete_list: prep(format!("DELETE FROM {c} WHERE task_list = ?"), false)
                        .await?,
                })
            })
            .await?;
        Ok((session, stmts))
    }

    /// Creates the claims table (for a deployment whose task table already exists).
    pub async fn create_claims_table(&self) -> Result<()> {
        let session = self.session().await?;
        session
            .query_unpaged(create_table_cql(&self.config, DEFAULT_GC_GRACE_SECONDS), ())
            .await
            .map_err(|e| execution_error(&self.op("creating the claims table", true), &e))?;
        *self.claims_absent.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// The claim statements for deleting claims, prepared if need be; `None` when the claims
    /// table does not exist (a deployment that does not use claims), which is looked for
    /// again after `ABSENT_RECHECK`.
    pub(super) async fn claims_for_delete(&self) -> Result<Option<&Stmts>> {
        if let Some(st) = self.claims.get() {
            return Ok(Some(st));
        }
        let absent = *self.claims_absent.lock().unwrap_or_else(|p| p.into_inner());
        if absent.is_some_and(|at| at.elapsed() < ABSENT_RECHECK) {
            return Ok(None);
        }
        match self.claim_statements().await {
            Ok((_, st)) => Ok(Some(st)),
            Err(e) if missing_table(&e) => {
                *self.claims_absent.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a task has a claim row, by a plain read (see `delete_claim`).
    async fn has_claim_row(&self, key: &TaskKey, deadline: &Deadline) -> Result<bool> {
        let what = || {
            format!(
                "reading the claim on task {:?} of list {:?}",
                key.id, key.task_list
            )
        };
        self.retrying(&what, false, deadline, || async {
            let (session, st) = self.claim_statements().await?;
            let res = session
                .execute_unpaged(&st.read, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let rows = res
                .into_rows_result()
                .map_err(|e| Error::BadData(format!("{}: {e}", what())))?;
            Ok(rows.rows_num() > 0)
        })
        .await
    }

    async fn read_claim(&self, key: &TaskKey, serial: bool) -> Result<Seen> {
        let what = || {
            format!(
                "reading the claim on task {:?} of list {:?}",
                key.id, key.task_list
            )
        };
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.claim_statements().await?;
            let res = session
                .execute_unpaged(
                    if serial { &st.read_serial } else { &st.read },
                    (&key.task_list, &key.id),
                )
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let rows = res
                .into_rows_result()
                .map_err(|e| Error::BadData(format!("{}: {e}", what())))?;
            let row: Option<(Option<String>, Option<i32>)> = rows
                .maybe_first_row()
                .map_err(|e| Error::BadData(format!("{}: {e}", what())))?;
            Ok(match row {
                None => Seen {
                    exists: false,
                    owner: None,
                    attempts: 0,
                },
                Some((owner, attempts)) => Seen {
                    exists: true,
                    owner,
                    attempts: attempts.unwrap_or(0).max(0) as u32,
                },
            })
        })
        .await
    }

    /// The TTL a claim is written with (see `expiry`; checked by `Store` to be within
    /// Cassandra's limits, hence within an `i32`).
    pub(super) fn lease_secs(terms: &ClaimTerms) -> i32 {
        i32::try_from(lease_ttl_secs(terms.lease)).unwrap_or(i32::MAX)
    }

    /// Claims a task: see `Store::claim`. A serial read first (a live claim of another, or
    /// used-up attempts, needs no transaction), then a transaction that wins only if nothing
    /// changed; a lost race or an unknown outcome is settled by reading again.
    pub async fn claim(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<ClaimOutcome> {
        self.claimed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let what = format!("claiming task {:?} of list {:?}", key.id, key.task_list);
        let ttl = Self::lease_secs(terms);
        let mut last: Option<Error> = None;
        for round in 0..CLAIM_ROUNDS {
            let seen = self.read_claim(key, round > 0).await?;
            match &seen.owner {
                Some(o) if *o == terms.owner => {
                    if last.is_some() {
                        // Our own earlier try went through after all.
                        return Ok(ClaimOutcome::Won {
                            attempts: seen.attempts,
                        });
                    }
                    // Already ours: renewed, no new attempt.
                    return Ok(match self.renew(key, terms).await? {
                        true => ClaimOutcome::Won {
                            attempts: seen.attempts,
                        },
                        false => ClaimOutcome::Held,
                    });
                }
                Some(_) => return Ok(ClaimOutcome::Held),
                None => {}
            }
            if self.config.max_attempts.is_some_and(|m| seen.attempts >= m) {
                return Ok(ClaimOutcome::Dead {
                    attempts: seen.attempts,
                });
            }
            let (session, st) = self.claim_statements().await?;
            let sent = if seen.exists {
                let n = seen.attempts as i32;
                session
                    .batch(
                        &st.next,
                        (
                            (ttl, &terms.owner, &key.task_list, &key.id, n),
                            (n + 1, &key.task_list, &key.id),
                        ),
                    )
                    .await
            } else {
                session
                    .batch(
                        &st.first,
                        (
                            (&key.task_list, &key.id),
                            (ttl, &terms.owner, &key.task_list, &key.id),
                        ),
                    )
                    .await
            };
            match sent {
                Ok(res) => {
                    if applied(res, &what)? {
                        return Ok(ClaimOutcome::Won {
                            attempts: seen.attempts + 1,
                        });
                    }
                    // Someone else changed it first: look again.
                }
                Err(e) => {
                    let err = execution_error(&self.op(&what, true), &e);
                    if !err.is_transient() {
                        return Err(err);
                    }
                    // Contention or a lost answer: the next serial read tells.
                    last = Some(err);
                }
            }
        }
        Err(Error::Timeout(format!(
            "{what}: not settled after {CLAIM_ROUNDS} tries{}; whether this owner holds it is \
             unknown until a claim, renew or release by it answers",
            last.map(|e| format!(" (last: {e})")).unwrap_or_default()
        )))
    }

    /// A conditional write of a claim (renew, release, fail, retry), sent again after a
    /// failure that may pass (a timeout, contention, no replica or host answering) until the
    /// retry deadline, as idempotent writes are: each of these leaves the same claim whether it
    /// is applied once or twice. Renewing twice extends the same lease; a second release,
    /// failure or retry finds the work done. Returns whether the write applied and whether an
    /// earlier sending may have applied unseen (it timed out), which is when "not applied"
    /// may mean "already done" (see `release`). Once the deadline passes, a timeout is
    /// reported with the claim's outcome unknown.
    pub(super) async fn conditional<V: scylla::serialize::row::SerializeRow + Sync>(
        &self,
        stmt: impl Fn(&Stmts) -> &PreparedStatement + Sync,
        values: V,
        what: &str,
    ) -> Result<(bool, bool)> {
        let maybe_applied = std::sync::atomic::AtomicBool::new(false);
        let named = || what.to_string();
        let outcome = self
            .retrying(&named, true, &self.deadline(), || async {
                let (session, st) = self.claim_statements().await?;
                match session.execute_unpaged(stmt(st), &values).await {
                    Ok(res) => applied(res, what),
                    Err(e) => {
                        let err = execution_error(&self.op(what, true), &e);
                        if matches!(err.kind(), Error::Timeout(_)) {
                            maybe_applied.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(err)
                    }
                }
            })
            .await;
        match outcome {
            Ok(applied) => Ok((
                applied,
                maybe_applied.load(std::sync::atomic::Ordering::Relaxed),
            )),
            Err(err) if matches!(err.kind(), Error::Timeout(_)) => {
                let m = format!("{}; the claim's outcome is unknown", err.message());
                Err(err.with_message(m))
            }
            Err(err) => Err(err),
        }
    }

    /// Extends the claim `terms.owner` holds; false when it holds none. (Sent again after a
    /// lost answer, it finds the claim still this owner's and extends it again.) A renewal
    /// whose answer took so long that the lease might not last `terms.lease` from now is made
    /// again, up to `RENEW_ROUNDS` times in all.
    pub async fn renew(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<bool> {
        let what = format!(
            "renewing the claim on task {:?} of list {:?}",
            key.id, key.task_list
        );
        for _ in 0..RENEW_ROUNDS {
            let began = Instant::now();
            let (applied, _) = self
                .conditional(
                    |s| &s.renew,
                    (
                        Self::lease_secs(terms),
                        &terms.owner,
                        &key.task_list,
                        &key.id,
                        &terms.owner,
                    ),
                    &what,
                )
                .await?;
            if !applied {
                return Ok(false);
            }
            if lease_covers(terms.lease, began.elapsed()) {
                break;
            }
        }
        Ok(true)
    }

    /// Ends the claim `owner` holds, recording `error` if given; false when it holds none.
    /// When an earlier sending's answer was lost and the last one did not apply, a serial
    /// read settles it: a claim nobody holds any more was ended (by that earlier sending, or
    /// by its lease lapsing), and that is reported as true; one another owner holds, false.
    pub async fn release(&self, key: &TaskKey, owner: &str, error: Option<&str>) -> Result<bool> {
        let what = format!(
            "releasing the claim on task {:?} of list {:?}",
            key.id, key.task_list
        );
        let (applied, maybe_applied) = match error {
            None => {
                self.conditional(|s| &s.release, (&key.task_list, &key.id, owner), &what)
                    .await?
            }
            Some(e) => {
                self.conditional(|s| &s.fail, (e, &key.task_list, &key.id, owner), &what)
                    .await?
            }
        };
        if applied || !maybe_applied {
            return Ok(applied);
        }
        Ok(self.read_claim(key, true).await?.owner.is_none())
    }

    /// Clears a task's attempts and last error.
    pub async fn retry(&self, key: &TaskKey) -> Result<()> {
        let what = format!("retrying task {:?} of list {:?}", key.id, key.task_list);
        self.conditional(|s| &s.retry, (&key.task_list, &key.id), &what)
            .await
            .map(|_| ())
    }

    /// One task's claim state (`None`: it has no claim row), from its row alone.
    pub async fn claim_info(&self, key: &TaskKey) -> Result<Option<ClaimInfo>> {
        let what = || {
            format!(
                "reading the claim on task {:?} of list {:?}",
                key.id, key.task_list
            )
        };
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.claim_statements().await?;
            let res = session
                .execute_unpaged(&st.one, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let bad = |e: &dyn std::fmt::Display| Error::BadData(format!("{}: {e}", what()));
            let rows = res.into_rows_result().map_err(|e| bad(&e))?;
            let row: Option<ClaimRow> = rows.maybe_first_row().map_err(|e| bad(&e))?;
            Ok(row.map(|(owner, attempts, last_error, ttl)| {
                info(key.id.clone(), owner, attempts, last_error, ttl)
            }))
        })
        .await
    }

    /// The claim states of a list's tasks, in id order (all of them: one row per task
    /// ever claimed and not completed).
    pub async fn claim_infos(&self, task_list: &str) -> Result<Vec<ClaimInfo>> {
        let what = || format!("reading the claims of list {task_list:?}");
        let mut out = Vec::new();
        let mut paging = PagingState::start();
        loop {
            let (rows, next) = self
                .retrying(&what, false, &self.deadline(), || {
                    let paging = paging.clone();
                    async move {
                        let (session, st) = self.claim_statements().await?;
                        let (res, next) = session
                            .execute_single_page(&st.list, (task_list,), paging)
                            .await
                            .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                        let bad =
                            |e: &dyn std::fmt::Display| Error::BadData(format!("{}: {e}", what()));
                        let rows = res.into_rows_result().map_err(|e| bad(&e))?;
                        let mut page = Vec::with_capacity(rows.rows_num());
                        type Listed = (
                            String,
                            Option<String>,
                            Option<i32>,
                            Option<String>,
                            Option<i32>,
                        );
                        for row in rows.rows::<Listed>().map_err(|e| bad(&e))? {
                            let (id, owner, attempts, last_error, ttl) =
                                row.map_err(|e| bad(&e))?;
                            page.push(info(id, owner, attempts, last_error, ttl));
                        }
                        Ok((page, next))
                    }
                })
                .await?;
            out.extend(rows);
            match next.into_paging_control_flow() {
                std::ops::ControlFlow::Continue(p) => paging = p,
                std::ops::ControlFlow::Break(()) => return Ok(out),
            }
        }
    }

    /// Deletes a completed task's claim, if it has one (by a transaction: see the module's
    /// notes), unless the claims table does not exist. Sent again after a lost answer: a second
    /// deletion finds nothing to delete. A store that never claimed (a web page, a command, an
    /// application that does not use claims) reads the row first, so that completing a task
    /// that has no claim costs a plain read and no transaction: a claim written before that
    /// read is seen by it, and one written after finds its task gone (see `Store::claim`).
    pub(super) async fn delete_claim(&self, key: &TaskKey, deadline: &Deadline) -> Result<()> {
        let Some(st) = self.claims_for_delete().await? else {
            return Ok(());
        };
        if !self.claimed.load(std::sync::atomic::Ordering::Relaxed)
            && !self.has_claim_row(key, deadline).await?
        {
            return Ok(());
        }
        let what = || {
            format!(
                "deleting the claim on task {:?} of list {:?}",
                key.id, key.task_list
            )
        };
        self.retrying(&what, true, deadline, || async {
            let (session, _) = self.statements().await?;
            let res = session
                .execute_unpaged(&st.delete, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            // Applied or not (no row), the claim is gone.
            applied(res, &what()).map(|_| ())
        })
        .await
    }

    /// Deletes the claims of some tasks of one list (completed in one batch), unless the claims
    /// table does not exist: a serial read of which of them have claim rows, then one
    /// conditional batch deleting those. A claim written after that read was written after the
    /// tasks were deleted: its claimer finds the task gone and deletes it (see `Store::claim`).
    pub(super) async fn delete_claims(
        &self,
        task_list: &str,
        ids: &[&String],
        deadline: &Deadline,
    ) -> Result<()> {
        let Some(st) = self.claims_for_delete().await? else {
            return Ok(());
        };
        let what = || {
            format!(
                "deleting the claims on {} tasks of list {task_list:?}",
                ids.len()
            )
        };
        let found = self
            .retrying(&what, false, deadline, || async {
                let (session, _) = self.statements().await?;
                let res = session
                    .execute_unpaged(&st.which_serial, (task_list, ids))
                    .await
                    .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                ids_of(res, &what())
            })
            .await?;
        self.delete_seen(task_list, &found, deadline).await
    }

    /// Deletes claim rows a serial read has just seen, in conditional batches of at most
    /// `BATCH_ROWS`.
    pub(super) async fn delete_seen(
        &self,
        task_list: &str,
        ids: &[String],
        deadline: &Deadline,
    ) -> Result<()> {
        let Some(st) = self.claims.get() else {
            return Ok(());
        };
        for chunk in ids.chunks(super::BATCH_ROWS) {
            let what = || {
                format!(
                    "deleting the claims on {} tasks of list {task_list:?}",
                    chunk.len()
                )
            };
            let mut batch = Batch::default();
            for _ in chunk {
                batch.append_statement(st.delete_seen.clone());
            }
            batch.set_consistency(self.config.consistency.0);
            batch.set_serial_consistency(Some(serial(&self.config)));
            batch.set_request_timeout(Some(self.config.request_timeout));
            // Sent twice, it deletes the same rows (its condition always holds).
            batch.set_is_idempotent(true);
            let rows: Vec<(&str, &String)> = chunk.iter().map(|id| (task_list, id)).collect();
            self.retrying(&what, true, deadline, || async {
                let (session, _) = self.statements().await?;
                let res = session
                    .batch(&batch, &rows)
                    .await
                    .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
                applied(res, &what()).map(|_| ())
            })
            .await?;
        }
        Ok(())
    }

    /// Deletes the claim on a task that turned out to be gone.
    pub async fn forget_claim(&self, key: &TaskKey) -> Result<()> {
        self.delete_claim(key, &self.deadline()).await
    }

    /// Deletes every claim of a list (whose tasks are deleted), unless the claims table does not
    /// exist: a plain deletion of the partition, then a serial read of the claims that
    /// outlived it (written by transactions whose timestamps are later than the deletion's),
    /// deleted by transactions. A claim written after that read finds its task gone and is
    /// deleted by its claimer.
    pub(super) async fn delete_claims_of(
        &self,
        task_list: &str,
        deadline: &Deadline,
    ) -> Result<()> {
        let Some(st) = self.claims_for_delete().await? else {
            return Ok(());
        };
        let what = || format!("deleting the claims of list {task_list:?}");
        self.retrying(&what, true, deadline, || async {
            let (session, _) = self.statements().await?;
            session
                .execute_unpaged(&st.delete_list, (task_list,))
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await?;
        let mut paging = PagingState::start();
        loop {
            let (ids, next) = self
                .retrying(&what, false, deadline, || {
                    let paging = paging.clone();
                    async move {
                        let (session, _) = self.statements().await?;
                        let (res, next) = session
                            .execute_single_page(&st.all_serial, (task_list,), paging)
                            .await
                            .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                        Ok((ids_of(res, &what())?, next))
                    }
                })
                .await?;
            self.delete_seen(task_list, &ids, deadline).await?;
            match next.into_paging_control_flow() {
                std::ops::ControlFlow::Continue(p) => paging = p,
                std::ops::ControlFlow::Break(()) => return Ok(()),
            }
        }
    }
}
