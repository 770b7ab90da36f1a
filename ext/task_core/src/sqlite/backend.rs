//! The SQLite store behind the one store API: its spec (`SqliteSpec`, which opens and checks
//! the file when it is made) and its `Backend` (`Mode::Blocking`).
//!
//! Interrupts: `Backend::interrupt` may run in a signal handler, so all it does is bump the
//! spec's interrupt count (an atomic). Each call watches that count from the moment it
//! starts (`SqliteStore::watching`): SQLite's busy handler and progress handler look at it
//! every few milliseconds or virtual machine steps and end the call, whose transaction rolls
//! back. The count is shared by every call of the store in this process, so an interrupt
//! meant for one call also ends the others running at that moment; each of those sees the
//! count moved (`Backend::interrupts`) and the binding makes it again.

use std::any::Any;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{wait, SqliteConfig, SqliteCursor, SqliteStore};
use crate::claims::{ClaimBatch, ClaimInfo, ClaimOutcome, ClaimTerms};
use crate::error::{Error, Result};
use crate::page::Page;
use crate::record::{TaskKey, TaskRecord};
use crate::schema::Schema;
use crate::store::{done, Backend, BoxFuture, Cursor, From, Mode, Store, StoreSpec};
use crate::Connector;

/// A SQLite store's spec: the file, opened and checked when the spec is made (so that a file
/// that is not a task database is refused then, with nothing changed), and the count its
/// interrupts bump. Every process uses the same `SqliteStore`: its pool opens the child's
/// own connections after a fork (see `SqliteStore::close_idle`).
#[derive(Clone)]
pub struct SqliteSpec {
    store: Arc<SqliteStore>,
    interrupts: Arc<AtomicU64>,
}

impl SqliteSpec {
    /// Opens the file (see `SqliteStore::open`).
    pub fn open(config: SqliteConfig) -> Result<SqliteSpec> {
        Ok(SqliteSpec {
            store: Arc::new(SqliteStore::open(config)?),
            interrupts: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn store(&self) -> &Arc<SqliteStore> {
        &self.store
    }

    pub fn config(&self) -> &SqliteConfig {
        self.store.config()
    }

    /// Runs `f` on the store so that this spec's backend's `interrupt` ends it.
    pub fn call<R>(&self, f: impl FnOnce(&SqliteStore) -> R) -> R {
        watch(&self.store, &self.interrupts, f)
    }
}

thread_local! {
    /// The interrupt count the binding read on this thread just before its next call
    /// (`Backend::interrupts`): that call counts interrupts from then, so that one that
    /// came between the binding's read and the call's start is not missed.
    static ARMED: Cell<Option<u64>> = const { Cell::new(None) };
}

fn watch<R>(store: &SqliteStore, count: &Arc<AtomicU64>, f: impl FnOnce(&SqliteStore) -> R) -> R {
    let start = ARMED
        .with(Cell::take)
        .unwrap_or_else(|| count.load(Ordering::Acquire));
    store.watching(count, start, f)
}

impl StoreSpec for SqliteSpec {
    fn open(&self, _connector: &Connector) -> Result<Store> {
        Ok(Store::new(Arc::new(Sqlite {
            store: Arc::clone(&self.store),
            interrupts: Arc::clone(&self.interrupts),
        })))
    }

    fn max_attempts(&self) -> Option<u32> {
        self.store.max_attempts()
    }

    fn log_source(&self) -> Option<String> {
        None
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A SQLite store as a `Backend`.
struct Sqlite {
    store: Arc<SqliteStore>,
    interrupts: Arc<AtomicU64>,
}

/// Where the next page of list names starts: after this name.
struct ListsAfter(String);

impl Sqlite {
    /// `f`, watching this store's interrupts, as a ready future.
    fn run<'a, T: Send + 'a>(
        &'a self,
        f: impl FnOnce(&SqliteStore) -> Result<T>,
    ) -> BoxFuture<'a, Result<T>> {
        done(watch(&self.store, &self.interrupts, f))
    }

    /// A bulk call's results, or one error when it was interrupted (some chunks may have been
    /// applied: making the call again writes them again, which an upsert or a delete allows).
    fn bulk<'a>(
        &'a self,
        what: &'static str,
        f: impl FnOnce(&SqliteStore) -> Vec<Result<()>>,
    ) -> BoxFuture<'a, Result<Vec<Result<()>>>> {
        self.run(|s| {
            let out = f(s);
            if wait::interrupted() {
                return Err(Error::Timeout(format!(
                    "{what} on {} was interrupted",
                    s.path().display()
                )));
            }
            Ok(out)
        })
    }
}

impl Backend for Sqlite {
    fn mode(&self) -> Mode {
        Mode::Blocking
    }

    /// Bumps the interrupt count: signal-safe (no lock, no allocation).
    fn interrupt(&self) {
        self.interrupts.fetch_add(1, Ordering::AcqRel);
    }

    /// Also arms this thread's next call to count interrupts from this read (see `ARMED`).
    fn interrupts(&self) -> u64 {
        let n = self.interrupts.load(Ordering::Acquire);
        ARMED.with(|a| a.set(Some(n)));
        n
    }

    fn put<'a>(
        &'a self,
        record: &'a TaskRecord,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.run(|s| s.put_ttl(record, ttl))
    }

    fn put_many(
        &self,
        records: Arc<[TaskRecord]>,
        _concurrency: usize,
        _batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        self.bulk("saving tasks", move |s| s.put_many(&records))
    }

    fn find<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<TaskRecord>>> {
        self.run(|s| s.find(key))
    }

    fn delete<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        self.run(|s| s.delete(key))
    }

    fn delete_many(
        &self,
        keys: Arc<[TaskKey]>,
        _concurrency: usize,
        _batched: bool,
    ) -> BoxFuture<'_, Result<Vec<Result<()>>>> {
        self.bulk("deleting tasks", move |s| s.delete_many(&keys))
    }

    fn delete_list<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<()>> {
        self.run(|s| s.delete_list(task_list))
    }

    fn page<'a>(
        &'a self,
        task_list: &'a str,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<Page<Cursor>>> {
        let after = match Cursor::read::<SqliteCursor>(cursor, "scan") {
            Err(e) => return done(Err(e)),
            Ok(From::Start) => None,
            Ok(From::AfterId(id)) => Some(SqliteCursor::AfterId(id.to_string())),
            Ok(From::At(c)) => Some(c.clone()),
        };
        self.run(move |s| {
            s.page(task_list, after.as_ref()).map(|p| Page {
                records: p.records,
                next: p.next.map(Cursor::at),
            })
        })
    }

    fn lists_page<'a>(
        &'a self,
        cursor: Option<&'a Cursor>,
    ) -> BoxFuture<'a, Result<(Vec<String>, Option<Cursor>)>> {
        let after = match Cursor::read::<ListsAfter>(cursor, "list") {
            Err(e) => return done(Err(e)),
            Ok(From::At(ListsAfter(a))) => Some(a.as_str()),
            Ok(_) => None,
        };
        self.run(move |s| {
            s.lists_page(after)
                .map(|(names, next)| (names, next.map(|n| Cursor::at(ListsAfter(n)))))
        })
    }

    fn count<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<u64>> {
        self.run(|s| s.count(task_list))
    }

    fn claim<'a>(
        &'a self,
        key: &'a TaskKey,
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimOutcome>> {
        self.run(|s| s.claim(key, terms))
    }

    fn claim_many<'a>(
        &'a self,
        task_list: &'a str,
        ids: &'a [String],
        terms: &'a ClaimTerms,
    ) -> BoxFuture<'a, Result<ClaimBatch>> {
        self.run(|s| s.claim_many(task_list, ids, terms))
    }

    fn give_back<'a>(
        &'a self,
        task_list: &'a str,
        held: &'a [(String, u32)],
        owner: &'a str,
    ) -> BoxFuture<'a, Result<u32>> {
        self.run(|s| s.give_back(task_list, held, owner))
    }

    fn renew<'a>(&'a self, key: &'a TaskKey, terms: &'a ClaimTerms) -> BoxFuture<'a, Result<bool>> {
        self.run(|s| s.renew(key, terms))
    }

    fn release<'a>(
        &'a self,
        key: &'a TaskKey,
        owner: &'a str,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        self.run(|s| s.release(key, owner, error))
    }

    fn retry<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<()>> {
        self.run(|s| s.retry(key))
    }

    fn claim_info<'a>(&'a self, key: &'a TaskKey) -> BoxFuture<'a, Result<Option<ClaimInfo>>> {
        self.run(|s| s.claim_info(key))
    }

    fn claim_infos<'a>(&'a self, task_list: &'a str) -> BoxFuture<'a, Result<Vec<ClaimInfo>>> {
        self.run(|s| s.claim_infos(task_list))
    }

    fn create_schema<'a>(&'a self, _schema: &'a Schema) -> BoxFuture<'a, Result<()>> {
        self.run(|s| s.create_schema())
    }
}
