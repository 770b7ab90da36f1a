//! The one store API: every store behind one type, so that callers never ask which one they
//! hold. Adding a store: a variant in `Store` and `StoreSpec` and in `Cursor`'s positions,
//! an arm in each method below, and one constructor in the binding.
//!
//! Every method is async with the same signature for every store. The memory store's futures
//! are ready at their first poll (`Store::waits` is false): a caller may poll them once
//! instead of handing them to a runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cassandra::{CassandraConfig, CassandraStore, Connector, ScanCursor};
use crate::claims::{ClaimInfo, ClaimOutcome, ClaimTerms};
use crate::error::{Error, Result};
use crate::expiry::{check_lease, check_ttl, lease_covers};
use crate::memory::{MemoryCursor, MemoryStore};
use crate::record::{check_list, TaskKey, TaskRecord};
use crate::schema::Schema;
use crate::Page;

/// A store, ready for requests. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub enum Store {
    Memory(Arc<MemoryStore>),
    Cassandra(Arc<CassandraStore>),
}

/// What a store is made from. A memory store is its own spec; a Cassandra store is opened
/// from its config through the process's `Connector` (which shares sessions), so a process
/// made by fork opens its own.
#[derive(Clone)]
pub enum StoreSpec {
    Memory(Arc<MemoryStore>),
    Cassandra(Box<CassandraConfig>),
}

/// Where the next page of a scan starts. Only the store that made it can read it.
#[derive(Debug, Clone)]
pub struct Cursor(At);

#[derive(Debug, Clone)]
enum At {
    /// The start of a scan that skips every task up to this id.
    AfterId(String),
    Memory(MemoryCursor),
    /// Where the next page starts, of the scan from the start or after an id.
    Cassandra(Option<String>, ScanCursor),
    /// The next page of list names: after this name (memory), at this state (Cassandra).
    MemoryLists(String),
    CassandraLists(ScanCursor),
}

impl Cursor {
    /// A scan's start that skips every task whose id sorts before `id`, and `id` itself: to
    /// resume a long scan where it stopped.
    pub fn after_id(id: &str) -> Cursor {
        Cursor(At::AfterId(id.to_string()))
    }
}

impl StoreSpec {
    pub fn open(&self, connector: &Connector) -> Store {
        match self {
            StoreSpec::Memory(m) => Store::Memory(m.clone()),
            StoreSpec::Cassandra(c) => Store::Cassandra(connector.store(c)),
        }
    }

    /// The Cassandra settings, for the adapter's `options`.
    pub fn cassandra_config(&self) -> Option<&CassandraConfig> {
        match self {
            StoreSpec::Cassandra(c) => Some(c),
            StoreSpec::Memory(_) => None,
        }
    }

    /// Attempts after which a task is dead (None: never).
    pub fn max_attempts(&self) -> Option<u32> {
        match self {
            StoreSpec::Memory(m) => m.max_attempts(),
            StoreSpec::Cassandra(c) => c.max_attempts,
        }
    }

    /// Empties a memory store; a Cassandra store is left alone (false).
    pub fn clear(&self) -> bool {
        match self {
            StoreSpec::Memory(m) => {
                m.clear();
                true
            }
            StoreSpec::Cassandra(_) => false,
        }
    }
}

impl Store {
    /// True when requests wait on I/O and must be driven by the I/O runtime; false when
    /// every future is ready at its first poll.
    pub fn waits(&self) -> bool {
        matches!(self, Store::Cassandra(_))
    }

    /// True when reading the next page ahead of need is worth a request in the background.
    pub fn reads_ahead(&self) -> bool {
        self.waits()
    }

    /// Upserts one task (all four columns), after checking it.
    pub async fn store(&self, record: &TaskRecord) -> Result<()> {
        record.validate()?;
        match self {
            Store::Memory(m) => {
                m.put(record);
                Ok(())
            }
            Store::Cassandra(c) => c.put(record).await,
        }
    }

    /// `store` with a time to live: the task is gone after `ttl` (None: the store's default).
    pub async fn store_ttl(&self, record: &TaskRecord, ttl: Option<Duration>) -> Result<()> {
        record.validate()?;
        if let Some(t) = ttl {
            check_ttl("ttl", t)?;
        }
        match self {
            Store::Memory(m) => {
                m.put_ttl(record, ttl);
                Ok(())
            }
            Store::Cassandra(c) => c.put_ttl(record, ttl).await,
        }
    }

    /// Writes the row as given, checking only its key columns (migrations, repair, tests).
    pub async fn store_raw(&self, record: &TaskRecord) -> Result<()> {
        record.validate_columns()?;
        match self {
            Store::Memory(m) => {
                m.put(record);
                Ok(())
            }
            Store::Cassandra(c) => c.put(record).await,
        }
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
        Ok(match self {
            Store::Memory(m) => m.put_many(&records),
            Store::Cassandra(c) => c.store_many(records, concurrency, batched).await,
        })
    }

    /// The first row under (list, id), or `None`.
    pub async fn find(&self, key: &TaskKey) -> Result<Option<TaskRecord>> {
        match self {
            Store::Memory(m) => Ok(m.find(key)),
            Store::Cassandra(c) => c.find(key).await,
        }
    }

    /// Deletes every type under (list, id); deleting what is not there is fine.
    pub async fn delete(&self, key: &TaskKey) -> Result<()> {
        match self {
            Store::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Store::Cassandra(c) => c.delete(key).await,
        }
    }

    /// Deletes each key; one result per key, in order.
    pub async fn delete_many(
        &self,
        keys: Arc<[TaskKey]>,
        concurrency: usize,
        batched: bool,
    ) -> Result<Vec<Result<()>>> {
        Ok(match self {
            Store::Memory(m) => m.delete_many(&keys),
            Store::Cassandra(c) => c.delete_many(keys, concurrency, batched).await,
        })
    }

    /// Deletes a whole task list.
    pub async fn delete_list(&self, task_list: &str) -> Result<()> {
        check_list(task_list)?;
        match self {
            Store::Memory(m) => {
                m.delete_list(task_list);
                Ok(())
            }
            Store::Cassandra(c) => c.delete_list(task_list).await,
        }
    }

    /// One page of the list from `cursor` (`None`: from the start).
    pub async fn page(&self, task_list: &str, cursor: Option<&Cursor>) -> Result<Page<Cursor>> {
        let foreign = || Error::InvalidArgument("scan cursor does not belong to this store".into());
        match self {
            Store::Memory(m) => {
                let after_id;
                let after = match cursor {
                    None => None,
                    Some(Cursor(At::Memory(a))) => Some(a),
                    Some(Cursor(At::AfterId(id))) => {
                        // Past every type stored under the id (type names are class names).
                        after_id = (id.clone(), char::MAX.to_string());
                        Some(&after_id)
                    }
                    Some(_) => return Err(foreign()),
                };
                let page = m.page(task_list, after, m.page_size())?;
                Ok(Page {
                    records: page.records,
                    next: page.next.map(|a| Cursor(At::Memory(a))),
                })
            }
            Store::Cassandra(c) => {
                let (after, from) = match cursor {
                    None => (None, None),
                    Some(Cursor(At::AfterId(id))) => (Some(id.clone()), None),
                    Some(Cursor(At::Cassandra(after, s))) => (after.clone(), Some(s.clone())),
                    Some(_) => return Err(foreign()),
                };
                let page = c.page(task_list, after.as_deref(), from).await?;
                Ok(Page {
                    records: page.records,
                    next: page.next.map(|s| Cursor(At::Cassandra(after, s))),
                })
            }
        }
    }

    /// Creates what the store needs to hold tasks (Cassandra: keyspace and table); nothing
    /// for a store that needs nothing.
    pub async fn create_schema(&self, schema: &Schema) -> Result<()> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Cassandra(c) => c.create_schema(schema).await,
        }
    }

    /// Claims a task for `terms.owner` for `terms.lease`: won (counting an attempt), held
    /// by another owner, dead (attempts used up), or gone (not stored). A claim the same
    /// owner already holds is renewed and counts no attempt.
    ///
    /// A claim won keeps every other owner out for at least `terms.lease` from the moment this
    /// returns, and lapses by itself within `⌈lease⌉ + 2` seconds of it (see `expiry`).
    pub async fn claim(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<ClaimOutcome> {
        check_lease(terms.lease)?;
        match self {
            Store::Memory(m) => Ok(m.claim(key, terms)),
            Store::Cassandra(c) => {
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
            }
        }
    }

    /// Extends the live claim `terms.owner` holds; false when it holds none. A renewal keeps
    /// others out for at least `terms.lease` from the moment this returns, as a claim does.
    pub async fn renew(&self, key: &TaskKey, terms: &ClaimTerms) -> Result<bool> {
        check_lease(terms.lease)?;
        match self {
            Store::Memory(m) => Ok(m.renew(key, terms)),
            Store::Cassandra(c) => c.renew(key, terms).await,
        }
    }

    /// Ends the live claim `owner` holds, recording `error` ("Class: message") when given;
    /// false when it holds none.
    pub async fn release(&self, key: &TaskKey, owner: &str, error: Option<&str>) -> Result<bool> {
        match self {
            Store::Memory(m) => Ok(m.release(key, owner, error)),
            Store::Cassandra(c) => c.release(key, owner, error).await,
        }
    }

    /// Makes a task claimable again: its attempts and last error cleared.
    pub async fn retry(&self, key: &TaskKey) -> Result<()> {
        match self {
            Store::Memory(m) => {
                m.retry(key);
                Ok(())
            }
            Store::Cassandra(c) => c.retry(key).await,
        }
    }

    /// The claim state of one task (`None`: it has none), read by itself: the rest of its
    /// list's claims are not read.
    pub async fn claim_info(&self, key: &TaskKey) -> Result<Option<ClaimInfo>> {
        match self {
            Store::Memory(m) => Ok(m.claim_info(key)),
            Store::Cassandra(c) => c.claim_info(key).await,
        }
    }

    /// The claim states of a list's tasks, in id order.
    pub async fn claim_infos(&self, task_list: &str) -> Result<Vec<ClaimInfo>> {
        check_list(task_list)?;
        match self {
            Store::Memory(m) => Ok(m.claim_infos(task_list)),
            Store::Cassandra(c) => c.claim_infos(task_list).await,
        }
    }

    /// What the server says about the deployment (`None` for a store with no server).
    pub async fn describe(&self) -> Result<Option<crate::ServerReport>> {
        match self {
            Store::Memory(_) => Ok(None),
            Store::Cassandra(c) => c.describe().await.map(Some),
        }
    }

    /// Creates the claims table of a deployment made before claims existed (nothing for a
    /// store that needs nothing).
    pub async fn create_claims_table(&self) -> Result<()> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Cassandra(c) => c.create_claims_table().await,
        }
    }

    /// The statements that give existing tables the options for churn, with this grace
    /// period (none for a store with no tables); with `run`, runs them and returns those run.
    pub async fn tune_tables(&self, run: bool, gc_grace_seconds: u32) -> Result<Vec<String>> {
        match self {
            Store::Memory(_) => Ok(Vec::new()),
            Store::Cassandra(c) if run => c.tune_tables(gc_grace_seconds).await,
            Store::Cassandra(c) => Ok(c.tuning_cql(gc_grace_seconds)),
        }
    }

    /// How many rows (tasks) the list holds, counted a page at a time.
    pub async fn count(&self, task_list: &str) -> Result<u64> {
        check_list(task_list)?;
        match self {
            Store::Memory(m) => Ok(m.count(task_list)),
            Store::Cassandra(c) => c.count(task_list).await,
        }
    }

    /// One page of the names of the lists that hold tasks, and where the next page starts.
    pub async fn lists_page(
        &self,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<String>, Option<Cursor>)> {
        let foreign = || Error::InvalidArgument("list cursor does not belong to this store".into());
        match self {
            Store::Memory(m) => {
                let after = match cursor {
                    None => None,
                    Some(Cursor(At::MemoryLists(a))) => Some(a.as_str()),
                    Some(_) => return Err(foreign()),
                };
                let (names, more) = m.lists_page(after, m.page_size());
                let next = match (more, names.last()) {
                    (true, Some(last)) => Some(Cursor(At::MemoryLists(last.clone()))),
                    _ => None,
                };
                Ok((names, next))
            }
            Store::Cassandra(c) => {
                let from = match cursor {
                    None => None,
                    Some(Cursor(At::CassandraLists(s))) => Some(s.clone()),
                    Some(_) => return Err(foreign()),
                };
                let (names, next) = c.lists_page(from).await?;
                Ok((names, next.map(|s| Cursor(At::CassandraLists(s)))))
            }
        }
    }
}
