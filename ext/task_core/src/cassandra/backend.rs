//! The Cassandra store behind the one store API: its spec (the config, opened through the
//! process's `Connector`) and its `Backend`, with the sequences that are Cassandra's own (a
//! claim's read, transaction and check after).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CassandraConfig, CassandraStore, Connector, ScanCursor, ServerReport};
use crate::claims::{ClaimBatch, ClaimInfo, ClaimOutcome, ClaimTerms};
use crate::error::Result;
use crate::expiry::lease_covers;
use crate::page::Page;
use crate::record::{TaskKey, TaskRecord};
use crate::schema::Schema;
use crate::store::{Backend, BoxFuture, Cursor, From, Mode, Store, StoreSpec};

impl StoreSpec for CassandraConfig {
    /// The process's store for this config (shared with every adapter of the same config, its
    /// session with every config of the same connection).
    fn open(&self, connector: &Connector) -> Result<Store> {
        Ok(Store::new(Arc::new(Cassandra(connector.store(self)))))
    }

    fn max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    fn log_source(&self) -> Option<String> {
        Some(CassandraConfig::log_source(self))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A Cassandra store as a `Backend` (its bulk calls need the `Arc`).
struct Cassandra(Arc<CassandraStore>);

/// Where the next page of a scan starts: the scan's `after` id, and the driver's state.
struct ScanAt {
    after: Option<String>,
    state: ScanCursor,
}

/// Where the next page of list names starts.
struct ListsAt(ScanCursor);

impl Backend for Cassandra {
    fn mode(&self) -> Mode {
        Mode::Async
    }

    fn put<'a>(
        &'a self,
        record: &'a TaskRecord,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.put_ttl(record, ttl))
    }

    fn put_many(
        &self,
        records: Arc<[TaskRecord]>,
        concurrency: usize,
        batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        Box::pin(async move { Ok(self.0.store_many(records, concurrency, batched).await) })
    }

    fn find<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<TaskRecord>>> {
        Box::pin(self.0.find(key))
    }

    fn delete<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.delete(key))
    }

    fn delete_many(
        &self,
        keys: Arc<[TaskKey]>,
        concurrency: usize,
        batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        Box::pin(async move { Ok(self.0.delete_many(keys, concurrency, batched).await) })
    }

    fn delete_list<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.delete_list(task_list))
    }

    fn page<'a>(
        &'a self,
        task_list: &'a str,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<Page<Cursor>>> {
        Box::pin(async move {
            let (after, from) = match Cursor::read::<ScanAt>(cursor, "scan")? {
                From::Start => (None, None),
                From::AfterId(id) => (Some(id.to_string()), None),
                From::At(at) => (at.after.clone(), Some(at.state.clone())),
            };
            let page = self.0.page(task_list, after.as_deref(), from).await?;
            Ok(Page {
                records: page.records,
                next: page.next.map(|state| Cursor::at(ScanAt { after, state })),
            })
        })
    }

    fn lists_page<'a>(
        &'a self,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<(Vec<String>, Option<Cursor>)>> {
        Box::pin(async move {
            let from = match Cursor::read::<ListsAt>(cursor, "list")? {
                From::At(ListsAt(s)) => Some(s.clone()),
                _ => None,
            };
            let (names, next) = self.0.lists_page(from).await?;
            Ok((names, next.map(|s| Cursor::at(ListsAt(s)))))
        })
    }

    fn count<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.0.count(task_list))
    }

    fn claim<'a>(
        &'a self,
        key: &'a TaskKey,
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimOutcome>> {
        Box::pin(async move {
            let c = &self.0;
            // A task already completed costs a plain read, not a transaction.
            if c.find(key).await?.is_none() {
                return Ok(ClaimOutcome::Gone);
            }
            let began = Instant::now();
            let out = c.claim(key, terms).await?;
            let ClaimOutcome::Won { attempts } = out else {
                return Ok(out);
            };
            // Completed meanwhile (its task is deleted before its claim): not run again.
            if c.find(key).await?.is_none() {
                c.forget_claim(key).await?;
                return Ok(ClaimOutcome::Gone);
            }
            // A claim whose answer took long may keep others out for less than the lease
            // from now: renewed (a renewal that finds the claim taken over means it lapsed).
            if !lease_covers(terms.lease, began.elapsed()) && !c.renew(key, terms).await? {
                return Ok(ClaimOutcome::Held);
            }
            Ok(ClaimOutcome::Won { attempts })
        })
    }

    fn claim_many<'a>(
        &'a self,
        task_list: &'a str,
        ids: &'a [String],
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimBatch>> {
        Box::pin(self.0.claim_many(task_list, ids, terms))
    }

    fn complete_claimed<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.complete_claimed(key))
    }

    fn forget_claims<'a>(
        &'a self,
        task_list: &'a str,
        won: &'a [(String, u32)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.forget_claims(task_list, won))
    }

    fn give_back<'a>(
        &'a self,
        task_list: &'a str,
        held: &'a [(String, u32)],
        owner: &'a str,
    ) -> BoxFuture<'a, Result<u32>> {
        Box::pin(self.0.give_back(task_list, held, owner))
    }

    fn renew<'a>(&'a self, key: &'a TaskKey, terms: &'a ClaimTerms) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.0.renew(key, terms))
    }

    fn release<'a>(
        &'a self,
        key: &'a TaskKey,
        owner: &'a str,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.0.release(key, owner, error))
    }

    fn retry<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.retry(key))
    }

    fn claim_info<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<ClaimInfo>>> {
        Box::pin(self.0.claim_info(key))
    }

    fn claim_infos<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<Vec<ClaimInfo>>> {
        Box::pin(self.0.claim_infos(task_list))
    }

    fn create_schema<'a>(&'a self, schema: &'a Schema) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.create_schema(schema))
    }

    fn create_claims_table(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.0.create_claims_table())
    }

    fn tune_tables(&self, run: bool, gc_grace_seconds: u32) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            if run {
                self.0.tune_tables(gc_grace_seconds).await
            } else {
                Ok(self.0.tuning_cql(gc_grace_seconds))
            }
        })
    }

    fn describe(&self) -> BoxFuture<'_, Result<Option<ServerReport>>> {
        Box::pin(async move { self.0.describe().await.map(Some) })
    }
}
