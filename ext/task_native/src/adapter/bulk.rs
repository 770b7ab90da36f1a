//! Bulk calls: `store_many` and `delete_many`, their options, and the BulkFailure that names
//! each task not done.

use std::sync::Arc;

use magnus::prelude::*;
use magnus::{Error, RArray, RHash, Ruby, Value};
use task_core::{TaskKey, TaskRecord};

use super::Adapter;
use crate::{args, convert, errors};

pub(super) const DEFAULT_CONCURRENCY: usize = 64;

/// Reads a `concurrency:` keyword from an optional trailing hash (whose names `bulk_args`
/// has checked).
/// A bulk call's options: `concurrency:` (1-4096, default 64) and `batched:` (default true:
/// unlogged batches of one list each; false: one request per task).
pub(super) fn bulk_options(ruby: &Ruby, opts: Option<RHash>) -> Result<(usize, bool), Error> {
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

pub(super) const BULK_OPTIONS: &[&str] = &["concurrency", "batched"];

pub(super) fn bulk_args(
    ruby: &Ruby,
    args: &[Value],
    usage: &str,
) -> Result<(RArray, Option<RHash>), Error> {
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
pub(super) fn bulk_outcome<'a>(
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

impl Adapter {
    /// `store_many(tasks, concurrency: 64, batched: true)`: stores every task; returns the
    /// count. If any failed, raises Task::Error::BulkFailure listing each failed task and its
    /// error (each task of a failed batch); the others are stored.
    pub(super) fn store_many(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<usize, Error> {
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
        let all = &records;
        let results = rb_self.store.run(ruby, |s| async move {
            s.store_many(Arc::clone(all), n, batched).await
        })?;
        bulk_outcome(ruby, "store", results, |i| {
            (records[i].task_list.as_str(), records[i].id.as_str())
        })
    }

    /// `delete_many(tasks_or_pairs, concurrency: 64, batched: true)`: completes each (a task,
    /// or a `[task_list, id]` pair); like store_many for batches and errors.
    pub(super) fn delete_many(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<usize, Error> {
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
        let all = &keys;
        let results = rb_self.store.run(ruby, |s| async move {
            s.delete_many(Arc::clone(all), n, batched).await
        })?;
        bulk_outcome(ruby, "complete", results, |i| {
            (keys[i].task_list.as_str(), keys[i].id.as_str())
        })
    }
}
