//! Claiming many tasks of one list at once. The claims table's partition key is the list
//! alone (`PRIMARY KEY ((task_list), id)`), so the claim rows of one list's tasks share a
//! partition, and one conditional batch over them is one lightweight transaction: one round
//! of Paxos for all of them, applied whole or not at all.
//!
//! A claim starts with plain reads: the tasks' claim rows, then which of those nobody holds
//! are still stored (a task someone holds, dead or completed costs no transaction). The batch then carries, for
//! each task nobody holds, the statements one claim sends (`INSERT ... IF NOT EXISTS` and the
//! owner for a first claim; `IF owner = null AND attempts = n` and the new count for a later
//! one). When some conditions fail (another worker got there first), the transaction applies
//! nothing and its answer holds the current state of every row the conditions read (a row not
//! in it does not exist): the tasks another worker took are dropped, and the rest are claimed
//! again with what the answer says, a bounded number of times. An answer lost (a timeout,
//! contention) is settled by a serial read of the batch's rows, as a single claim's is: a row
//! this owner holds was won by that batch.
//!
//! A task this owner holds already is renewed by the same batch (`IF owner = <it>`), counting
//! no new attempt; one whose claim lapsed meanwhile is claimed again. So a worker renews the
//! tasks of a batch it has not reached yet in one transaction.
//!
//! A task claimed and then found gone (completed between the reads and the transaction) is
//! not run: its claim is deleted at once.

use std::collections::{HashMap, HashSet};

use scylla::response::query_result::QueryResult;
use scylla::statement::batch::Batch;
use scylla::value::{CqlValue, Row};

use super::claims::applied;
use super::errors::execution_error;
use super::CassandraStore;
use crate::claims::{ClaimBatch, ClaimOutcome, ClaimTerms};
use crate::error::{Error, Result};
use crate::record::TaskKey;

/// How many transactions one `claim_many` sends at most (each after a collision or a lost
/// answer, settled first).
const BATCH_ROUNDS: usize = 6;

/// A claim row as this owner last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct State {
    exists: bool,
    owner: Option<String>,
    attempts: u32,
}

impl CassandraStore {
    /// Claims some tasks of one list at once: see `Store::claim_many` and the module's notes.
    pub async fn claim_many(
        &self,
        task_list: &str,
        ids: &[String],
        terms: &ClaimTerms,
    ) -> Result<ClaimBatch> {
        self.claimed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let what = format!("claiming {} tasks of list {task_list:?}", ids.len());
        let ttl = Self::lease_secs(terms);
        let mut out = ClaimBatch {
            outcomes: Vec::with_capacity(ids.len()),
            ..ClaimBatch::default()
        };
        let mut decided: Vec<Option<ClaimOutcome>> = vec![None; ids.len()];
        // Plain reads first: the claim rows (a task another worker holds, or a dead one, costs
        // no more), then which of the others are still stored (a completed one costs no
        // transaction).
        let all: Vec<&String> = ids.iter().collect();
        let mut state = self.claim_states(task_list, &all, false).await?;
        let mut todo: Vec<usize> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let s = state.get(id).cloned().unwrap_or_default();
            match &s.owner {
                Some(o) if *o != terms.owner => decided[i] = Some(ClaimOutcome::Held),
                None if self.config.max_attempts.is_some_and(|m| s.attempts >= m) => {
                    decided[i] = Some(ClaimOutcome::Dead {
                        attempts: s.attempts,
                    });
                }
                _ => todo.push(i),
            }
        }
        if !todo.is_empty() {
            let asked: Vec<&String> = todo.iter().map(|&i| &ids[i]).collect();
            let present = self.stored_ids(task_list, &asked).await?;
            todo.retain(|&i| {
                let stored = present.contains(&ids[i]);
                if !stored {
                    decided[i] = Some(ClaimOutcome::Gone);
                }
                stored
            });
        }
        // Ids this owner held already: renewed in the same batch (`IF owner = <it>`), with no
        // new attempt, and only once a batch carrying the renewal applied (a renewal whose
        // answer was lost is sent again: renewing twice extends the same lease).
        let mut renewing: HashSet<usize> = todo
            .iter()
            .copied()
            .filter(|&i| {
                state
                    .get(&ids[i])
                    .is_some_and(|s| s.owner.as_deref() == Some(terms.owner.as_str()))
            })
            .collect();
        // Ids a transaction of this call may have claimed (its answer lost): a row this owner
        // holds was won by it.
        let mut sent: HashSet<usize> = HashSet::new();
        for round in 0..BATCH_ROUNDS {
            let mut send = Vec::new();
            for &i in &todo {
                if decided[i].is_some() {
                    continue;
                }
                let s = state.get(&ids[i]).cloned().unwrap_or_default();
                match &s.owner {
                    Some(o) if *o == terms.owner && renewing.contains(&i) => send.push(i),
                    Some(o) if *o == terms.owner && sent.contains(&i) => {
                        decided[i] = Some(ClaimOutcome::Won {
                            attempts: s.attempts,
                        });
                    }
                    Some(_) => decided[i] = Some(ClaimOutcome::Held),
                    None if self.config.max_attempts.is_some_and(|m| s.attempts >= m) => {
                        decided[i] = Some(ClaimOutcome::Dead {
                            attempts: s.attempts,
                        });
                    }
                    None => {
                        // A claim of this owner's that lapsed is claimed again, as a new one.
                        renewing.remove(&i);
                        send.push(i);
                    }
                }
            }
            if send.is_empty() {
                break;
            }
            if round + 1 == BATCH_ROUNDS {
                // Out of rounds: what is left counts as held by others (it collided each time).
                for i in send {
                    decided[i] = Some(ClaimOutcome::Held);
                }
                break;
            }
            let (session, st) = self.claim_statements().await?;
            let mut batch = Batch::default();
            let mut values: Vec<Vec<CqlValue>> = Vec::with_capacity(send.len() * 2);
            let text = |s: &str| CqlValue::Text(s.to_string());
            for &i in &send {
                let id = &ids[i];
                let s = state.get(id).cloned().unwrap_or_default();
                if renewing.contains(&i) {
                    batch.append_statement(st.renew.clone());
                    values.push(vec![
                        CqlValue::Int(ttl),
                        text(&terms.owner),
                        text(task_list),
                        text(id),
                        text(&terms.owner),
                    ]);
                } else if s.exists {
                    let n = i32::try_from(s.attempts).unwrap_or(i32::MAX);
                    batch.append_statement(st.next_if.clone());
                    values.push(vec![
                        CqlValue::Int(ttl),
                        text(&terms.owner),
                        text(task_list),
                        text(id),
                        CqlValue::Int(n),
                    ]);
                    batch.append_statement(st.set_attempts.clone());
                    values.push(vec![
                        CqlValue::Int(n.saturating_add(1)),
                        text(task_list),
                        text(id),
                    ]);
                } else {
                    batch.append_statement(st.first_insert.clone());
                    values.push(vec![text(task_list), text(id)]);
                    batch.append_statement(st.take.clone());
                    values.push(vec![
                        CqlValue::Int(ttl),
                        text(&terms.owner),
                        text(task_list),
                        text(id),
                    ]);
                }
            }
            self.claim_batch_settings(&mut batch);
            out.transactions += 1;
            match session.batch(&batch, &values).await {
                Ok(res) => match batch_answer(res, &what)? {
                    None => {
                        for &i in &send {
                            let s = state.get(&ids[i]).cloned().unwrap_or_default();
                            let new = u32::from(!renewing.contains(&i));
                            decided[i] = Some(ClaimOutcome::Won {
                                attempts: s.attempts + new,
                            });
                        }
                    }
                    Some(now) => {
                        // Not applied: the answer is the rows' state now.
                        let mut changed = 0;
                        for &i in &send {
                            let id = &ids[i];
                            let fresh = now.get(id).cloned().unwrap_or_default();
                            if state.get(id).cloned().unwrap_or_default() != fresh {
                                changed += 1;
                            }
                            state.insert(id.clone(), fresh);
                        }
                        out.collisions += changed.max(1);
                        if changed == 0 {
                            // An answer that shows no change: read again, at SERIAL.
                            let again: Vec<&String> = send.iter().map(|&i| &ids[i]).collect();
                            state.extend(self.claim_states(task_list, &again, true).await?);
                        }
                    }
                },
                Err(e) => {
                    let err = execution_error(&self.op(&what, true), &e);
                    if !err.is_transient() {
                        return Err(err);
                    }
                    // Contention or a lost answer: a serial read settles it.
                    out.settled += 1;
                    sent.extend(send.iter().copied());
                    let again: Vec<&String> = send.iter().map(|&i| &ids[i]).collect();
                    let seen = self.claim_states(task_list, &again, true).await?;
                    for id in again {
                        state.insert(id.clone(), seen.get(id).cloned().unwrap_or_default());
                    }
                }
            }
        }
        // Completed between the first read and the transaction: not run; the claim goes.
        let won: Vec<&String> = todo
            .iter()
            .filter(|&&i| matches!(decided[i], Some(ClaimOutcome::Won { .. })))
            .map(|&i| &ids[i])
            .collect();
        if !won.is_empty() {
            let still = self.stored_ids(task_list, &won).await?;
            let gone: Vec<String> = won
                .iter()
                .filter(|id| !still.contains(**id))
                .map(|id| (*id).clone())
                .collect();
            if !gone.is_empty() {
                self.delete_seen(task_list, &gone, &self.deadline()).await?;
                for &i in &todo {
                    if gone.contains(&ids[i]) {
                        decided[i] = Some(ClaimOutcome::Gone);
                    }
                }
            }
        }
        out.outcomes = decided
            .into_iter()
            .map(|d| d.unwrap_or(ClaimOutcome::Held))
            .collect();
        Ok(out)
    }

    /// Which of `ids` are stored in the task table (a plain read).
    async fn stored_ids<S: AsRef<str> + Sync>(
        &self,
        task_list: &str,
        ids: &[S],
    ) -> Result<HashSet<String>> {
        let what = || format!("reading {} tasks of list {task_list:?}", ids.len());
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.claim_statements().await?;
            let res = session
                .execute_unpaged(&st.stored, (task_list, &ids))
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let bad = |e: &dyn std::fmt::Display| Error::BadData(format!("{}: {e}", what()));
            let rows = res.into_rows_result().map_err(|e| bad(&e))?;
            let mut out = HashSet::with_capacity(rows.rows_num());
            for row in rows.rows::<(String,)>().map_err(|e| bad(&e))? {
                out.insert(row.map_err(|e| bad(&e))?.0);
            }
            Ok(out)
        })
        .await
    }

    /// The claim rows of some tasks of a list (a task without one is absent), by a plain read
    /// or at SERIAL (which sees every committed transaction and completes one left half-done).
    async fn claim_states(
        &self,
        task_list: &str,
        ids: &[&String],
        serial: bool,
    ) -> Result<HashMap<String, State>> {
        let what = || {
            format!(
                "reading the claims on {} tasks of list {task_list:?}",
                ids.len()
            )
        };
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.claim_statements().await?;
            let stmt = if serial {
                &st.read_many_serial
            } else {
                &st.read_many
            };
            let res = session
                .execute_unpaged(stmt, (task_list, ids))
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let bad = |e: &dyn std::fmt::Display| Error::BadData(format!("{}: {e}", what()));
            let rows = res.into_rows_result().map_err(|e| bad(&e))?;
            let mut out = HashMap::with_capacity(rows.rows_num());
            type Read = (String, Option<String>, Option<i32>);
            for row in rows.rows::<Read>().map_err(|e| bad(&e))? {
                let (id, owner, attempts) = row.map_err(|e| bad(&e))?;
                out.insert(
                    id,
                    State {
                        exists: true,
                        owner,
                        attempts: attempts.unwrap_or(0).max(0) as u32,
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// Completes a task claimed by `claim_many`: its row is deleted now, its claim by
    /// `forget_claims` with those of others, in one transaction (see `Store::complete_claimed`).
    pub async fn complete_claimed(&self, key: &TaskKey) -> Result<()> {
        self.delete_row_until(key, &self.deadline()).await
    }

    /// Deletes the claims of completed tasks, each only while it holds the attempts it was won
    /// with, in conditional batches. A batch applies only when every one of its conditions
    /// holds: when one does not (the task was saved again and another worker claimed it, or
    /// its claim is gone already), each claim of that batch is deleted by itself, under the
    /// same condition.
    pub async fn forget_claims(&self, task_list: &str, won: &[(String, u32)]) -> Result<()> {
        let Some(st) = self.claims_for_delete().await? else {
            return Ok(());
        };
        let deadline = self.deadline();
        for chunk in won.chunks(super::BATCH_ROWS) {
            let what = || {
                format!(
                    "deleting the claims on {} completed tasks of list {task_list:?}",
                    chunk.len()
                )
            };
            let rows: Vec<(&str, &String, i32)> = chunk
                .iter()
                .map(|(id, attempts)| (task_list, id, i32::try_from(*attempts).unwrap_or(i32::MAX)))
                .collect();
            let mut batch = Batch::default();
            for _ in chunk {
                batch.append_statement(st.forget_won.clone());
            }
            self.claim_batch_settings(&mut batch);
            batch.set_is_idempotent(true);
            let all = self
                .retrying(&what, true, &deadline, || async {
                    let (session, _) = self.statements().await?;
                    let res = session
                        .batch(&batch, &rows)
                        .await
                        .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
                    applied(res, &what())
                })
                .await?;
            if all {
                continue;
            }
            for row in &rows {
                self.retrying(&what, true, &deadline, || async {
                    let (session, _) = self.statements().await?;
                    let res = session
                        .execute_unpaged(&st.forget_won, row)
                        .await
                        .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
                    applied(res, &what()).map(|_| ())
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Gives back claims this owner won and did not work on: released, each attempt
    /// uncounted, in one conditional batch when every one is still as won; otherwise one
    /// transaction each. How many were given back.
    pub async fn give_back(
        &self,
        task_list: &str,
        held: &[(String, u32)],
        owner: &str,
    ) -> Result<u32> {
        let what = format!("giving back {} claims of list {task_list:?}", held.len());
        let row = |id: &String, attempts: u32| -> Vec<CqlValue> {
            let n = i32::try_from(attempts).unwrap_or(i32::MAX);
            vec![
                CqlValue::Int(n.saturating_sub(1).max(0)),
                CqlValue::Text(task_list.to_string()),
                CqlValue::Text(id.clone()),
                CqlValue::Text(owner.to_string()),
                CqlValue::Int(n),
            ]
        };
        let mut batch = Batch::default();
        let (_, st) = self.claim_statements().await?;
        for _ in held {
            batch.append_statement(st.give_back.clone());
        }
        self.claim_batch_settings(&mut batch);
        let values: Vec<Vec<CqlValue>> = held.iter().map(|(id, a)| row(id, *a)).collect();
        let named = || what.clone();
        // Sent again after a lost answer: a second sending finds them given back, applies
        // nothing, and each is then tried alone (and found given back).
        let all = self
            .retrying(&named, true, &self.deadline(), || async {
                let (session, _) = self.claim_statements().await?;
                let res = session
                    .batch(&batch, &values)
                    .await
                    .map_err(|e| execution_error(&self.op(&what, true), &e))?;
                Ok(batch_answer(res, &what)?.is_none())
            })
            .await?;
        if all {
            return u32::try_from(held.len()).map_err(|_| Error::BadData(what.clone()));
        }
        let mut n = 0;
        for (id, attempts) in held {
            let (applied, _) = self
                .conditional(|s| &s.give_back, row(id, *attempts), &what)
                .await?;
            n += u32::from(applied);
        }
        Ok(n)
    }

    fn claim_batch_settings(&self, batch: &mut Batch) {
        batch.set_consistency(self.config.consistency.0);
        batch.set_serial_consistency(Some(super::claims::serial(&self.config)));
        batch.set_request_timeout(Some(self.config.request_timeout));
        batch.set_is_idempotent(false);
    }
}

/// A conditional batch's answer: `None` when it applied, else the current state of each row
/// its conditions read, by id (a row not in it does not exist).
fn batch_answer(res: QueryResult, what: &str) -> Result<Option<HashMap<String, State>>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::BadData(format!(
            "{what}: unexpected answer to a conditional batch: {e}"
        ))
    };
    let rows = res.into_rows_result().map_err(|e| bad(&e))?;
    let names: Vec<String> = rows
        .column_specs()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let col = |n: &str| names.iter().position(|c| c == n);
    let (applied, id, owner, attempts) =
        (col("[applied]"), col("id"), col("owner"), col("attempts"));
    let applied = applied.ok_or_else(|| bad(&"no [applied] column"))?;
    let mut out = HashMap::new();
    let mut any = false;
    for row in rows.rows::<Row>().map_err(|e| bad(&e))? {
        let row = row.map_err(|e| bad(&e))?;
        let cell = |i: Option<usize>| i.and_then(|i| row.columns.get(i).cloned().flatten());
        match cell(Some(applied)) {
            Some(CqlValue::Boolean(true)) => return Ok(None),
            Some(CqlValue::Boolean(false)) => {}
            other => return Err(bad(&format!("[applied] is {other:?}"))),
        }
        any = true;
        let Some(CqlValue::Text(id)) = cell(id) else {
            // A failed batch whose rows do not name their ids: nothing known.
            continue;
        };
        let owner = match cell(owner) {
            Some(CqlValue::Text(o)) => Some(o),
            _ => None,
        };
        let attempts = match cell(attempts) {
            Some(CqlValue::Int(n)) => n.max(0) as u32,
            _ => 0,
        };
        out.insert(
            id,
            State {
                exists: true,
                owner,
                attempts,
            },
        );
    }
    if !any {
        return Err(bad(&"no rows"));
    }
    Ok(Some(out))
}
