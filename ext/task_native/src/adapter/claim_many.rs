//! Claims of many tasks of one list at once, for `claim_each(batch:)` (lib/task/claims.rb):
//! `claim_many`, `complete_claimed`, `forget_claims` and `give_back`.

use magnus::prelude::*;
use magnus::{Error, RArray, Ruby, Value};

use super::parse::claim_terms;
use super::{outcome_pair, Adapter};
use crate::args;

/// Ids from a Ruby Array, each checked as a task id of `task_list`.
fn ids_of(ruby: &Ruby, task_list: Value, ids: RArray) -> Result<(String, Vec<String>), Error> {
    let list = args::list(ruby, task_list)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids.into_iter() {
        out.push(args::key(ruby, task_list, id)?.id);
    }
    Ok((list, out))
}

impl Adapter {
    /// `claim_many(task_list, ids, seconds, owner)` -> `[outcomes, collisions, transactions,
    /// settled]`, one `[status, attempts]` per id as `claim` gives it, in order; `collisions`:
    /// conditions that failed (tasks another worker took between this one's read and its
    /// transaction); `settled`: transactions whose answer was lost, settled by a serial read.
    pub(super) fn claim_many(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        ids: RArray,
        seconds: Value,
        owner: Value,
    ) -> Result<RArray, Error> {
        let (list, ids) = ids_of(ruby, task_list, ids)?;
        let terms = claim_terms(ruby, seconds, owner)?;
        let (list, ids, terms) = (&list, &ids, &terms);
        let batch = rb_self.store.run(
            ruby,
            |s| async move { s.claim_many(list, ids, terms).await },
        )?;
        let outcomes = ruby.ary_new_capa(batch.outcomes.len());
        for o in batch.outcomes {
            outcomes.push(outcome_pair(ruby, o)?)?;
        }
        let out = ruby.ary_new_capa(4);
        out.push(outcomes)?;
        out.push(batch.collisions)?;
        out.push(batch.transactions)?;
        out.push(batch.settled)?;
        Ok(out)
    }

    /// `complete_claimed(task_list, id)`: deletes a task `claim_many` won; its claim is deleted
    /// with it, or (Cassandra) by `forget_claims` with others.
    pub(super) fn complete_claimed(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
    ) -> Result<(), Error> {
        let key = args::key(ruby, task_list, id)?;
        let key = &key;
        rb_self
            .store
            .run(ruby, |s| async move { s.complete_claimed(key).await })
    }

    /// `forget_claims(task_list, [[id, attempts], ...])`: deletes the claims of tasks
    /// `complete_claimed` deleted, each only while it is as it was won (`attempts`).
    pub(super) fn forget_claims(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        won: RArray,
    ) -> Result<(), Error> {
        let (list, won) = (args::list(ruby, task_list)?, held_of(ruby, task_list, won)?);
        let (list, won) = (&list, &won);
        rb_self
            .store
            .run(ruby, |s| async move { s.forget_claims(list, won).await })
    }

    /// `give_back(task_list, [[id, attempts], ...], owner)` -> how many claims `owner` still
    /// held and gave back (released, the attempt each was won with uncounted).
    pub(super) fn give_back(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        held: RArray,
        owner: String,
    ) -> Result<u32, Error> {
        let list = args::list(ruby, task_list)?;
        let pairs = held_of(ruby, task_list, held)?;
        let (list, pairs, owner) = (&list, &pairs, &owner);
        rb_self.store.run(
            ruby,
            |s| async move { s.give_back(list, pairs, owner).await },
        )
    }
}

/// `[[id, attempts], ...]`: ids of `task_list`, each with the attempts its claim was won with.
fn held_of(ruby: &Ruby, task_list: Value, held: RArray) -> Result<Vec<(String, u32)>, Error> {
    let mut pairs = Vec::with_capacity(held.len());
    for pair in held.into_iter() {
        let pair = RArray::try_convert(pair)?;
        let id = args::key(ruby, task_list, pair.entry(0)?)?.id;
        let attempts: u32 = pair.entry(1)?;
        pairs.push((id, attempts));
    }
    Ok(pairs)
}
