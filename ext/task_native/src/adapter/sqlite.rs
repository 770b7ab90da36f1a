//! `Task::DataInterface::SqliteAdapter`: the SQLite store (one file, shared by the processes
//! of a host), its options, and its own calls (`describe`, `integrity_check`).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use magnus::prelude::*;
use magnus::typed_data::Obj;
use magnus::{function, method, Error, IntoValue, RArray, RClass, RHash, RModule, Ruby, Value};
use task_core::sqlite::{SqliteConfig, SqliteSpec, SqliteStore, Synchronous};

use super::Adapter;
use crate::options::{self, Opt};
use crate::{args, errors};

/// The longest `retry_deadline:` taken (a day): a lock wait past that is a mistake.
const MAX_RETRY_DEADLINE: Duration = Duration::from_secs(86_400);

/// Every SQLite store made in this process, so that their idle connections can be closed
/// just before a fork (`SqliteAdapter.close_idle_connections`, called from `Process._fork`).
static OPENED: Mutex<Vec<Weak<SqliteStore>>> = Mutex::new(Vec::new());

/// `SqliteAdapter`'s options (see `options::Opt`); `path:` is required.
const OPTIONS: &[Opt<SqliteConfig>] = &[
    Opt {
        name: "path",
        read: |r, c, v| {
            let path = options::text(r, "path", v)?;
            if path.is_empty() {
                return Err(errors::argument(r, "SqliteAdapter path: must not be empty"));
            }
            c.path = path.into();
            Ok(())
        },
        show: Some(|r, c| c.path.display().to_string().into_value_with(r)),
    },
    Opt {
        name: "retry_deadline",
        read: |r, c, v| {
            let d = options::seconds(r, "retry_deadline", v)?;
            if d > MAX_RETRY_DEADLINE {
                return Err(errors::argument(
                    r,
                    format!(
                        "retry_deadline must be at most {} seconds, got {}",
                        MAX_RETRY_DEADLINE.as_secs(),
                        d.as_secs_f64()
                    ),
                ));
            }
            c.retry_deadline = d;
            Ok(())
        },
        show: Some(|r, c| c.retry_deadline.as_secs_f64().into_value_with(r)),
    },
    Opt {
        name: "page_size",
        read: |r, c, v| {
            let n = args::integer_in(r, "page_size", v, 1, 1_000_000)?;
            c.page_size = usize::try_from(n).unwrap_or(1);
            Ok(())
        },
        show: Some(|r, c| c.page_size.into_value_with(r)),
    },
    Opt {
        name: "max_attempts",
        read: |r, c, v| {
            c.max_attempts = options::max_attempts(r, v)?;
            Ok(())
        },
        show: Some(|r, c| c.max_attempts.into_value_with(r)),
    },
    Opt {
        name: "default_ttl",
        read: |r, c, v| {
            c.default_ttl = options::default_ttl(r, v)?;
            Ok(())
        },
        show: Some(|r, c| c.default_ttl.map(|d| d.as_secs_f64()).into_value_with(r)),
    },
    Opt {
        name: "synchronous",
        read: |r, c, v| {
            c.synchronous = match options::text(r, "synchronous", v)?.as_str() {
                "full" => Synchronous::Full,
                "normal" => Synchronous::Normal,
                other => {
                    return Err(errors::argument(
                        r,
                        format!("synchronous must be :full or :normal, got {other:?}"),
                    ))
                }
            };
            Ok(())
        },
        show: Some(|r, c| {
            r.to_symbol(match c.synchronous {
                Synchronous::Full => "full",
                Synchronous::Normal => "normal",
            })
            .into_value_with(r)
        }),
    },
];

const USAGE: &str = "SqliteAdapter.new(path:, retry_deadline: 5, page_size: 1000, \
                     max_attempts: 25, default_ttl: nil, synchronous: :full)";

/// `SqliteAdapter.new(path:, ...)`: opens the file now (made with its schema when absent or
/// empty); a file that is not a task database, or of a newer schema, is refused untouched.
pub(super) fn sqlite_new(
    ruby: &Ruby,
    class: RClass,
    args: &[Value],
) -> Result<Obj<Adapter>, Error> {
    let [h] = args else {
        return Err(errors::argument(
            ruby,
            format!("{USAGE}: path: is required"),
        ));
    };
    let h = RHash::try_convert(*h)?;
    let mut config = SqliteConfig::new("");
    options::read(ruby, h, "SqliteAdapter", &[], OPTIONS, &mut config)?;
    if config.path.as_os_str().is_empty() {
        return Err(errors::argument(
            ruby,
            format!("{USAGE}: path: is required"),
        ));
    }
    let spec = SqliteSpec::open(config).map_err(|e| errors::from_core(ruby, e))?;
    {
        let mut opened = OPENED.lock().unwrap_or_else(|p| p.into_inner());
        opened.retain(|w| w.strong_count() > 0);
        opened.push(Arc::downgrade(spec.store()));
    }
    Ok(ruby.obj_wrap_as(Adapter::new(Box::new(spec)), class))
}

/// `SqliteAdapter.close_idle_connections`: closes the idle connections of every SQLite
/// adapter of this process (lib/task/adapters/sqlite.rb calls it just before a fork, so that
/// the child starts with no connection to the file).
fn close_idle_connections() -> usize {
    let stores: Vec<Arc<SqliteStore>> = {
        let opened = OPENED.lock().unwrap_or_else(|p| p.into_inner());
        opened.iter().filter_map(Weak::upgrade).collect()
    };
    for s in &stores {
        s.close_idle();
    }
    stores.len()
}

impl Adapter {
    fn sqlite_spec(ruby: &Ruby, rb_self: &Self) -> Result<SqliteSpec, Error> {
        rb_self
            .store
            .spec()
            .as_any()
            .downcast_ref::<SqliteSpec>()
            .cloned()
            .ok_or_else(|| errors::argument(ruby, "not a SqliteAdapter"))
    }

    /// `options`: the settings, as `new` takes them.
    fn sqlite_options(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        let spec = Self::sqlite_spec(ruby, rb_self)?;
        options::shown(ruby, spec.config(), OPTIONS)
    }

    /// `describe`: `{ path:, sqlite_version:, schema_version:, journal_mode:, synchronous:,
    /// bytes: }`.
    fn sqlite_describe(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        let spec = &Self::sqlite_spec(ruby, rb_self)?;
        let r = rb_self
            .store
            .run(ruby, |_| async move { spec.call(|s| s.describe()) })?;
        let h = ruby.hash_new();
        h.aset(ruby.sym_new("path"), r.path.display().to_string())?;
        h.aset(ruby.sym_new("sqlite_version"), r.sqlite_version)?;
        h.aset(ruby.sym_new("schema_version"), r.schema_version)?;
        h.aset(ruby.sym_new("journal_mode"), r.journal_mode)?;
        h.aset(ruby.sym_new("synchronous"), r.synchronous)?;
        h.aset(ruby.sym_new("bytes"), r.bytes)?;
        Ok(h)
    }

    /// `integrity_check`: `PRAGMA integrity_check`; the problems SQLite reports (empty: the
    /// file is sound).
    fn sqlite_integrity_check(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let spec = &Self::sqlite_spec(ruby, rb_self)?;
        let out = rb_self
            .store
            .run(ruby, |_| async move { spec.call(|s| s.integrity_check()) })?;
        let a = ruby.ary_new();
        if let Err(problems) = out {
            for p in problems {
                a.push(p)?;
            }
        }
        Ok(a)
    }

    /// `create_schema`: makes the tables when missing (the adapter already did when it
    /// opened the file); takes no options.
    fn sqlite_create_schema(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<(), Error> {
        if let [h] = args {
            // The other stores' options (replication, ...) mean nothing here: refused.
            let h = RHash::try_convert(*h)?;
            args::options_by_name(ruby, h, "SqliteAdapter#create_schema", &[])?;
        } else if !args.is_empty() {
            return Err(errors::argument(ruby, "create_schema takes no arguments"));
        }
        let schema = task_core::Schema::default();
        let schema = &schema;
        rb_self
            .store
            .run(ruby, |s| async move { s.create_schema(schema).await })
    }
}

/// Defines SqliteAdapter.
pub(super) fn define(
    _ruby: &Ruby,
    data_interface: RModule,
    native: RClass,
) -> Result<RClass, Error> {
    let sqlite = data_interface.define_class("SqliteAdapter", native)?;
    sqlite.define_singleton_method("new", method!(sqlite_new, -1))?;
    sqlite.define_singleton_method(
        "close_idle_connections",
        function!(close_idle_connections, 0),
    )?;
    sqlite.define_method("options", method!(Adapter::sqlite_options, 0))?;
    sqlite.define_method("describe", method!(Adapter::sqlite_describe, 0))?;
    sqlite.define_method(
        "integrity_check",
        method!(Adapter::sqlite_integrity_check, 0),
    )?;
    sqlite.define_method("create_schema", method!(Adapter::sqlite_create_schema, -1))?;
    Ok(sqlite)
}
