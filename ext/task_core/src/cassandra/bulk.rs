//! Bulk calls (`store_many`, `delete_many`): unlogged batches of one list each, or one request
//! per task, with a bounded number in flight.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use scylla::statement::batch::Batch;
use scylla::statement::batch::BatchType;
use scylla::statement::prepared::PreparedStatement;
use tokio::task::JoinSet;

use super::errors::execution_error;
use super::retry::Deadline;
use crate::error::Error;
use crate::error::Result;
use crate::record::TaskKey;
use crate::record::TaskRecord;

use super::CassandraStore;

/// The most column bytes (list, id, data and type, summed) one batch of `store_many` or
/// `delete_many` carries. Cassandra refuses a batch above `batch_size_fail_threshold` (50 KiB
/// by default) and warns above `batch_size_warn_threshold` (5 KiB), but only for a batch
/// spanning several partitions (CASSANDRA-10876); ours never do, so neither threshold
/// applies and the node logs nothing about them (checked: see bench/README.md). The bound is
/// kept below the failure threshold anyway, with room for Cassandra's per-cell overhead, so
/// a batch stays a modest mutation (one the node applies in one go, far below the commit
/// log's maximum) and a server that did count it would still take it: 5, 16, 48 and 128 KiB
/// measured within noise of each other, all several times faster than one row per request.
pub const BATCH_BYTES: usize = 40 * 1024;
/// The most rows in one batch, whatever their size (tiny rows would otherwise make batches
/// of thousands of statements).
pub const BATCH_ROWS: usize = 1000;

/// Groups items by list (in order of first appearance, each keeping the order given) and
/// cuts each list's items into batches of at most `BATCH_BYTES` (counting `size` plus 32
/// bytes a row) and `BATCH_ROWS`; an item larger than the bound is a batch of its own. Each
/// batch is the items' indices.
pub(super) fn batches<'a>(items: impl Iterator<Item = (&'a str, usize)>) -> Vec<Vec<usize>> {
    // Per list: the open batch (its index in `out`) and its bytes so far.
    let mut open: HashMap<&'a str, (usize, usize)> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, (list, size)) in items.enumerate() {
        let size = size + 32;
        match open.get_mut(list) {
            Some((b, bytes)) if *bytes + size <= BATCH_BYTES && out[*b].len() < BATCH_ROWS => {
                out[*b].push(i);
                *bytes += size;
            }
            _ => {
                open.insert(list, (out.len(), size));
                out.push(vec![i]);
            }
        }
    }
    out
}

/// One result per item from one result per batch: each item of a batch gets its batch's.
pub(super) fn spread(n: usize, groups: &[Vec<usize>], results: Vec<Result<()>>) -> Vec<Result<()>> {
    let mut out: Vec<Option<Result<()>>> = (0..n).map(|_| None).collect();
    for (group, result) in groups.iter().zip(results) {
        for &i in group {
            out[i] = Some(result.clone());
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Unavailable("a bulk item was never sent".into()))))
        .collect()
}

impl CassandraStore {
    /// Stores many tasks, already checked (see `Store::store_many`), with at most
    /// `concurrency` requests in flight: one unlogged batch per group of tasks of the same
    /// list (`batched`, see `batches`), or one request per task. Returns once every
    /// write has finished or been given up, one result per record, in the order given (a
    /// failed batch fails each of its tasks): once no write has succeeded for the retry
    /// deadline, the writes not yet started fail without being sent (see `Deadline`).
    pub async fn store_many(
        self: &Arc<Self>,
        records: Arc<[TaskRecord]>,
        concurrency: usize,
        batched: bool,
    ) -> Vec<Result<()>> {
        if !batched {
            return self
                .for_each_concurrently(records, concurrency, |store, all, i, deadline| async move {
                    store.put_until(&all[i], None, &deadline).await
                })
                .await;
        }
        pub(super) fn sized(r: &TaskRecord) -> (&str, usize) {
            let size = r.task_list.len()
                + r.id.len()
                + r.type_name.len()
                + r.data.as_ref().map_or(0, String::len);
            (r.task_list.as_str(), size)
        }
        self.in_batches(
            records,
            concurrency,
            sized,
            |store, records, groups, g, deadline| async move {
                store.put_batch_until(&records, &groups[g], &deadline).await
            },
        )
        .await
    }

    /// Completes many tasks, like `store_many`.
    pub async fn delete_many(
        self: &Arc<Self>,
        keys: Arc<[TaskKey]>,
        concurrency: usize,
        batched: bool,
    ) -> Vec<Result<()>> {
        if !batched {
            return self
                .for_each_concurrently(keys, concurrency, |store, all, i, deadline| async move {
                    store.delete_until(&all[i], &deadline).await
                })
                .await;
        }
        pub(super) fn sized(k: &TaskKey) -> (&str, usize) {
            (k.task_list.as_str(), k.task_list.len() + k.id.len())
        }
        self.in_batches(
            keys,
            concurrency,
            sized,
            |store, keys, groups, g, deadline| async move {
                store.delete_batch_until(&keys, &groups[g], &deadline).await
            },
        )
        .await
    }

    /// Cuts `items` into batches of one list each (`batches`, by the list and size `sized`
    /// gives), sends each with `send` (the store, all the items, all the batches, which batch,
    /// the call's deadline), `concurrency` at a time, and gives each item its batch's result.
    pub(super) async fn in_batches<I, F, Fut>(
        self: &Arc<Self>,
        items: Arc<[I]>,
        concurrency: usize,
        sized: for<'a> fn(&'a I) -> (&'a str, usize),
        send: F,
    ) -> Vec<Result<()>>
    where
        I: Send + Sync + 'static,
        F: Fn(Arc<Self>, Arc<[I]>, Arc<[Vec<usize>]>, usize, Arc<Deadline>) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let groups: Arc<[Vec<usize>]> = batches(items.iter().map(sized)).into();
        let n = items.len();
        let results = self
            .for_each_concurrently(
                groups.clone(),
                concurrency,
                move |store, all, g, deadline| send(store, items.clone(), all, g, deadline),
            )
            .await;
        spread(n, &groups, results)
    }

    /// The statements of a batch, with the settings of a single statement.
    pub(super) fn batch_of(&self, statements: impl Iterator<Item = PreparedStatement>) -> Batch {
        let mut batch = Batch::new(BatchType::Unlogged);
        for s in statements {
            batch.append_statement(s);
        }
        batch.set_consistency(self.config.consistency.0);
        batch.set_request_timeout(Some(self.config.request_timeout));
        // An unlogged batch of upserts, or of deletes, is idempotent as each of its statements
        // is: sent twice, it leaves the same rows (or the same absence of rows) as sent once.
        // That is what lets `retrying` resend one whose outcome is unknown.
        batch.set_is_idempotent(true);
        batch
    }

    /// Writes the records at `group` (all of one list) as one unlogged batch.
    pub(super) async fn put_batch_until(
        &self,
        records: &[TaskRecord],
        group: &[usize],
        deadline: &Deadline,
    ) -> Result<()> {
        let first = &records[group[0]];
        let what = || {
            format!(
                "saving {} tasks of list {:?} in one batch (ids {:?} to {:?})",
                group.len(),
                first.task_list,
                first.id,
                records[group[group.len() - 1]].id
            )
        };
        let ttl = self
            .config
            .default_ttl
            .map(|t| t.as_secs_f64().ceil().clamp(1.0, i32::MAX as f64) as i32);
        self.retrying(&what, true, deadline, || async {
            let (session, st) = self.statements().await?;
            let rows = group.iter().map(|&i| {
                let r = &records[i];
                (&r.task_list, &r.id, &r.data, &r.type_name)
            });
            let sent = match ttl {
                None => {
                    let batch = self.batch_of(group.iter().map(|_| st.insert.clone()));
                    session.batch(&batch, rows.collect::<Vec<_>>()).await
                }
                Some(t) => {
                    let batch = self.batch_of(group.iter().map(|_| st.insert_ttl.clone()));
                    let rows: Vec<_> = rows.map(|(l, i, d, ty)| (l, i, d, ty, t)).collect();
                    session.batch(&batch, rows).await
                }
            };
            sent.map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await
    }

    /// Deletes the tasks at `group` (all of one list) as one unlogged batch, then their claims
    /// unless the claims table does not exist (by transactions: see `claims.rs`; after the tasks, so that a
    /// claim taken in between finds its task gone).
    pub(super) async fn delete_batch_until(
        &self,
        keys: &[TaskKey],
        group: &[usize],
        deadline: &Deadline,
    ) -> Result<()> {
        let first = &keys[group[0]];
        let what = || {
            format!(
                "completing {} tasks of list {:?} in one batch (ids {:?} to {:?})",
                group.len(),
                first.task_list,
                first.id,
                keys[group[group.len() - 1]].id
            )
        };
        self.retrying(&what, true, deadline, || async {
            let (session, st) = self.statements().await?;
            let batch = self.batch_of(group.iter().map(|_| st.delete.clone()));
            let rows: Vec<(&String, &String)> = group
                .iter()
                .map(|&i| (&keys[i].task_list, &keys[i].id))
                .collect();
            session
                .batch(&batch, rows)
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await?;
        let ids: Vec<&String> = group.iter().map(|&i| &keys[i].id).collect();
        self.delete_claims(&first.task_list, &ids, deadline).await
    }

    pub(super) async fn for_each_concurrently<I, F, Fut>(
        self: &Arc<Self>,
        items: Arc<[I]>,
        concurrency: usize,
        f: F,
    ) -> Vec<Result<()>>
    where
        I: Send + Sync + 'static,
        F: Fn(Arc<Self>, Arc<[I]>, usize, Arc<Deadline>) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        // At most `concurrency` tasks exist at a time: each finished one is collected (and its
        // memory freed) before the next is started.
        let n = items.len();
        let limit = concurrency.max(1);
        let deadline = Arc::new(self.deadline());
        let mut out: Vec<Option<Result<()>>> = (0..n).map(|_| None).collect();
        let mut running = JoinSet::new();
        let mut index_of: HashMap<tokio::task::Id, usize> = HashMap::with_capacity(limit);
        let mut last_error: Option<Error> = None;
        let mut next = 0;
        loop {
            while next < n && running.len() < limit {
                if let Some(e) = &last_error {
                    if deadline.passed_after(Duration::ZERO) {
                        let given_up = e.with_message(format!(
                            "not attempted: no write of this bulk call had succeeded for {:.1}s \
                             (retry_deadline) when its turn came; the last error was: {e}",
                            self.config.retry_deadline.as_secs_f64()
                        ));
                        for slot in &mut out[next..] {
                            *slot = Some(Err(given_up.clone()));
                        }
                        next = n;
                        break;
                    }
                }
                let fut = f(self.clone(), items.clone(), next, deadline.clone());
                let deadline = deadline.clone();
                let handle = running.spawn(async move {
                    let r = fut.await;
                    if r.is_ok() {
                        deadline.progressed();
                    }
                    r
                });
                index_of.insert(handle.id(), next);
                next += 1;
            }
            let Some(done) = running.join_next_with_id().await else {
                break;
            };
            let (id, result) = match done {
                Ok((id, r)) => (id, r),
                Err(e) => (
                    e.id(),
                    Err(Error::Unavailable(format!(
                        "a bulk request did not finish: {e}"
                    ))),
                ),
            };
            if let Err(e) = &result {
                if e.is_transient() {
                    last_error = Some(e.clone());
                }
            }
            if let Some(i) = index_of.remove(&id) {
                out[i] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::Unavailable(
                        "a bulk request was never run".to_string(),
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_by_list_in_order_and_cut_at_the_bounds() {
        let items = [("a", 10), ("b", 10), ("a", 10), ("b", 10), ("c", 10)];
        assert_eq!(
            batches(items.into_iter()),
            vec![vec![0, 2], vec![1, 3], vec![4]]
        );
        // Rows of half the bound: two do not fit (each row counts 32 bytes more).
        let half = BATCH_BYTES / 2;
        let items = [("a", half), ("a", half), ("a", 1), ("a", 1)];
        assert_eq!(batches(items.into_iter()), vec![vec![0], vec![1, 2, 3]]);
        // A row above the bound is a batch of its own; the next row starts another.
        let items = [("a", 1), ("a", BATCH_BYTES * 3), ("a", 1)];
        assert_eq!(batches(items.into_iter()), vec![vec![0], vec![1], vec![2]]);
        // At most BATCH_ROWS rows.
        let items = std::iter::repeat_n(("a", 0), BATCH_ROWS + 1);
        let cut = batches(items);
        assert_eq!(
            cut.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![BATCH_ROWS, 1]
        );
    }

    #[test]
    fn a_failed_batch_fails_each_of_its_items() {
        let groups = vec![vec![0, 2], vec![1]];
        let results = vec![Err(Error::Timeout("t".into())), Ok(())];
        let spread = spread(3, &groups, results);
        assert!(spread[0].is_err() && spread[2].is_err());
        assert!(spread[1].is_ok());
    }
}
