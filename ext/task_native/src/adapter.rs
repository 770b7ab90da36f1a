//! `Task::DataInterface::MemoryAdapter` and `CassandraAdapter`: one native type behind both
//! classes (they share every method but construction), plus the scan object `all` returns.

use std::sync::Arc;

use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::typed_data::Obj;
use magnus::value::{LazyId, ReprValue};
use magnus::{
    function, method, Error, RArray, RClass, RHash, RModule, RString, Ruby, Symbol, Value,
};
use task_core::{
    CassandraConfig, ClaimOutcome, ClaimTerms, Cursor, MemoryStore, Replication, Schema, StoreSpec,
    TaskKey, TaskRecord, DEFAULT_GC_GRACE_SECONDS,
};

use crate::store::{PageAhead, StoreHandle};
use crate::{args, classes, convert, errors, instrumentation, options, runtime};

#[magnus::wrap(class = "Task::DataInterface::NativeAdapter", free_immediately, size)]
pub struct Adapter {
    store: Arc<StoreHandle>,
}

/// The names of the lists a store holds, read a page at a time (`adapter.lists`).
#[magnus::wrap(class = "Task::DataInterface::ListScan", free_immediately, size)]
pub struct ListScan {
    store: Arc<StoreHandle>,
}

impl ListScan {
    fn each(ruby: &Ruby, scan: Obj<ListScan>) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Ok(scan.enumeratorize("each", ()).as_value());
        }
        let mut cursor: Option<Cursor> = None;
        loop {
            let (names, next) = scan.store.lists_page(ruby, cursor.as_ref())?;
            for name in names {
                let _: Value = ruby.yield_value(name)?;
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(scan.as_value()),
            }
        }
    }
}

#[magnus::wrap(class = "Task::DataInterface::TaskScan", free_immediately, size)]
pub struct TaskScan {
    store: Arc<StoreHandle>,
    task_list: String,
    /// Yield the stored rows as Hashes instead of task objects.
    raw: bool,
    /// Where the scan starts (`None`: the first task).
    start: Option<Cursor>,
}

const DEFAULT_CONCURRENCY: usize = 64;

/// `MemoryAdapter.new(page_size: 1000)`.
fn memory_new(ruby: &Ruby, class: RClass, args: &[Value]) -> Result<Obj<Adapter>, Error> {
    let mut page_size = task_core::memory::DEFAULT_PAGE_SIZE;
    let mut max_attempts = Some(task_core::claims::DEFAULT_MAX_ATTEMPTS);
    let mut default_ttl = None;
    match args {
        [] => {}
        [h] => {
            let opts = RHash::try_convert(*h)?;
            let given = args::options_by_name(
                ruby,
                opts,
                "MemoryAdapter",
                &["page_size", "max_attempts", "default_ttl"],
            )?;
            if let Some(v) = given[0] {
                // Memory pages are Vecs: any count that fits in memory is fine.
                let n = args::integer_in(ruby, "page_size", v, 1, i64::MAX)?;
                page_size = usize::try_from(n).unwrap_or(usize::MAX);
            }
            if let Some(v) = given[1] {
                max_attempts = options::max_attempts(ruby, v)?;
            }
            if let Some(v) = given[2] {
                default_ttl = options::default_ttl(ruby, v)?;
            }
        }
        _ => {
            return Err(errors::argument(
                ruby,
                "MemoryAdapter.new(page_size: 1000, max_attempts: 25)",
            ))
        }
    }
    let store = MemoryStore::with_options(page_size, max_attempts).with_default_ttl(default_ttl);
    Ok(ruby.obj_wrap_as(Adapter::new(StoreSpec::Memory(Arc::new(store))), class))
}

/// A CassandraAdapter for an already-read config.
pub fn cassandra_adapter(ruby: &Ruby, config: CassandraConfig) -> Result<Value, Error> {
    let class = classes::cassandra_adapter(ruby)?;
    Ok(ruby
        .obj_wrap_as(Adapter::new(StoreSpec::Cassandra(Box::new(config))), class)
        .as_value())
}

fn cassandra_new(ruby: &Ruby, class: RClass, args: &[Value]) -> Result<Obj<Adapter>, Error> {
    let opts = match args {
        [] => None,
        [h] => Some(RHash::try_convert(*h)?),
        _ => {
            return Err(errors::argument(
                ruby,
                format!(
                    "wrong number of arguments (given {}, expected 0 or keywords)",
                    args.len()
                ),
            ))
        }
    };
    // `logger:` is taken by lib/task/logging.rb before this; named here so that a misspelt
    // option's message lists it.
    let config = options::cassandra_config(ruby, opts, "CassandraAdapter", &["logger"])?;
    Ok(ruby.obj_wrap_as(Adapter::new(StoreSpec::Cassandra(Box::new(config))), class))
}

/// Reads a `concurrency:` keyword from an optional trailing hash (whose names `bulk_args`
/// has checked).
/// A bulk call's options: `concurrency:` (1-4096, default 64) and `batched:` (default true:
/// unlogged batches of one list each; false: one request per task).
fn bulk_options(ruby: &Ruby, opts: Option<RHash>) -> Result<(usize, bool), Error> {
    let Some(opts) = opts else {
        return Ok((DEFAULT_CONCURRENCY, true));
    };
    let given = args::options_by_name(ruby, opts, "bulk call", BULK_OPTIONS)?;
    let concurrency = match given[0] {
        None => DEFAULT_CONCURRENCY,
        Some(v) => {
            let n = args::integer_in(ruby, "concurrency", v, 1, 4096)?;
            usize::try_from(n).unwrap_or(DEFAULT_CONCURRENCY) // 1-4096: always fits
        }
    };
    let batched = match given[1] {
        None => true,
        Some(v) => args::boolean(ruby, "batched", v)?,
    };
    Ok((concurrency, batched))
}

const BULK_OPTIONS: &[&str] = &["concurrency", "batched"];

impl Adapter {
    fn new(spec: StoreSpec) -> Self {
        Adapter {
            store: Arc::new(StoreHandle::new(spec)),
        }
    }

    /// `store(task, ttl: nil)`: with `ttl:` (seconds) the task is gone after that long.
    fn store(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<(), Error> {
        let (task, ttl) = match args {
            [task] => (*task, None),
            [task, opts] => (
                *task,
                ttl_option(ruby, RHash::try_convert(*opts)?, "store")?,
            ),
            _ => {
                return Err(errors::argument(
                    ruby,
                    format!(
                    "wrong number of arguments (given {}, expected 1..2; store(task, ttl: nil))",
                    args.len()
                ),
                ))
            }
        };
        let record = convert::record_from_task(ruby, task)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.store_ttl(&record, ttl).await })
    }

    fn find(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
    ) -> Result<Option<Value>, Error> {
        let key = args::key(ruby, task_list, id)?;
        match rb_self
            .store
            .run(ruby, |s| async move { s.find(&key).await })?
        {
            Some(r) => convert::task_from_record(ruby, &r).map(Some),
            None => Ok(None),
        }
    }

    fn delete(ruby: &Ruby, rb_self: &Self, task_list: Value, id: Value) -> Result<(), Error> {
        let key = args::key(ruby, task_list, id)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.delete(&key).await })
    }

    fn scan(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        raw: bool,
        on_bad_row: Option<Value>,
        start: Option<Cursor>,
    ) -> Result<Value, Error> {
        let task_list = args::list(ruby, task_list)?;
        let scan = ruby.obj_wrap(TaskScan {
            store: rb_self.store.clone(),
            task_list,
            raw,
            start,
        });
        if let Some(handler) = on_bad_row {
            // An instance variable, so the GC sees the handler for as long as the scan lives.
            scan.ivar_set(*IV_ON_BAD_ROW, handler)?;
        }
        scan.funcall("lazy", ())
    }

    /// `all(task_list, on_bad_row: nil, after: nil)`: every task of the list, lazily, in
    /// store order (by id); with `after:`, only those whose id sorts after it. A row that cannot become a task (null or broken data, a type that names no task
    /// class) raises Task::Error::BadData naming it, after every row before it was yielded;
    /// with `on_bad_row: :skip` it is reported with `warn` and skipped, with a callable it is
    /// passed to `call(row, error)` (the row as `rows` gives it) and skipped.
    fn all(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<Value, Error> {
        let (task_list, opts) = match args {
            [list] => (*list, None),
            [list, opts] => (*list, Some(RHash::try_convert(*opts)?)),
            _ => {
                return Err(errors::argument(
                    ruby,
                    format!(
                        "wrong number of arguments (given {}, expected 1; all(task_list, on_bad_row: nil))",
                        args.len()
                    ),
                ))
            }
        };
        let (mut on_bad_row, mut start) = (None, None);
        if let Some(opts) = opts {
            let given = args::options_by_name(ruby, opts, "all", &["on_bad_row", "after"])?;
            if let Some(v) = given[0] {
                on_bad_row = bad_row_handler(ruby, v)?;
            }
            if let Some(v) = given[1] {
                if !v.is_nil() {
                    let id = args::key_text(ruby, "id", v, &|| " (all's after:)".to_string())?;
                    start = Some(Cursor::after_id(&id));
                }
            }
        }
        Self::scan(ruby, rb_self, task_list, false, on_bad_row, start)
    }

    /// `rows(task_list)`: the stored rows as they are, `{task_list:, id:, type:, data:}` with
    /// `data` the JSON text, lazily and in store order. For migrations and inspection.
    fn rows(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<Value, Error> {
        Self::scan(ruby, rb_self, task_list, true, None, None)
    }

    /// `store_row(task_list:, id:, type:, data:)`: writes one row exactly as given (`data` is
    /// JSON text and is not checked; nil writes a null). The low-level twin of `rows`.
    fn store_row(ruby: &Ruby, rb_self: &Self, row: RHash) -> Result<(), Error> {
        const FIELDS: [&str; 4] = ["task_list", "id", "type", "data"];
        let values = args::options_by_name(ruby, row, "store_row", &FIELDS)?;
        let given = |i: usize| -> Result<Value, Error> {
            values[i]
                .ok_or_else(|| errors::argument(ruby, format!("store_row needs :{}", FIELDS[i])))
        };
        let field =
            |i: usize| -> Result<String, Error> { RString::try_convert(given(i)?)?.to_string() };
        let record = TaskRecord {
            // The key columns by the rule every call follows; the type and data as given.
            task_list: args::key_text(ruby, "task_list", given(0)?, &String::new)?,
            id: args::key_text(ruby, "id", given(1)?, &String::new)?,
            type_name: field(2)?,
            data: match values[3] {
                Some(v) if v.is_nil() => None,
                _ => Some(field(3)?),
            },
            saved_at: None,
        };
        rb_self
            .store
            .run(ruby, |s| async move { s.store_raw(&record).await })
    }

    /// `claim(task_list, id, seconds, owner)`: `[:won, attempts]`, `[:held, nil]`,
    /// `[:dead, attempts]` or `[:gone, nil]` (the Ruby side, lib/task/claims.rb, makes the
    /// public methods of it).
    fn claim(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
        seconds: Value,
        owner: Value,
    ) -> Result<RArray, Error> {
        let key = args::key(ruby, task_list, id)?;
        let terms = claim_terms(ruby, seconds, owner)?;
        let out = rb_self
            .store
            .run(ruby, |s| async move { s.claim(&key, &terms).await })?;
        let (status, attempts) = match out {
            ClaimOutcome::Won { attempts } => ("won", Some(attempts)),
            ClaimOutcome::Held => ("held", None),
            ClaimOutcome::Dead { attempts } => ("dead", Some(attempts)),
            ClaimOutcome::Gone => ("gone", None),
        };
        let a = ruby.ary_new();
        a.push(ruby.to_symbol(status))?;
        a.push(attempts)?;
        Ok(a)
    }

    /// `renew(task_list, id, seconds, owner)` -> true when `owner` held it and still does.
    fn renew(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
        seconds: Value,
        owner: Value,
    ) -> Result<bool, Error> {
        let key = args::key(ruby, task_list, id)?;
        let terms = claim_terms(ruby, seconds, owner)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.renew(&key, &terms).await })
    }

    /// `release(task_list, id, owner, error_text_or_nil)` -> true when `owner` held it.
    fn release(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
        owner: String,
        error: Option<String>,
    ) -> Result<bool, Error> {
        let key = args::key(ruby, task_list, id)?;
        rb_self.store.run(ruby, |s| async move {
            s.release(&key, &owner, error.as_deref()).await
        })
    }

    /// `retry_task(task_list, id)`: attempts and last error cleared.
    fn retry_task(ruby: &Ruby, rb_self: &Self, task_list: Value, id: Value) -> Result<(), Error> {
        let key = args::key(ruby, task_list, id)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.retry(&key).await })
    }

    /// `claims(task_list)`: `[{id:, owner:, attempts:, last_error:, expires_in:}, ...]` in id
    /// order (`expires_in`: seconds until the live claim lapses, nil when none is held).
    fn claims(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<RArray, Error> {
        let list = args::list(ruby, task_list)?;
        let infos = rb_self
            .store
            .run(ruby, |s| async move { s.claim_infos(&list).await })?;
        let out = ruby.ary_new();
        for c in infos {
            out.push(claim_hash(ruby, c)?)?;
        }
        Ok(out)
    }

    /// `claim_info(task_list, id)`: one task's claim state as `claims` gives it, or nil when
    /// it has none; reads that task's claim alone.
    fn claim_info(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
    ) -> Result<Option<RHash>, Error> {
        let key = args::key(ruby, task_list, id)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.claim_info(&key).await })?
            .map(|c| claim_hash(ruby, c))
            .transpose()
    }

    /// Attempts after which a task is dead (nil: never).
    fn max_attempts(&self) -> Option<u32> {
        // A setting: read from what the adapter was made with, no store opened.
        self.store.spec().max_attempts()
    }

    /// `tune_table(run: false)`: the ALTER TABLE statements that give the task table (and the
    /// claims table) the options `create_schema` uses for churn; `run: true` runs them.
    fn tune_table(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<Vec<String>, Error> {
        let (mut run, mut grace) = (false, DEFAULT_GC_GRACE_SECONDS);
        match args {
            [] => {}
            [h] => {
                let h = RHash::try_convert(*h)?;
                let given =
                    args::options_by_name(ruby, h, "tune_table", &["run", "gc_grace_seconds"])?;
                if let Some(v) = given[0] {
                    run = args::boolean(ruby, "run", v)?;
                }
                if let Some(v) = given[1] {
                    grace = u32_in(ruby, "gc_grace_seconds", v, 0)?;
                }
            }
            _ => {
                return Err(errors::argument(
                    ruby,
                    "tune_table(run: false, gc_grace_seconds: 10800)",
                ))
            }
        };
        rb_self
            .store
            .run(ruby, |s| async move { s.tune_tables(run, grace).await })
    }

    /// `count(task_list)`: how many tasks the list holds (counted a page at a time).
    fn count(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<u64, Error> {
        let list = args::list(ruby, task_list)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.count(&list).await })
    }

    /// `lists`: the names of the lists that hold tasks, lazily, a page at a time.
    fn lists(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        ruby.obj_wrap(ListScan {
            store: rb_self.store.clone(),
        })
        .funcall("lazy", ())
    }

    /// `describe`: what the node says about the deployment (`task doctor` reports it):
    /// `{ release_version:, cql_version:, server_time: Time, replication: { "class" => ... }
    /// or nil, tables: { "tasks" => { gc_grace_seconds:, compaction: {...} } or nil, ... } }`.
    fn describe(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let Some(report) = rb_self
            .store
            .run(ruby, |s| async move { s.describe().await })?
        else {
            return Ok(ruby.qnil().as_value());
        };
        let pairs = |items: &[(String, String)]| -> Result<RHash, Error> {
            let h = ruby.hash_new();
            for (k, v) in items {
                h.aset(k.as_str(), v.as_str())?;
            }
            Ok(h)
        };
        let out = ruby.hash_new();
        out.aset(
            ruby.sym_new("release_version"),
            report.release_version.as_str(),
        )?;
        out.aset(ruby.sym_new("cql_version"), report.cql_version.as_str())?;
        let (secs, ms) = (
            report.server_time_ms.div_euclid(1000),
            report.server_time_ms.rem_euclid(1000),
        );
        let time: Value = ruby
            .class_time()
            .funcall("at", (secs, ms, ruby.sym_new("millisecond")))?;
        out.aset(ruby.sym_new("server_time"), time)?;
        let replication = match &report.replication {
            Some(r) => pairs(r)?.as_value(),
            None => ruby.qnil().as_value(),
        };
        out.aset(ruby.sym_new("replication"), replication)?;
        let tables = ruby.hash_new();
        for (name, table) in &report.tables {
            let v = match table {
                Some(t) => {
                    let h = ruby.hash_new();
                    h.aset(ruby.sym_new("gc_grace_seconds"), t.gc_grace_seconds)?;
                    h.aset(ruby.sym_new("compaction"), pairs(&t.compaction)?)?;
                    h.as_value()
                }
                None => ruby.qnil().as_value(),
            };
            tables.aset(name.as_str(), v)?;
        }
        out.aset(ruby.sym_new("tables"), tables)?;
        Ok(out.as_value())
    }

    /// `create_claims_table`: for a deployment whose task table predates claims.
    fn create_claims_table(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self
            .store
            .run(ruby, |s| async move { s.create_claims_table().await })
    }

    fn delete_list(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<(), Error> {
        let task_list = args::list(ruby, task_list)?;
        rb_self
            .store
            .run(ruby, |s| async move { s.delete_list(&task_list).await })
    }

    /// `store_many(tasks, concurrency: 64, batched: true)`: stores every task; returns the
    /// count. If any failed, raises Task::Error::BulkFailure listing each failed task and its
    /// error (each task of a failed batch); the others are stored.
    fn store_many(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<usize, Error> {
        let (tasks, opts) = bulk_args(
            ruby,
            args,
            "store_many(tasks, concurrency: 64, batched: true)",
        )?;
        let mut records: Vec<TaskRecord> = Vec::with_capacity(tasks.len());
        for t in tasks.into_iter() {
            records.push(convert::record_from_task(ruby, t)?);
        }

        let records: Arc<[TaskRecord]> = records.into();
        let (n, batched) = bulk_options(ruby, opts)?;
        let all = records.clone();
        let results = rb_self
            .store
            .run(ruby, |s| async move { s.store_many(all, n, batched).await })?;
        bulk_outcome(ruby, "store", results, |i| {
            (records[i].task_list.as_str(), records[i].id.as_str())
        })
    }

    /// `delete_many(tasks_or_pairs, concurrency: 64, batched: true)`: completes each (a task,
    /// or a `[task_list, id]` pair); like store_many for batches and errors.
    fn delete_many(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<usize, Error> {
        let (items, opts) = bulk_args(
            ruby,
            args,
            "delete_many(tasks, concurrency: 64, batched: true)",
        )?;
        let mut keys = Vec::with_capacity(items.len());
        for item in items.into_iter() {
            let key = match RArray::from_value(item) {
                Some(pair) if pair.len() == 2 => args::key(ruby, pair.entry(0)?, pair.entry(1)?)?,
                _ => args::key(
                    ruby,
                    item.funcall("task_list", ())?,
                    item.funcall("id", ())?,
                )?,
            };
            keys.push(key);
        }
        let keys: Arc<[TaskKey]> = keys.into();
        let (n, batched) = bulk_options(ruby, opts)?;
        let all = keys.clone();
        let results =
            rb_self.store.run(
                ruby,
                |s| async move { s.delete_many(all, n, batched).await },
            )?;
        bulk_outcome(ruby, "complete", results, |i| {
            (keys[i].task_list.as_str(), keys[i].id.as_str())
        })
    }

    /// `create_schema(replication_factor: 1, claims: true, gc_grace_seconds: 10800)`, or
    /// `create_schema(replication: { "dc1" => 2, "dc2" => 1 })` (NetworkTopologyStrategy):
    /// the keyspace, the task table and (unless `claims: false`) the claims table.
    fn create_schema(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<(), Error> {
        const USAGE: &str =
            "create_schema(replication_factor: 1, claims: true, gc_grace_seconds: 10800), \
             or create_schema(replication: { \"dc1\" => 2, \"dc2\" => 1 }, ...)";
        let mut schema = Schema::default();
        match args {
            [] => {}
            [h] => {
                let h = RHash::try_convert(*h)?;
                let given = args::options_by_name(
                    ruby,
                    h,
                    "create_schema",
                    &[
                        "replication_factor",
                        "claims",
                        "gc_grace_seconds",
                        "replication",
                    ],
                )?;
                if let (Some(_), Some(_)) = (given[0], given[3]) {
                    return Err(errors::argument(
                        ruby,
                        "create_schema takes replication_factor: (one datacenter) or \
                         replication: (replicas per datacenter), not both",
                    ));
                }
                if let Some(v) = given[0] {
                    schema.replication =
                        Replication::Simple(u32_in(ruby, "replication_factor", v, 1)?);
                }
                if let Some(v) = given[1] {
                    schema.claims = args::boolean(ruby, "claims", v)?;
                }
                if let Some(v) = given[2] {
                    schema.gc_grace_seconds = u32_in(ruby, "gc_grace_seconds", v, 0)?;
                }
                if let Some(v) = given[3] {
                    schema.replication = replication_map(ruby, v)?;
                }
            }
            _ => return Err(errors::argument(ruby, USAGE)),
        }
        // The store refuses a bad replication before it connects.
        rb_self
            .store
            .run(ruby, |s| async move { s.create_schema(&schema).await })
    }

    fn clear(&self) {
        self.store.spec().clear();
    }

    /// What this adapter's log lines name as their source (nil for the memory store, which
    /// logs nothing).
    fn log_source(&self) -> Option<String> {
        self.store.spec().cassandra_config().map(|c| c.log_source())
    }

    /// Pages read by scans of this adapter so far.
    fn pages_read(&self) -> u64 {
        self.store.pages_read()
    }

    /// The adapter's settings, as `CassandraAdapter.new` takes them (the password left out);
    /// empty for a memory adapter.
    fn options(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        match rb_self.store.spec().cassandra_config() {
            Some(c) => options::shown(ruby, c),
            None => Ok(ruby.hash_new()),
        }
    }
}

/// An Integer option from `min` up to what a CQL int holds.
fn u32_in(ruby: &Ruby, name: &str, v: Value, min: i64) -> Result<u32, Error> {
    let n = args::integer_in(ruby, name, v, min, i64::from(i32::MAX))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `replication: { "dc1" => 2, dc2: 1 }`: replicas per datacenter, in the order given.
fn replication_map(ruby: &Ruby, v: Value) -> Result<Replication, Error> {
    let Some(h) = RHash::from_value(v) else {
        return Err(errors::argument(
            ruby,
            format!(
                "replication must be a Hash of datacenter name => replicas, got {}",
                v.inspect()
            ),
        ));
    };
    let mut dcs = Vec::new();
    h.foreach(|dc: Value, n: Value| {
        let name = if let Some(s) = Symbol::from_value(dc) {
            s.name()?.into_owned()
        } else if let Some(s) = RString::from_value(dc) {
            s.to_string()?
        } else {
            return Err(errors::argument(
                ruby,
                format!(
                    "replication: a datacenter name must be a String or Symbol, got {}",
                    dc.inspect()
                ),
            ));
        };
        let what = format!("replication[{name:?}]");
        dcs.push((name, u32_in(ruby, &what, n, 1)?));
        Ok(ForEach::Continue)
    })?;
    Ok(Replication::ByDatacenter(dcs))
}

fn bulk_args(ruby: &Ruby, args: &[Value], usage: &str) -> Result<(RArray, Option<RHash>), Error> {
    let (items, opts) = match args {
        [items] => (*items, None),
        [items, opts] => (*items, Some(RHash::try_convert(*opts)?)),
        _ => return Err(errors::argument(ruby, usage.to_string())),
    };
    if let Some(opts) = opts {
        // Checked before any item is read, so a misspelt option stores or deletes nothing.
        let what = usage.split_once('(').map_or(usage, |(name, _)| name);
        args::options_by_name(ruby, opts, what, BULK_OPTIONS)?;
    }
    let items: RArray = match RArray::from_value(items) {
        Some(a) => a,
        None => items.funcall("to_a", ())?,
    };
    Ok((items, opts))
}

/// The count, or BulkFailure naming each failed item (`label(i)`: its list and id).
fn bulk_outcome<'a>(
    ruby: &Ruby,
    verb: &str,
    results: Vec<task_core::Result<()>>,
    label: impl Fn(usize) -> (&'a str, &'a str),
) -> Result<usize, Error> {
    let total = results.len();
    let failed: Vec<(usize, task_core::Error)> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| (i, e)))
        .collect();
    if failed.is_empty() {
        return Ok(total);
    }
    let failures = ruby.ary_new();
    for (i, e) in &failed {
        let (list, id) = label(*i);
        let entry = ruby.hash_new();
        entry.aset(ruby.sym_new("task_list"), list)?;
        entry.aset(ruby.sym_new("id"), id)?;
        entry.aset(ruby.sym_new("error"), errors::exception(ruby, e)?)?;
        failures.push(entry)?;
    }
    let (i0, e0) = &failed[0];
    let (list0, id0) = label(*i0);
    let msg = format!(
        "could not {verb} {} of {total} tasks (first: task {id0:?} of list {list0:?}: {e0}); see #failures",
        failed.len(),
    );
    Err(errors::bulk_failure(ruby, msg, failures)?)
}

fn raw_row(ruby: &Ruby, r: &TaskRecord) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset(ruby.sym_new("task_list"), r.task_list.as_str())?;
    h.aset(ruby.sym_new("id"), r.id.as_str())?;
    h.aset(ruby.sym_new("type"), r.type_name.as_str())?;
    h.aset(ruby.sym_new("data"), r.data.as_deref())?;
    Ok(h)
}

/// `CassandraAdapter.open_sessions`: driver sessions this process holds (one per distinct
/// connection config, however many adapters and interfaces use it).
fn open_sessions(ruby: &Ruby) -> Result<usize, Error> {
    Ok(runtime::current(ruby)?.connector.open_sessions())
}

static IV_ON_BAD_ROW: LazyId = LazyId::new("@on_bad_row");

/// A `ttl:` keyword (seconds, or nil for the store's default) from an options hash.
pub fn ttl_option(
    ruby: &Ruby,
    opts: RHash,
    what: &str,
) -> Result<Option<std::time::Duration>, Error> {
    match args::options_by_name(ruby, opts, what, &["ttl"])?[0] {
        Some(v) if !v.is_nil() => options::seconds(ruby, "ttl", v).map(Some),
        _ => Ok(None),
    }
}

/// A claim state as a Hash: `{id:, owner:, attempts:, last_error:, expires_in:}`.
fn claim_hash(ruby: &Ruby, c: task_core::ClaimInfo) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset(ruby.sym_new("id"), c.id)?;
    h.aset(ruby.sym_new("owner"), c.owner)?;
    h.aset(ruby.sym_new("attempts"), c.attempts)?;
    h.aset(ruby.sym_new("last_error"), c.last_error)?;
    h.aset(ruby.sym_new("expires_in"), c.expires_in)?;
    Ok(h)
}

/// A claim's owner and lease from Ruby arguments: seconds > 0, a non-empty owner String.
fn claim_terms(ruby: &Ruby, seconds: Value, owner: Value) -> Result<ClaimTerms, Error> {
    let lease = options::seconds(ruby, "for", seconds)?;
    let owner = match RString::from_value(owner) {
        Some(s) => s.to_string()?,
        None => {
            return Err(errors::argument(
                ruby,
                format!("owner must be a String, got {}", owner.inspect()),
            ))
        }
    };
    if owner.is_empty() {
        return Err(errors::argument(ruby, "owner must not be empty"));
    }
    Ok(ClaimTerms { owner, lease })
}

/// An `on_bad_row:` value: nil or :raise (raise, the default), :skip, or a callable.
fn bad_row_handler(ruby: &Ruby, v: Value) -> Result<Option<Value>, Error> {
    if v.is_nil() {
        return Ok(None);
    }
    if let Some(s) = Symbol::from_value(v) {
        match s.name()?.as_ref() {
            "raise" => return Ok(None),
            "skip" => return Ok(Some(v)),
            _ => {}
        }
    } else if v.respond_to("call", false)? {
        return Ok(Some(v));
    }
    Err(errors::argument(
        ruby,
        format!(
            "on_bad_row must be :raise, :skip or respond to #call(row, error), got {}",
            v.inspect()
        ),
    ))
}

/// Hands a row that could not become a task to the scan's `on_bad_row` handler.
fn report_bad_row(ruby: &Ruby, handler: Value, r: &TaskRecord, e: Error) -> Result<(), Error> {
    let exception: Value = match e.error_type() {
        magnus::error::ErrorType::Error(class, msg) => class.funcall("new", (msg.as_ref(),))?,
        magnus::error::ErrorType::Exception(x) => x.as_value(),
        magnus::error::ErrorType::Jump(_) => return Err(e),
    };
    if Symbol::from_value(handler).is_some() {
        let msg: String = exception.funcall("message", ())?;
        let _: Value = ruby
            .module_kernel()
            .funcall("warn", (format!("task: skipped a bad row: {msg}"),))?;
        return Ok(());
    }
    let _: Value = handler.funcall("call", (raw_row(ruby, r)?, exception))?;
    Ok(())
}

impl TaskScan {
    /// Yields every task of the list, one page in memory at a time, and returns the scan;
    /// without a block, an Enumerator. Breaking out of the block stops the scan: no further
    /// page is read.
    fn each(ruby: &Ruby, scan: Obj<TaskScan>) -> Result<Value, Error> {
        if !ruby.block_given() {
            return Ok(scan.enumeratorize("each", ()).as_value());
        }
        let rb_self = &*scan;
        let on_bad_row: Value = if rb_self.raw {
            ruby.qnil().as_value()
        } else {
            scan.ivar_get(*IV_ON_BAD_ROW)?
        };
        let store = &rb_self.store;
        let list = rb_self.task_list.as_str();
        let mut cursor: Option<Cursor> = rb_self.start.clone();
        let mut ahead: Option<PageAhead> = None;
        // One lookup per type name for the whole scan (a name that names no class is not
        // looked up again on every page).
        let mut types = convert::TypeCache::new(ruby);
        loop {
            let started = std::time::Instant::now();
            let fetched = match ahead.take() {
                Some(p) if p.is_current_process() => store.take(ruby, p),
                // Forked since the page ahead was requested: that request is the parent's.
                // This process reads the same page again, from the same position, on its
                // own connection.
                _ => store.page(ruby, list, cursor.as_ref()),
            };
            if instrumentation::on() {
                let count = fetched.as_ref().map_or(0, |p| p.records.len());
                instrumentation::page(
                    ruby,
                    list,
                    count,
                    started.elapsed(),
                    fetched.as_ref().err(),
                )?;
            }
            let page = fetched?;
            cursor = page.next;
            // The store reads the next page while this one is handed to the block; leaving
            // the loop (break, exception) drops and cancels it.
            if let Some(next) = &cursor {
                ahead = store.read_ahead(ruby, list, next)?;
            }
            for r in &page.records {
                let item = if rb_self.raw {
                    raw_row(ruby, r)?.as_value()
                } else {
                    match convert::task_from_record_cached(ruby, r, &mut types) {
                        Ok(task) => task,
                        Err(e) if !on_bad_row.is_nil() && errors::is_bad_data(ruby, &e) => {
                            report_bad_row(ruby, on_bad_row, r, e)?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                };
                let _: Value = ruby.yield_value(item)?;
            }
            if cursor.is_none() {
                return Ok(scan.as_value());
            }
        }
    }

    fn task_list(&self) -> String {
        self.task_list.clone()
    }
}

/// Defines the adapter classes and TaskScan; returns CassandraAdapter.
pub fn init(ruby: &Ruby, data_interface: RModule) -> Result<RClass, Error> {
    let native = data_interface.define_class("NativeAdapter", ruby.class_object())?;
    native.undef_default_alloc_func();
    native.define_method("store", method!(Adapter::store, -1))?;
    native.define_method("find", method!(Adapter::find, 2))?;
    native.define_method("all", method!(Adapter::all, -1))?;
    native.define_method("delete", method!(Adapter::delete, 2))?;
    native.define_method("delete_list", method!(Adapter::delete_list, 1))?;
    native.define_method("store_many", method!(Adapter::store_many, -1))?;
    native.define_method("delete_many", method!(Adapter::delete_many, -1))?;
    native.define_method("options", method!(Adapter::options, 0))?;
    native.define_method("rows", method!(Adapter::rows, 1))?;
    native.define_method("pages_read", method!(Adapter::pages_read, 0))?;
    native.define_method("store_row", method!(Adapter::store_row, 1))?;
    native.define_method("claim", method!(Adapter::claim, 4))?;
    native.define_method("renew", method!(Adapter::renew, 4))?;
    native.define_method("release", method!(Adapter::release, 4))?;
    native.define_method("retry_task", method!(Adapter::retry_task, 2))?;
    native.define_method("claims", method!(Adapter::claims, 1))?;
    native.define_method("claim_info", method!(Adapter::claim_info, 2))?;
    native.define_method("max_attempts", method!(Adapter::max_attempts, 0))?;
    native.define_method("count", method!(Adapter::count, 1))?;
    native.define_method("lists", method!(Adapter::lists, 0))?;
    native.define_method("log_source", method!(Adapter::log_source, 0))?;

    let memory = data_interface.define_class("MemoryAdapter", native)?;
    memory.define_singleton_method("new", method!(memory_new, -1))?;
    memory.define_method("clear", method!(Adapter::clear, 0))?;

    let cassandra = data_interface.define_class("CassandraAdapter", native)?;
    cassandra.define_singleton_method("new", method!(cassandra_new, -1))?;
    cassandra.define_method("create_schema", method!(Adapter::create_schema, -1))?;
    cassandra.define_method("tune_table", method!(Adapter::tune_table, -1))?;
    cassandra.define_method(
        "create_claims_table",
        method!(Adapter::create_claims_table, 0),
    )?;
    cassandra.define_singleton_method("open_sessions", function!(open_sessions, 0))?;
    cassandra.define_method("describe", method!(Adapter::describe, 0))?;

    let list_scan = data_interface.define_class("ListScan", ruby.class_object())?;
    list_scan.undef_default_alloc_func();
    list_scan.include_module(ruby.module_enumerable())?;
    list_scan.define_method("each", method!(ListScan::each, 0))?;

    let scan = data_interface.define_class("TaskScan", ruby.class_object())?;
    scan.undef_default_alloc_func();
    scan.include_module(ruby.module_enumerable())?;
    scan.define_method("each", method!(TaskScan::each, 0))?;
    scan.define_method("task_list", method!(TaskScan::task_list, 0))?;
    Ok(cassandra)
}
