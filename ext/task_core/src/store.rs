//! The one store API. Every store implements `Backend` (in its own module); callers hold a
//! `Store`, which checks what every store would check the same way (records, list names,
//! leases, time to live) and hands the rest to the backend. What a store is made from (its
//! settings) implements `StoreSpec`, which opens it in a process.
//!
//! Adding a store: its module (a `StoreSpec` and a `Backend`), and its adapter class in the
//! binding. Nothing here names a store.
//!
//! # How a store is driven (`Mode`)
//!
//! Every method returns a boxed future, so that one dyn-compatible trait serves stores that
//! wait on I/O and stores that do not, without a procedural macro:
//!
//! * `Mode::Ready`: every future is ready at its first poll and never blocks (memory). The
//!   binding polls it once, holding the GVL: no thread hand-off, no runtime.
//! * `Mode::Async`: futures wait on I/O on the process's tokio runtime (Cassandra). The binding
//!   drives them with the GVL released, interruptibly, and may resume a future after a wake-up.
//! * `Mode::Blocking`: futures are ready at their first poll, but that poll may block (on a
//!   file lock, on disk). The binding polls it once with the GVL released; to end a long
//!   call it calls `Backend::interrupt`, after which the call must return soon, having left
//!   nothing half-done (an interrupted transaction rolls back). When no exception is behind
//!   the interrupt (a trapped signal whose handler returned), the binding makes the same call
//!   again.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::claims::{ClaimBatch, ClaimInfo, ClaimOutcome, ClaimTerms, MAX_CLAIM_BATCH};
use crate::error::{Error, Result};
use crate::expiry::{check_lease, check_ttl};
use crate::page::Page;
use crate::record::{check_list, TaskKey, TaskRecord};
use crate::schema::Schema;
use crate::{Connector, ServerReport};

/// A future a store returns: boxed, so that `Backend` is dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A future that is ready at once with `value`: what a store that does not wait returns.
pub fn done<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// How the binding drives a store's futures (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ready at the first poll, without blocking: polled once, the GVL held.
    Ready,
    /// Waits on I/O on the tokio runtime: driven there, the GVL released.
    Async,
    /// Ready at the first poll, which may block: polled once, the GVL released, and ended
    /// early through `Backend::interrupt`.
    Blocking,
}

/// What every store does. Arguments reach it checked (see `Store`). A method with a default
/// is one a store may have nothing to do for.
pub trait Backend: Send + Sync + 'static {
    /// How its futures are driven.
    fn mode(&self) -> Mode;

    /// Asks the calls running now to end early (`Mode::Blocking`; e.g. `sqlite3_interrupt`).
    /// Called from another thread or from a signal handler (when the waiting Ruby thread is
    /// the only one): it may only do what a signal handler may (set atomics), and must not
    /// lock or allocate.
    fn interrupt(&self) {}

    /// How many times `interrupt` was called so far (`Mode::Blocking`). A store whose
    /// interrupt ends every call running (not just the one Ruby meant) counts them, so that
    /// the binding makes again a call ended by another call's interrupt. The binding reads it
    /// on the calling thread just before each call (and again after a failed one): a store
    /// may count the call's interrupts from that read, so that one that comes before the
    /// call starts is not missed.
    fn interrupts(&self) -> u64 {
        0
    }

    /// Upserts one row (all four columns); `ttl`: it is gone after that (None: the store's
    /// default).
    fn put<'a>(
        &'a self,
        record: &'a TaskRecord,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Upserts every row: one result per row, in order, with at most `concurrency` writes in
    /// flight, grouped by list when `batched` (where the store batches at all).
    fn put_many(
        &self,
        records: Arc<[TaskRecord]>,
        concurrency: usize,
        batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>>;

    /// The first row under (list, id), or `None`.
    fn find<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<TaskRecord>>>;

    /// Deletes every type under (list, id); deleting what is not there is fine.
    fn delete<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>>;

    /// Deletes each key; one result per key, in order.
    fn delete_many(
        &self,
        keys: Arc<[TaskKey]>,
        concurrency: usize,
        batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>>;

    /// Deletes a whole task list.
    fn delete_list<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<()>>;

    /// One page of the list from `cursor` (`None`: the start), in id order. A cursor made by
    /// `Cursor::after_id` starts after that id; one this store made (`Cursor::at`) is read
    /// back with `Cursor::read`, which refuses any other.
    fn page<'a>(
        &'a self,
        task_list: &'a str,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<Page<Cursor>>>;

    /// One page of the names of the lists that hold tasks, and where the next page starts.
    fn lists_page<'a>(
        &'a self,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<(Vec<String>, Option<Cursor>)>>;

    /// How many rows the list holds.
    fn count<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<u64>>;

    /// See `Store::claim`: the whole sequence, as this store needs it.
    fn claim<'a>(
        &'a self,
        key: &'a TaskKey,
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimOutcome>>;

    /// See `Store::claim_many`. By default, one claim after another.
    fn claim_many<'a>(
        &'a self,
        task_list: &'a str,
        ids: &'a [String],
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimBatch>> {
        Box::pin(async move {
            let mut out = ClaimBatch::default();
            for id in ids {
                let key = TaskKey {
                    task_list: task_list.to_string(),
                    id: id.clone(),
                };
                out.outcomes.push(self.claim(&key, terms).await?);
                out.transactions += 1;
            }
            Ok(out)
        })
    }

    /// See `Store::complete_claimed`. By default, `delete`.
    fn complete_claimed<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        self.delete(key)
    }

    /// See `Store::forget_claims`. By default nothing: `complete_claimed` deleted them.
    fn forget_claims<'a>(
        &'a self,
        _task_list: &'a str,
        _won: &'a [(String, u32)],
    ) -> BoxFuture<'a, Result<()>> {
        done(Ok(()))
    }

    /// See `Store::give_back`. By default, one release after another (attempts kept).
    fn give_back<'a>(
        &'a self,
        task_list: &'a str,
        held: &'a [(String, u32)],
        owner: &'a str,
    ) -> BoxFuture<'a, Result<u32>> {
        Box::pin(async move {
            let mut n = 0;
            for (id, _) in held {
                let key = TaskKey {
                    task_list: task_list.to_string(),
                    id: id.clone(),
                };
                n += u32::from(self.release(&key, owner, None).await?);
            }
            Ok(n)
        })
    }

    /// See `Store::renew`.
    fn renew<'a>(&'a self, key: &'a TaskKey, terms: &'a ClaimTerms) -> BoxFuture<'a, Result<bool>>;

    /// See `Store::release`.
    fn release<'a>(
        &'a self,
        key: &'a TaskKey,
        owner: &'a str,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Makes a task claimable again: its attempts and last error cleared.
    fn retry<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>>;

    /// One task's claim state (`None`: it has none), read by itself.
    fn claim_info<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<ClaimInfo>>>;

    /// The claim states of a list's tasks, in id order.
    fn claim_infos<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<Vec<ClaimInfo>>>;

    /// Creates what the store needs to hold tasks.
    fn create_schema<'a>(&'a self, _schema: &'a Schema) -> BoxFuture<'a, Result<()>> {
        done(Ok(()))
    }

    /// Creates the claims table of a deployment made before claims existed.
    fn create_claims_table(&self) -> BoxFuture<'_, Result<()>> {
        done(Ok(()))
    }

    /// The statements that give existing tables the options for churn; with `run`, runs
    /// them and returns those run.
    fn tune_tables(
        &self,
        _run: bool,
        _gc_grace_seconds: u32,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        done(Ok(Vec::new()))
    }

    /// What the server says about the deployment (`None`: a store with no server).
    fn describe(&self) -> BoxFuture<'_, Result<Option<ServerReport>>> {
        done(Ok(None))
    }
}

/// What a store is made from: its settings, checked. Opened once per adapter and process
/// (again in a process made by fork, which must not use its parent's connections or files).
pub trait StoreSpec: Send + Sync + 'static {
    /// The store, ready for requests. `connector` shares what stores of this process may
    /// share (Cassandra's sessions); a store that shares nothing ignores it.
    fn open(&self, connector: &Connector) -> Result<Store>;

    /// Attempts after which a task is dead (None: never).
    fn max_attempts(&self) -> Option<u32>;

    /// Empties the store when that is what `clear` means for it (memory); false otherwise.
    fn clear(&self) -> bool {
        false
    }

    /// What its log lines name as their source (None: it logs nothing).
    fn log_source(&self) -> Option<String> {
        None
    }

    /// The spec itself, for the binding's adapter class of this store (its `options`).
    fn as_any(&self) -> &dyn Any;
}

/// Where the next page of a scan starts. Opaque to callers; only the store that made it can
/// read it (`Cursor::read`).
#[derive(Clone)]
pub struct Cursor(At);

#[derive(Clone)]
enum At {
    /// The start of a scan that skips every task up to this id.
    AfterId(String),
    /// A position private to the store that made it.
    Position(Arc<dyn Any + Send + Sync>),
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            At::AfterId(id) => f.debug_tuple("Cursor::after_id").field(id).finish(),
            At::Position(_) => f.write_str("Cursor(..)"),
        }
    }
}

/// Where a page starts, as a store reads a cursor (`Cursor::read`).
#[derive(Debug)]
pub enum From<'c, T> {
    /// The start.
    Start,
    /// After every task of this id (`Cursor::after_id`).
    AfterId(&'c str),
    /// A position this store made.
    At(&'c T),
}

impl Cursor {
    /// A scan's start that skips every task whose id sorts before `id`, and `id` itself: to
    /// resume a long scan where it stopped.
    pub fn after_id(id: &str) -> Cursor {
        Cursor(At::AfterId(id.to_string()))
    }

    /// A store's own position. Use a type of the store's own for each kind of scan (tasks,
    /// list names), so that a cursor of one is refused by the other.
    pub fn at<T: Any + Send + Sync>(position: T) -> Cursor {
        Cursor(At::Position(Arc::new(position)))
    }

    /// Reads a cursor given to a store's `page` (`what`: "scan") or `lists_page` ("list",
    /// which takes no `after_id`): a position of type `T`, or InvalidArgument for a cursor
    /// made by another kind of store or scan.
    pub fn read<'c, T: Any>(cursor: Option<&'c Cursor>, what: &str) -> Result<From<'c, T>> {
        let foreign =
            || Error::InvalidArgument(format!("{what} cursor does not belong to this store"));
        match cursor {
            None => Ok(From::Start),
            Some(Cursor(At::AfterId(id))) if what == "scan" => Ok(From::AfterId(id)),
            Some(Cursor(At::AfterId(_))) => Err(foreign()),
            Some(Cursor(At::Position(p))) => {
                p.downcast_ref::<T>().map(From::At).ok_or_else(foreign)
            }
        }
    }
}

/// A store, ready for requests. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl Store {
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store(backend)
    }

    /// How the binding drives this store's futures.
    pub fn mode(&self) -> Mode {
        self.0.mode()
    }

    /// See `Backend::interrupt`.
    pub fn interrupt(&self) {
        self.0.interrupt()
    }

    /// See `Backend::interrupts`.
    pub fn interrupts(&self) -> u64 {
        self.0.interrupts()
    }

    /// True when reading the next page ahead of need is worth a request in the background.
    pub fn reads_ahead(&self) -> bool {
        self.mode() == Mode::Async
    }

    /// Upserts one task (all four columns), after checking it.
    pub async fn store(&self, record: &TaskRecord) -> Result<()> {
        record.validate()?;
        self.0.put(record, None).await
    }

    /// `store` with a time to live: the task is gone after `ttl` (None: the store's default).
    pub async fn store_ttl(&self, record: &TaskRecord, ttl: Option<Duration>) -> Result<()> {
        record.validate()?;
        if let Some(t) = ttl {
            check_ttl("ttl", t)?;
        }
        self.0.put(record, ttl).await
    }

    /// Writes the row as given, checking only its key columns (migrations, repair, tests).
    pub async fn store_raw(&self, record: &TaskRecord) -> Result<()> {
        record.validate_columns()?;
        self.0.put(record, None).await
    }

    /// Stores every record: `Err` (nothing written) when any of them is bad, else one
    /// result per record, in order, with at most `concurrency` writes in flight: unlogged
    /// batches of one list each when `batched` (Cassandra), else one request per record.
    pub async fn store_many(
        &self,
        records: Arc<[TaskRecord]>,
        concurrency: usize,
        batched: bool,
    ) -> Result<Vec<Result<()>>> {
        for r in records.iter() {
            r.validate()?;
        }
        self.0.put_many(records, concurrency, batched).await
    }

    /// The first row under (list, id), or `None`.
    pub async fn find(&self, key: &TaskKey) -> Result<Option<TaskRecord>> {
        self.0.find(key).await
    }

    /// Deletes every type under (list, id); deleting what is not there is fine.
    pub async fn delete(&self, key: &TaskKey) -> Result<()> {
        self.0.delete(key).await
    }

    /// Deletes each key; one result per key, in order.
    pub async fn delete_many(
        &self,
        keys: Arc<[TaskKey]>,
        concurrency: usize,
        batched: bool,
    ) -> Result<Vec<Result<()>>> {
        self.0.delete_many(keys, concurrency, batched).await
    }

    /// Deletes a whole task list.
    pub async fn delete_list(&self, task_list: &str) -> Result<()> {
        check_list(task_list)?;
        self.0.delete_list(task_list).await
    }

    /// One page of the list from `cursor` (`None`: from the start).
    pub async fn page(&self, task_list: &str, cursor: Option<&Cursor>) -> Result<Page<Cursor>> {
        check_list(task_list)?;
        self.0.page(task_list, cursor).await
    }

    /// Creates what the store needs to hold tasks (Cassandra: keyspace and table); nothing
    /// for a store that needs nothing.
    pub async fn create_schema(&self, schema: &Schema) -> Result<()> {
        self.0.create_schema(schema).await
    }

    /// Claims a task for `terms.owner` for `terms.lease`: won (counting an attempt), held
    /// by another owner, dead (attempts used up), or gone (not stored). A claim the same
    /// owner already holds is renewed and counts no attempt.
    ///
    /// A claim won keeps every other owner out for at least `terms.lease` from the moment this
    /// returns, and lapses by itself within `⌈lease⌉ + 2` seconds of it (see `expiry`).
    pub async fn claim(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<ClaimOutcome> {
        check_lease(terms.lease)?;
        self.0.claim(key, terms).await
    }

    /// Claims up to `MAX_CLAIM_BATCH` tasks of one list for `terms.owner` in one transaction
    /// (on Cassandra, one conditional batch over rows of the list's claims partition, sent
    /// again without the rows another worker took first, a bounded number of times): one
    /// outcome per id, as `claim` gives it, with the collisions met.
    ///
    /// Unlike `claim`, a claim won here is not renewed when the call took long: the caller
    /// counts each lease from the moment it sent the call (the store's lease starts later, and
    /// lasts at least `terms.lease` plus one second from that moment), and renews a task
    /// before working on it once too little of that is left.
    pub async fn claim_many(
        &self,
        task_list: &str,
        ids: &[String],
        terms: &ClaimTerms,
    ) -> Result<ClaimBatch> {
        check_lease(terms.lease)?;
        check_list(task_list)?;
        if ids.len() > MAX_CLAIM_BATCH {
            return Err(Error::InvalidArgument(format!(
                "claiming {} tasks of list {task_list:?} at once: at most {MAX_CLAIM_BATCH} a call",
                ids.len()
            )));
        }
        for id in ids {
            crate::record::check_key(task_list, id)?;
        }
        if ids.is_empty() {
            return Ok(ClaimBatch::default());
        }
        self.0.claim_many(task_list, ids, terms).await
    }

    /// Completes a task this process claimed with `claim_many`: the task is deleted at once;
    /// on Cassandra its claim is left for `forget_claims`, which deletes the claims of many
    /// completed tasks in one transaction (elsewhere it is deleted with the task).
    pub async fn complete_claimed(&self, key: &TaskKey) -> Result<()> {
        self.0.complete_claimed(key).await
    }

    /// Deletes the claims of tasks `complete_claimed` completed (see there), each given with
    /// the attempts it was won with: a claim that changed since (the task was saved again and
    /// another worker claimed it, counting an attempt) is another's, and is left alone.
    pub async fn forget_claims(&self, task_list: &str, won: &[(String, u32)]) -> Result<()> {
        check_list(task_list)?;
        if won.is_empty() {
            return Ok(());
        }
        self.0.forget_claims(task_list, won).await
    }

    /// Gives back claims `owner` won with `claim_many` and did not work on: each still held
    /// by it (with the attempts it was won with) is released and its attempt uncounted.
    /// Returns how many were given back.
    pub async fn give_back(
        &self,
        task_list: &str,
        held: &[(String, u32)],
        owner: &str,
    ) -> Result<u32> {
        check_list(task_list)?;
        if held.is_empty() {
            return Ok(0);
        }
        self.0.give_back(task_list, held, owner).await
    }

    /// Extends the live claim `terms.owner` holds; false when it holds none. A renewal keeps
    /// others out for at least `terms.lease` from the moment this returns, as a claim does.
    pub async fn renew(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<bool> {
        check_lease(terms.lease)?;
        self.0.renew(key, terms).await
    }

    /// Ends the live claim `owner` holds, recording `error` ("Class: message") when given;
    /// false when it holds none.
    pub async fn release(&self, key: &TaskKey, owner: &str, error: Option<&str>) -> Result<bool> {
        self.0.release(key, owner, error).await
    }

    /// Makes a task claimable again: its attempts and last error cleared.
    pub async fn retry(&self, key: &TaskKey) -> Result<()> {
        self.0.retry(key).await
    }

    /// The claim state of one task (`None`: it has none), read by itself: the rest of its
    /// list's claims are not read.
    pub async fn claim_info(&self, key: &TaskKey) -> Result<Option<ClaimInfo>> {
        self.0.claim_info(key).await
    }

    /// The claim states of a list's tasks, in id order.
    pub async fn claim_infos(&self, task_list: &str) -> Result<Vec<ClaimInfo>> {
        check_list(task_list)?;
        self.0.claim_infos(task_list).await
    }

    /// What the server says about the deployment (`None` for a store with no server).
    pub async fn describe(&self) -> Result<Option<ServerReport>> {
        self.0.describe().await
    }

    /// Creates the claims table of a deployment made before claims existed (nothing for a
    /// store that needs nothing).
    pub async fn create_claims_table(&self) -> Result<()> {
        self.0.create_claims_table().await
    }

    /// The statements that give existing tables the options for churn, with this grace
    /// period (none for a store with no tables); with `run`, runs them and returns those run.
    pub async fn tune_tables(&self, run: bool, gc_grace_seconds: u32) -> Result<Vec<String>> {
        self.0.tune_tables(run, gc_grace_seconds).await
    }

    /// How many rows (tasks) the list holds, counted a page at a time.
    pub async fn count(&self, task_list: &str) -> Result<u64> {
        check_list(task_list)?;
        self.0.count(task_list).await
    }

    /// One page of the names of the lists that hold tasks, and where the next page starts.
    pub async fn lists_page(
        &self,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<String>, Option<Cursor>)> {
        self.0.lists_page(cursor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use std::task::{Context, Poll, Waker};

    /// Polls a future of a store that does not wait, once.
    fn now<T>(fut: impl Future<Output = T>) -> T {
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("a ready store had to wait"),
        }
    }

    fn record(id: &str) -> TaskRecord {
        TaskRecord {
            task_list: "l".into(),
            id: id.into(),
            type_name: "T".into(),
            data: Some("{}".into()),
            saved_at: None,
        }
    }

    #[test]
    fn a_cursor_is_read_back_only_by_the_kind_of_store_and_scan_that_made_it() {
        struct Mine(u32);
        struct Other;
        let c = Cursor::at(Mine(7));
        assert!(matches!(
            Cursor::read::<Mine>(Some(&c), "scan"),
            Ok(From::At(Mine(7)))
        ));
        let e = Cursor::read::<Other>(Some(&c), "scan")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            Error::InvalidArgument("scan cursor does not belong to this store".into()).to_string()
        );
        let after = Cursor::after_id("b");
        assert!(matches!(
            Cursor::read::<Mine>(Some(&after), "scan"),
            Ok(From::AfterId("b"))
        ));
        let e = Cursor::read::<Mine>(Some(&after), "list")
            .map(|_| ())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("list cursor does not belong to this store"),
            "{e}"
        );
        assert!(matches!(
            Cursor::read::<Mine>(None, "list"),
            Ok(From::Start)
        ));
    }

    #[test]
    fn the_store_checks_before_the_backend_and_refuses_another_stores_cursor() {
        let store = Store::new(Arc::new(MemoryStore::with_page_size(2)));
        assert_eq!(store.mode(), Mode::Ready);
        assert!(!store.reads_ahead());
        let mut bad = record("x");
        bad.task_list = String::new();
        assert!(now(store.store(&bad)).is_err());
        for id in ["a", "b", "c"] {
            now(store.store(&record(id))).unwrap();
        }
        let first = now(store.page("l", None)).unwrap();
        assert_eq!(first.records.len(), 2);
        let next = first.next.expect("a second page");
        let second = now(store.page("l", Some(&next))).unwrap();
        assert_eq!(second.records[0].id, "c");
        // A page cursor is not a list-name cursor, and a foreign one is refused.
        assert!(now(store.lists_page(Some(&next))).is_err());
        let foreign = Cursor::at(0u8);
        assert!(now(store.page("l", Some(&foreign))).is_err());
        let after = now(store.page("l", Some(&Cursor::after_id("a")))).unwrap();
        assert_eq!(after.records[0].id, "b");
    }
}
