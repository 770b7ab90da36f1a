//! The Cassandra (or Scylla) store on the `scylla` driver: prepared statements, manual paging,
//! bounded retries of idempotent statements, and one session per connection config.

mod claims;
mod config;
mod errors;

use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

pub use config::{
    consistency_name, parse_consistency, CassandraConfig, ConnectionKey, Consistency, Level, Serial,
};
use errors::{connect_error, connect_timeout, execution_error, prepare_error, unknown_outcome, Op};

use crate::error::{Error, Result};
use crate::log::Level as LogLevel;
use crate::record::{check_list, TaskKey, TaskRecord};
use crate::schema::{churn_options, Schema};
use crate::Page;

/// An OpenSSL context that verifies the nodes' certificates against the configured CA file
/// (or the system's CAs).
fn tls_context(conn: &ConnectionKey) -> Result<openssl::ssl::SslContext> {
    use openssl::ssl::{SslContextBuilder, SslMethod, SslVerifyMode};
    let bad =
        |e: openssl::error::ErrorStack| Error::InvalidArgument(format!("TLS setup failed: {e}"));
    let mut ctx = SslContextBuilder::new(SslMethod::tls()).map_err(bad)?;
    match &conn.tls_ca_file {
        Some(ca) => ctx.set_ca_file(ca).map_err(|e| {
            Error::InvalidArgument(format!(
                "tls_ca_file {ca:?} holds no usable CA certificate: {e}"
            ))
        })?,
        None => ctx.set_default_verify_paths().map_err(bad)?,
    }
    ctx.set_verify(SslVerifyMode::PEER);
    Ok(ctx.build())
}

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
fn batches<'a>(items: impl Iterator<Item = (&'a str, usize)>) -> Vec<Vec<usize>> {
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
fn spread(n: usize, groups: &[Vec<usize>], results: Vec<Result<()>>) -> Vec<Result<()>> {
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

/// See `CassandraStore::describe`.
#[derive(Debug, Clone)]
pub struct ServerReport {
    pub release_version: String,
    pub cql_version: String,
    pub server_time_ms: i64,
    /// The keyspace's replication options; `None` when the keyspace does not exist.
    pub replication: Option<Vec<(String, String)>>,
    /// The task table and the claims table, by name, with their options when they exist.
    pub tables: Vec<(String, Option<TableReport>)>,
}

/// A table's options that matter for lists that churn.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub gc_grace_seconds: i32,
    pub compaction: Vec<(String, String)>,
}

/// Where the next page of a Cassandra scan starts.
pub type ScanCursor = PagingState;

type SessionSlot = Arc<OnceCell<Arc<Session>>>;

/// Hands out stores, sharing one driver session among all stores with the same connection
/// settings and one store among all adapters with the same config. It holds neither: a store
/// lives as long as someone holds it, and its session as long as some store using it lives,
/// so a session nobody can use any more is closed. Belongs to one process: the extension
/// makes a new one after a fork.
#[derive(Default)]
pub struct Connector {
    sessions: Mutex<HashMap<ConnectionKey, Weak<OnceCell<Arc<Session>>>>>,
    stores: Mutex<HashMap<CassandraConfig, Weak<CassandraStore>>>,
}

impl Connector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The store for this config. Cheap: nothing connects until the first request.
    pub fn store(&self, config: &CassandraConfig) -> Arc<CassandraStore> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(config).and_then(Weak::upgrade) {
            return s;
        }
        stores.retain(|_, s| s.strong_count() > 0);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.strong_count() > 0);
        let key = config.connection.clone();
        let slot = match sessions.get(&key).and_then(Weak::upgrade) {
            Some(slot) => slot,
            None => {
                let slot = SessionSlot::default();
                sessions.insert(key, Arc::downgrade(&slot));
                slot
            }
        };
        let store = Arc::new(CassandraStore::new(config.clone(), slot));
        stores.insert(config.clone(), Arc::downgrade(&store));
        store
    }

    /// How many driver sessions this process holds open.
    pub fn open_sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .filter(|s| s.initialized())
            .count()
    }
}

/// When a call stops retrying. One call: its retry deadline after it began. A bulk call:
/// its retry deadline after the last of its writes that succeeded (or after it began), so a
/// long bulk call on a healthy cluster is never cut short, and one whose node stops
/// answering ends about a retry deadline (plus the request in flight) later.
pub struct Deadline {
    start: Instant,
    retry: Duration,
    /// Milliseconds from `start` to the last progress.
    progress_ms: AtomicU64,
}

impl Deadline {
    pub fn new(retry: Duration) -> Self {
        Deadline {
            start: Instant::now(),
            retry,
            progress_ms: AtomicU64::new(0),
        }
    }

    fn at(&self) -> Instant {
        self.start + Duration::from_millis(self.progress_ms.load(Ordering::Relaxed)) + self.retry
    }

    /// True when waiting `pause` more would pass the deadline.
    fn passed_after(&self, pause: Duration) -> bool {
        Instant::now() + pause >= self.at()
    }

    fn progressed(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

struct Statements {
    insert: PreparedStatement,
    insert_ttl: PreparedStatement,
    find: PreparedStatement,
    scan: PreparedStatement,
    scan_after: PreparedStatement,
    count: PreparedStatement,
    lists: PreparedStatement,
    delete: PreparedStatement,
    delete_list: PreparedStatement,
}

pub struct CassandraStore {
    config: CassandraConfig,
    hosts: String,
    table: String,
    session: SessionSlot,
    statements: OnceCell<Statements>,
    /// Prepared on the first claim call or deletion (the claims table may not exist where
    /// claims are not used: deletions then leave claims alone).
    claims: claims::ClaimStatements,
    /// True once this store has been asked for a claim: its deletions then delete claims by a
    /// transaction without reading first (see `claims.rs`).
    claimed: std::sync::atomic::AtomicBool,
    /// When the claims table was last found missing (deletions then skip claims for a while).
    claims_absent: Mutex<Option<Instant>>,
}

type Row = (String, String, Option<String>, String, Option<i64>);

impl CassandraStore {
    fn new(config: CassandraConfig, session: SessionSlot) -> Self {
        CassandraStore {
            hosts: config.host_list(),
            table: config.qualified_table(),
            config,
            session,
            statements: OnceCell::new(),
            claims: claims::ClaimStatements::default(),
            claimed: std::sync::atomic::AtomicBool::new(false),
            claims_absent: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &CassandraConfig {
        &self.config
    }

    /// What log lines about this store name as their source: its table and hosts.
    pub fn log_source(&self) -> String {
        self.config.log_source()
    }

    fn log(&self, level: LogLevel, message: impl FnOnce() -> String) {
        if crate::log::enabled() {
            crate::log::log(level, &self.log_source(), message);
        }
    }

    fn op<'a>(&'a self, what: &'a str, is_write: bool) -> Op<'a> {
        Op {
            what,
            hosts: &self.hosts,
            table: &self.table,
            is_write,
        }
    }

    async fn session(&self) -> Result<&Arc<Session>> {
        // A failed connect is not remembered: the next call tries again, so the store
        // recovers by itself once a node answers.
        self.session
            .get_or_try_init(|| async {
                let conn = &self.config.connection;
                let mut profile = ExecutionProfile::builder()
                    .consistency(self.config.consistency.0)
                    .request_timeout(Some(self.config.request_timeout))
                    .retry_policy(Arc::new(FallthroughRetryPolicy));
                if let Some(dc) = &conn.local_datacenter {
                    profile = profile.load_balancing_policy(
                        DefaultPolicy::builder()
                            .prefer_datacenter(dc.clone())
                            .permit_dc_failover(conn.datacenter_failover)
                            .build(),
                    );
                }
                let mut builder = SessionBuilder::new()
                    .known_nodes(conn.contact_points())
                    .connection_timeout(conn.connect_timeout)
                    // The keyspaces' replication (minimal metadata, no columns or types): without
                    // it the driver cannot tell a partition's replicas, and token-aware routing
                    // falls back to any node, a second hop for most requests on a cluster.
                    .fetch_schema_metadata(true)
                    .fetch_full_schema_metadata(false)
                    .default_execution_profile_handle(profile.build().into_handle());
                if let (Some(u), Some(p)) = (&conn.username, &conn.password) {
                    builder = builder.user(u, p);
                }
                if conn.tls {
                    builder = builder.tls_context(Some(tls_context(conn)?));
                }
                // Building also fetches cluster metadata; bound the whole of it.
                let limit = conn.connect_timeout * 2;
                let opened = match tokio::time::timeout(limit, builder.build()).await {
                    Ok(Ok(s)) => Ok(Arc::new(s)),
                    Ok(Err(e)) => Err(connect_error(&e, &self.hosts)),
                    Err(_) => Err(connect_timeout(&self.hosts, limit.as_secs_f64())),
                };
                // A failure is logged by the call that tried (with its attempt number).
                if let Ok(s) = &opened {
                    self.log(LogLevel::Info, || {
                        let nodes = s.get_cluster_state().get_nodes_info().len();
                        format!("session opened to {} ({nodes} nodes known)", self.hosts)
                    });
                }
                opened
            })
            .await
    }

    async fn statements(&self) -> Result<(&Session, &Statements)> {
        let session = self.session().await?;
        let stmts = self
            .statements
            .get_or_try_init(|| async {
                let t = &self.table;
                // The write time comes with each row for `saved_at`; it is not a column of the table.
                let cols = "task_list, id, data, type, WRITETIME(data)";
                let prep = |cql: String, idempotent: bool| async move {
                    let mut p = session
                        .prepare(cql)
                        .await
                        .map_err(|e| prepare_error(&self.op("preparing statements", false), &e))?;
                    p.set_consistency(self.config.consistency.0);
                    p.set_request_timeout(Some(self.config.request_timeout));
                    p.set_is_idempotent(idempotent);
                    p.set_page_size(self.config.page_size);
                    Ok::<_, Error>(p)
                };
                Ok::<_, Error>(Statements {
                    insert: prep(
                        format!("INSERT INTO {t} (task_list, id, data, type) VALUES (?, ?, ?, ?)"),
                        true,
                    )
                    .await?,
                    insert_ttl: prep(
                        format!(
                            "INSERT INTO {t} (task_list, id, data, type) VALUES (?, ?, ?, ?) \
                             USING TTL ?"
                        ),
                        true,
                    )
                    .await?,
                    find: prep(
                        format!("SELECT {cols} FROM {t} WHERE task_list = ? AND id = ? LIMIT 1"),
                        true,
                    )
                    .await?,
                    scan: prep(format!("SELECT {cols} FROM {t} WHERE task_list = ?"), true).await?,
                    scan_after: prep(
                        format!("SELECT {cols} FROM {t} WHERE task_list = ? AND id > ?"),
                        true,
                    )
                    .await?,
                    count: prep(format!("SELECT id FROM {t} WHERE task_list = ?"), true).await?,
                    lists: prep(format!("SELECT DISTINCT task_list FROM {t}"), true).await?,
                    delete: prep(
                        format!("DELETE FROM {t} WHERE task_list = ? AND id = ?"),
                        true,
                    )
                    .await?,
                    delete_list: prep(format!("DELETE FROM {t} WHERE task_list = ?"), true).await?,
                })
            })
            .await?;
        Ok((session.as_ref(), stmts))
    }

    /// A deadline for one call beginning now.
    fn deadline(&self) -> Deadline {
        Deadline::new(self.config.retry_deadline)
    }

    /// Runs an idempotent request, retrying transient failures with backoff until `deadline`.
    /// Non-transient errors come back at once. Every attempt is also bounded here, whatever
    /// the driver does: no call can hang.
    async fn retrying<T, F, Fut>(
        &self,
        what: &(dyn Fn() -> String + Sync),
        is_write: bool,
        deadline: &Deadline,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = Duration::from_millis(50);
        let guard = self.config.request_timeout + self.config.connection.connect_timeout * 2;
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // The driver's request future is several KB; boxed, it is built once on the heap
            // instead of being copied each time the futures around it move (into a task,
            // into the timeout): measured, those copies were a fifth of a bulk write's CPU.
            let outcome = match tokio::time::timeout(guard, Box::pin(attempt())).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout(format!(
                    "{} on {} at {} did not finish within {:.1}s{}",
                    what(),
                    self.table,
                    self.hosts,
                    guard.as_secs_f64(),
                    unknown_outcome(is_write)
                ))),
            };
            match outcome {
                Err(e) if e.is_transient() && !deadline.passed_after(backoff) => {
                    self.log(LogLevel::Warn, || {
                        format!(
                            "{} failed (attempt {attempts}): {}; retrying in {} ms",
                            what(),
                            e.message(),
                            backoff.as_millis()
                        )
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                other => {
                    crate::log::note_attempts(attempts);
                    let took = started.elapsed().as_secs_f64();
                    match &other {
                        Ok(_) if attempts > 1 => self.log(LogLevel::Info, || {
                            format!(
                                "{} succeeded at attempt {attempts}, {took:.1} s after the first",
                                what()
                            )
                        }),
                        Err(e) if attempts > 1 || e.is_transient() => {
                            self.log(LogLevel::Error, || {
                                format!(
                                    "{} gave up after {attempts} attempts in {took:.1} s: {}",
                                    what(),
                                    e.message()
                                )
                            })
                        }
                        _ => {}
                    }
                    if let Some(slow) = self.config.slow_call {
                        if took > slow.as_secs_f64() {
                            self.log(LogLevel::Warn, || {
                                format!(
                                    "slow call: {} took {took:.3} s ({attempts} attempts)",
                                    what()
                                )
                            });
                        }
                    }
                    return other;
                }
            }
        }
    }

    /// Upserts one task (all four columns).
    pub async fn store(&self, record: &TaskRecord) -> Result<()> {
        record.validate()?;
        self.put(record).await
    }

    /// Writes the row as given, checking only the key columns (see `MemoryStore::store_raw`).
    pub async fn store_raw(&self, record: &TaskRecord) -> Result<()> {
        record.validate_columns()?;
        self.put(record).await
    }

    /// Writes a row already checked (see `Store`).
    pub(crate) async fn put(&self, record: &TaskRecord) -> Result<()> {
        self.put_ttl(record, None).await
    }

    /// Writes a row already checked that expires after `ttl` (or the config's default).
    pub(crate) async fn put_ttl(&self, record: &TaskRecord, ttl: Option<Duration>) -> Result<()> {
        self.put_until(record, ttl, &self.deadline()).await
    }

    async fn put_until(
        &self,
        record: &TaskRecord,
        ttl: Option<Duration>,
        deadline: &Deadline,
    ) -> Result<()> {
        let what = || format!("saving task {:?} of list {:?}", record.id, record.task_list);
        let values = (
            &record.task_list,
            &record.id,
            &record.data,
            &record.type_name,
        );
        // TTLs are whole seconds, at least one.
        let ttl = ttl
            .or(self.config.default_ttl)
            .map(|t| t.as_secs_f64().ceil().clamp(1.0, i32::MAX as f64) as i32);
        self.retrying(&what, true, deadline, || async {
            let (session, st) = self.statements().await?;
            let sent = match ttl {
                None => session.execute_unpaged(&st.insert, values).await,
                Some(t) => {
                    let (l, i, d, ty) = values;
                    session
                        .execute_unpaged(&st.insert_ttl, (l, i, d, ty, t))
                        .await
                }
            };
            sent.map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await
    }

    /// The first row under (list, id), or `None`.
    pub async fn find(&self, key: &TaskKey) -> Result<Option<TaskRecord>> {
        let what = || format!("finding task {:?} of list {:?}", key.id, key.task_list);
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.statements().await?;
            let res = session
                .execute_unpaged(&st.find, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let mut rows = self.rows(res, &key.task_list)?;
            Ok(rows.pop())
        })
        .await
    }

    /// Deletes every type under (list, id); deleting what is not there is fine.
    pub async fn delete(&self, key: &TaskKey) -> Result<()> {
        self.delete_until(key, &self.deadline()).await
    }

    async fn delete_until(&self, key: &TaskKey, deadline: &Deadline) -> Result<()> {
        let what = || format!("completing task {:?} of list {:?}", key.id, key.task_list);
        self.retrying(&what, true, deadline, || async {
            let (session, st) = self.statements().await?;
            session
                .execute_unpaged(&st.delete, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await?;
        // The task first, then its claim: a claim taken in between finds the task gone.
        self.delete_claim(key, deadline).await
    }

    /// Deletes a whole task list (one partition).
    pub async fn delete_list(&self, task_list: &str) -> Result<()> {
        check_list(task_list)?;
        let what = || format!("deleting task list {task_list:?}");
        self.retrying(&what, true, &self.deadline(), || async {
            let (session, st) = self.statements().await?;
            session
                .execute_unpaged(&st.delete_list, (task_list,))
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await?;
        self.delete_claims_of(task_list, &self.deadline()).await
    }

    /// One page of the list, starting where `cursor` says (`None`: from the start).
    /// `after`: only tasks whose id sorts after it (a cursor then belongs to that same query).
    pub async fn page(
        &self,
        task_list: &str,
        after: Option<&str>,
        cursor: Option<ScanCursor>,
    ) -> Result<Page<ScanCursor>> {
        check_list(task_list)?;
        let cursor = cursor.unwrap_or_else(PagingState::start);
        let what = || format!("reading task list {task_list:?}");
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.statements().await?;
            let sent = match after {
                None => {
                    session
                        .execute_single_page(&st.scan, (task_list,), cursor.clone())
                        .await
                }
                Some(id) => {
                    session
                        .execute_single_page(&st.scan_after, (task_list, id), cursor.clone())
                        .await
                }
            };
            let (res, paging) = sent.map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let records = self.rows(res, task_list)?;
            let next = match paging {
                PagingStateResponse::HasMorePages { .. } => match paging.into_paging_control_flow()
                {
                    ControlFlow::Continue(s) => Some(s),
                    ControlFlow::Break(()) => None,
                },
                PagingStateResponse::NoMorePages => None,
            };
            Ok(Page { records, next })
        })
        .await
    }

    /// How many rows the list holds: its ids read page by page (a partition's COUNT(*)
    /// would have to finish within one request timeout however large the list).
    pub async fn count(&self, task_list: &str) -> Result<u64> {
        check_list(task_list)?;
        let what = || format!("counting task list {task_list:?}");
        let mut total = 0u64;
        let mut paging = PagingState::start();
        loop {
            let (n, next) = self
                .retrying(&what, false, &self.deadline(), || {
                    let paging = paging.clone();
                    async move {
                        let (session, st) = self.statements().await?;
                        let (res, next) = session
                            .execute_single_page(&st.count, (task_list,), paging)
                            .await
                            .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                        let rows = res
                            .into_rows_result()
                            .map_err(|e| Error::BadData(format!("{}: {e}", what())))?;
                        Ok((rows.rows_num() as u64, next))
                    }
                })
                .await?;
            total += n;
            match next.into_paging_control_flow() {
                ControlFlow::Continue(p) => paging = p,
                ControlFlow::Break(()) => return Ok(total),
            }
        }
    }

    /// One page of the table's list names (in token order), and where the next starts.
    pub async fn lists_page(
        &self,
        cursor: Option<ScanCursor>,
    ) -> Result<(Vec<String>, Option<ScanCursor>)> {
        let what = || "listing the task lists".to_string();
        let paging = cursor.unwrap_or_else(PagingState::start);
        self.retrying(&what, false, &self.deadline(), || {
            let paging = paging.clone();
            async move {
                let (session, st) = self.statements().await?;
                let (res, next) = session
                    .execute_single_page(&st.lists, (), paging)
                    .await
                    .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                let bad = |e: &dyn std::fmt::Display| Error::BadData(format!("{}: {e}", what()));
                let rows = res.into_rows_result().map_err(|e| bad(&e))?;
                let mut names = Vec::with_capacity(rows.rows_num());
                for row in rows.rows::<(String,)>().map_err(|e| bad(&e))? {
                    names.push(row.map_err(|e| bad(&e))?.0);
                }
                let next = match next.into_paging_control_flow() {
                    ControlFlow::Continue(p) => Some(p),
                    ControlFlow::Break(()) => None,
                };
                Ok((names, next))
            }
        })
        .await
    }

    fn rows(
        &self,
        res: scylla::response::query_result::QueryResult,
        task_list: &str,
    ) -> Result<Vec<TaskRecord>> {
        let bad = |e: &dyn std::fmt::Display| {
            Error::BadData(format!(
                "reading task list {task_list:?} from {}: unexpected result: {e}",
                self.table
            ))
        };
        let rows = res.into_rows_result().map_err(|e| bad(&e))?;
        let mut out = Vec::with_capacity(rows.rows_num());
        for row in rows.rows::<Row>().map_err(|e| bad(&e))? {
            // A null `data` is kept: `rows` shows it as stored, and a scan of tasks reports
            // that one row as bad without losing the others.
            let (list, id, data, type_name, saved_at) = row.map_err(|e| bad(&e))?;
            out.push(TaskRecord {
                task_list: list,
                id,
                type_name,
                data,
                saved_at,
            });
        }
        Ok(out)
    }

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
        fn sized(r: &TaskRecord) -> (&str, usize) {
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
        fn sized(k: &TaskKey) -> (&str, usize) {
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
    async fn in_batches<I, F, Fut>(
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
    fn batch_of(&self, statements: impl Iterator<Item = PreparedStatement>) -> Batch {
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
    async fn put_batch_until(
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
    async fn delete_batch_until(
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

    async fn for_each_concurrently<I, F, Fut>(
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

    /// The ALTER TABLE statements that give existing tables (task_rb's, or this gem's made
    /// before) the options `create_schema` uses for churn, with this grace period.
    pub fn tuning_cql(&self, gc_grace_seconds: u32) -> Vec<String> {
        let options = churn_options(gc_grace_seconds);
        [self.table.clone(), self.config.qualified_claims_table()]
            .iter()
            .map(|t| format!("ALTER TABLE {t} WITH {options}"))
            .collect()
    }

    /// What `task doctor` reports about the deployment, read from the node's system tables:
    /// its release and CQL versions, its clock (milliseconds since the epoch), the keyspace's
    /// replication, and each table's grace period and compaction (`None`: no such table).
    pub async fn describe(&self) -> Result<ServerReport> {
        use std::collections::BTreeMap;
        let session = self.session().await?;
        let rejected = |what: &str, e: &dyn std::fmt::Display| {
            Error::QueryRejected(format!("reading {what} from {}: {e}", self.hosts))
        };
        let run = |cql: &'static str, what: &'static str, values: Vec<String>| async move {
            session
                .query_unpaged(cql, values)
                .await
                .map_err(|e| execution_error(&self.op(what, false), &e))?
                .into_rows_result()
                .map_err(|e| rejected(what, &e))
        };
        let local = run(
            "SELECT release_version, cql_version, toUnixTimestamp(now()) FROM system.local",
            "the node's versions",
            vec![],
        )
        .await?;
        let (release_version, cql_version, server_time_ms) = local
            .single_row::<(String, String, i64)>()
            .map_err(|e| rejected("system.local", &e))?;
        let ks = self.config.keyspace.clone();
        let replication = run(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            "the keyspace's replication",
            vec![ks.clone()],
        )
        .await?
        .maybe_first_row::<(BTreeMap<String, String>,)>()
        .map_err(|e| rejected("system_schema.keyspaces", &e))?
        .map(|(r,)| r.into_iter().collect());
        let mut tables = Vec::new();
        for table in [
            self.config.table.clone(),
            format!("{}_claims", self.config.table),
        ] {
            let found = run(
                "SELECT gc_grace_seconds, compaction FROM system_schema.tables \
                 WHERE keyspace_name = ? AND table_name = ?",
                "the tables' options",
                vec![ks.clone(), table.clone()],
            )
            .await?
            .maybe_first_row::<(i32, BTreeMap<String, String>)>()
            .map_err(|e| rejected("system_schema.tables", &e))?
            .map(|(grace, compaction)| TableReport {
                gc_grace_seconds: grace,
                compaction: compaction.into_iter().collect(),
            });
            tables.push((table, found));
        }
        Ok(ServerReport {
            release_version,
            cql_version,
            server_time_ms,
            replication,
            tables,
        })
    }

    /// Runs `tuning_cql` (the claims table's statement only if that table exists).
    pub async fn tune_tables(&self, gc_grace_seconds: u32) -> Result<Vec<String>> {
        let session = self.session().await?;
        let mut done = Vec::new();
        for (i, cql) in self.tuning_cql(gc_grace_seconds).into_iter().enumerate() {
            match session.query_unpaged(cql.clone(), ()).await {
                Ok(_) => {
                    self.log(LogLevel::Info, || format!("schema: {cql}"));
                    done.push(cql)
                }
                Err(e) => {
                    let err = execution_error(&self.op("tuning the table", true), &e);
                    let missing = matches!(err.kind(), Error::QueryRejected(m) if m.contains("does not exist") || m.contains("unconfigured"));
                    if !(i == 1 && missing) {
                        return Err(err);
                    }
                }
            }
        }
        Ok(done)
    }

    /// Creates the keyspace (with the schema's replication), the table the original gem's
    /// users created by hand and, with `schema.claims`, the claims table, both with the
    /// options for churn; does nothing to ones that exist.
    pub async fn create_schema(&self, schema: &Schema) -> Result<()> {
        schema.replication.validate()?;
        let session = self.session().await?;
        let ks = &self.config.keyspace;
        let ddl = [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
                schema.replication.cql()
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task_list text, id text, data text, type text, \
                 PRIMARY KEY ((task_list), id, type)) WITH {}",
                self.table,
                churn_options(schema.gc_grace_seconds)
            ),
            claims::create_table_cql(&self.config, schema.gc_grace_seconds),
        ];
        for cql in ddl.into_iter().take(if schema.claims { 3 } else { 2 }) {
            session
                .query_unpaged(cql.clone(), ())
                .await
                .map_err(|e| execution_error(&self.op("creating the schema", true), &e))?;
            self.log(LogLevel::Info, || format!("schema: {cql}"));
        }
        Ok(())
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
