//! `Task::DataInterface::NativeAdapter`: the one native type behind every store's adapter
//! class, with every method they share. Each store's class (its `new`, options and own
//! methods) is in its own file and registered in `STORES`; scans, bulk calls, argument
//! parsing and the Hashes handed to Ruby have theirs.

mod bulk;
mod cassandra;
mod claim_many;
mod hashes;
mod memory;
mod parse;
mod scan;
mod sqlite;

pub use cassandra::cassandra_adapter;

use std::sync::Arc;

use magnus::prelude::*;
use magnus::{method, Error, RArray, RClass, RHash, RModule, RString, Ruby, Value};
use task_core::{ClaimOutcome, StoreSpec, TaskRecord};

use crate::store::StoreHandle;
use crate::{args, convert, errors};
use hashes::claim_hash;
use parse::{claim_terms, ttl_option};

#[magnus::wrap(class = "Task::DataInterface::NativeAdapter", free_immediately, size)]
pub struct Adapter {
    store: Arc<StoreHandle>,
}

impl Adapter {
    fn new(spec: Box<dyn StoreSpec>) -> Self {
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
        let record = &record;
        rb_self
            .store
            .run(ruby, |s| async move { s.store_ttl(record, ttl).await })
    }

    fn find(
        ruby: &Ruby,
        rb_self: &Self,
        task_list: Value,
        id: Value,
    ) -> Result<Option<Value>, Error> {
        let key = args::key(ruby, task_list, id)?;
        let key = &key;
        match rb_self
            .store
            .run(ruby, |s| async move { s.find(key).await })?
        {
            Some(r) => convert::task_from_record(ruby, &r).map(Some),
            None => Ok(None),
        }
    }

    fn delete(ruby: &Ruby, rb_self: &Self, task_list: Value, id: Value) -> Result<(), Error> {
        let key = args::key(ruby, task_list, id)?;
        let key = &key;
        rb_self
            .store
            .run(ruby, |s| async move { s.delete(key).await })
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
        let record = &record;
        rb_self
            .store
            .run(ruby, |s| async move { s.store_raw(record).await })
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
        let key = &key;
        let terms = &terms;
        let out = rb_self
            .store
            .run(ruby, |s| async move { s.claim(key, terms).await })?;
        outcome_pair(ruby, out)
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
        let key = &key;
        let terms = &terms;
        rb_self
            .store
            .run(ruby, |s| async move { s.renew(key, terms).await })
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
        let key = &key;
        let owner = &owner;
        let error = &error;
        rb_self.store.run(ruby, |s| async move {
            s.release(key, owner, error.as_deref()).await
        })
    }

    /// `retry_task(task_list, id)`: attempts and last error cleared.
    fn retry_task(ruby: &Ruby, rb_self: &Self, task_list: Value, id: Value) -> Result<(), Error> {
        let key = args::key(ruby, task_list, id)?;
        let key = &key;
        rb_self
            .store
            .run(ruby, |s| async move { s.retry(key).await })
    }

    /// `claims(task_list)`: `[{id:, owner:, attempts:, last_error:, expires_in:}, ...]` in id
    /// order (`expires_in`: seconds until the live claim lapses, nil when none is held).
    fn claims(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<RArray, Error> {
        let list = args::list(ruby, task_list)?;
        let list = &list;
        let infos = rb_self
            .store
            .run(ruby, |s| async move { s.claim_infos(list).await })?;
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
        let key = &key;
        rb_self
            .store
            .run(ruby, |s| async move { s.claim_info(key).await })?
            .map(|c| claim_hash(ruby, c))
            .transpose()
    }

    /// Attempts after which a task is dead (nil: never).
    fn max_attempts(&self) -> Option<u32> {
        // A setting: read from what the adapter was made with, no store opened.
        self.store.spec().max_attempts()
    }

    /// `count(task_list)`: how many tasks the list holds (counted a page at a time).
    fn count(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<u64, Error> {
        let list = args::list(ruby, task_list)?;
        let list = &list;
        rb_self
            .store
            .run(ruby, |s| async move { s.count(list).await })
    }

    fn delete_list(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<(), Error> {
        let task_list = args::list(ruby, task_list)?;
        let task_list = &task_list;
        rb_self
            .store
            .run(ruby, |s| async move { s.delete_list(task_list).await })
    }

    fn clear(&self) {
        self.store.spec().clear();
    }

    /// What this adapter's log lines name as their source (nil for the memory store, which
    /// logs nothing).
    fn log_source(&self) -> Option<String> {
        self.store.spec().log_source()
    }

    /// The adapter's settings, as its `new` takes them; empty unless its class defines its
    /// own (CassandraAdapter).
    fn options(ruby: &Ruby, _rb_self: &Self) -> Result<RHash, Error> {
        Ok(ruby.hash_new())
    }

    /// Pages read by scans of this adapter so far.
    fn pages_read(&self) -> u64 {
        self.store.pages_read()
    }
}

/// Each store's adapter class, defined under Task::DataInterface as a subclass of
/// NativeAdapter (its `new`, its options, its own methods). Adding a store: one line here.
const STORES: &[StoreClass] = &[memory::define, cassandra::define, sqlite::define];

/// Defines one store's adapter class: `(ruby, Task::DataInterface, NativeAdapter)`.
type StoreClass = fn(&Ruby, RModule, RClass) -> Result<RClass, Error>;

/// Defines NativeAdapter, every store's adapter class and the scans; returns CassandraAdapter
/// (the default builder of Interface makes it).
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
    native.define_method("claim_many", method!(Adapter::claim_many, 4))?;
    native.define_method("complete_claimed", method!(Adapter::complete_claimed, 2))?;
    native.define_method("forget_claims", method!(Adapter::forget_claims, 2))?;
    native.define_method("give_back", method!(Adapter::give_back, 3))?;
    native.define_method("release", method!(Adapter::release, 4))?;
    native.define_method("retry_task", method!(Adapter::retry_task, 2))?;
    native.define_method("claims", method!(Adapter::claims, 1))?;
    native.define_method("claim_info", method!(Adapter::claim_info, 2))?;
    native.define_method("max_attempts", method!(Adapter::max_attempts, 0))?;
    native.define_method("count", method!(Adapter::count, 1))?;
    native.define_method("lists", method!(Adapter::lists, 0))?;
    native.define_method("log_source", method!(Adapter::log_source, 0))?;
    for define in STORES {
        define(ruby, data_interface, native)?;
    }
    scan::define(ruby, data_interface)?;
    data_interface.const_get("CassandraAdapter")
}

/// A claim's outcome as the Ruby side reads it: `[:won, attempts]`, `[:held, nil]`,
/// `[:dead, attempts]` or `[:gone, nil]`.
fn outcome_pair(ruby: &Ruby, outcome: ClaimOutcome) -> Result<RArray, Error> {
    let (status, attempts) = match outcome {
        ClaimOutcome::Won { attempts } => ("won", Some(attempts)),
        ClaimOutcome::Held => ("held", None),
        ClaimOutcome::Dead { attempts } => ("dead", Some(attempts)),
        ClaimOutcome::Gone => ("gone", None),
    };
    let a = ruby.ary_new_capa(2);
    a.push(ruby.to_symbol(status))?;
    a.push(attempts)?;
    Ok(a)
}
