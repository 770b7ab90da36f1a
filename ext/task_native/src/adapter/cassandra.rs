//! `Task::DataInterface::CassandraAdapter`: its construction and options (`crate::options`)
//! and the calls only a store with a server has (schema, tuning, describe).

use magnus::prelude::*;
use magnus::typed_data::Obj;
use magnus::value::ReprValue;
use magnus::{function, method, Error, RClass, RHash, RModule, Ruby, Value};
use task_core::{CassandraConfig, Replication, Schema, DEFAULT_GC_GRACE_SECONDS};

use super::parse::{replication_map, u32_in};
use super::Adapter;
use crate::{args, classes, errors, options, runtime};

/// A CassandraAdapter for an already-read config.
pub fn cassandra_adapter(ruby: &Ruby, config: CassandraConfig) -> Result<Value, Error> {
    let class = classes::cassandra_adapter(ruby)?;
    Ok(ruby
        .obj_wrap_as(Adapter::new(Box::new(config)), class)
        .as_value())
}

pub(super) fn cassandra_new(
    ruby: &Ruby,
    class: RClass,
    args: &[Value],
) -> Result<Obj<Adapter>, Error> {
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
    Ok(ruby.obj_wrap_as(Adapter::new(Box::new(config)), class))
}

/// `CassandraAdapter.open_sessions`: driver sessions this process holds (one per distinct
/// connection config, however many adapters and interfaces use it).
pub(super) fn open_sessions(ruby: &Ruby) -> Result<usize, Error> {
    Ok(runtime::current(ruby)?.connector.open_sessions())
}

impl Adapter {
    /// `tune_table(run: false)`: the ALTER TABLE statements that give the task table (and the
    /// claims table) the options `create_schema` uses for churn; `run: true` runs them.
    pub(super) fn tune_table(
        ruby: &Ruby,
        rb_self: &Self,
        args: &[Value],
    ) -> Result<Vec<String>, Error> {
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

    /// `describe`: what the node says about the deployment (`task doctor` reports it):
    /// `{ release_version:, cql_version:, server_time: Time, replication: { "class" => ... }
    /// or nil, tables: { "tasks" => { gc_grace_seconds:, compaction: {...} } or nil, ... } }`.
    pub(super) fn describe(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
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
    pub(super) fn create_claims_table(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self
            .store
            .run(ruby, |s| async move { s.create_claims_table().await })
    }

    /// `create_schema(replication_factor: 1, claims: true, gc_grace_seconds: 10800)`, or
    /// `create_schema(replication: { "dc1" => 2, "dc2" => 1 })` (NetworkTopologyStrategy):
    /// the keyspace, the task table and (unless `claims: false`) the claims table.
    pub(super) fn create_schema(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<(), Error> {
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
        let schema = &schema;
        rb_self
            .store
            .run(ruby, |s| async move { s.create_schema(schema).await })
    }

    /// The adapter's settings, as `CassandraAdapter.new` takes them (the password left out);
    /// empty for a memory adapter.
    pub(super) fn cassandra_options(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        match rb_self
            .store
            .spec()
            .as_any()
            .downcast_ref::<CassandraConfig>()
        {
            Some(c) => options::cassandra_shown(ruby, c),
            None => Ok(ruby.hash_new()),
        }
    }
}

/// Defines CassandraAdapter.
pub(super) fn define(
    _ruby: &Ruby,
    data_interface: RModule,
    native: RClass,
) -> Result<RClass, Error> {
    let cassandra = data_interface.define_class("CassandraAdapter", native)?;
    cassandra.define_singleton_method("new", method!(cassandra_new, -1))?;
    cassandra.define_method("options", method!(Adapter::cassandra_options, 0))?;
    cassandra.define_method("create_schema", method!(Adapter::create_schema, -1))?;
    cassandra.define_method("tune_table", method!(Adapter::tune_table, -1))?;
    cassandra.define_method(
        "create_claims_table",
        method!(Adapter::create_claims_table, 0),
    )?;
    cassandra.define_singleton_method("open_sessions", function!(open_sessions, 0))?;
    cassandra.define_method("describe", method!(Adapter::describe, 0))?;
    Ok(cassandra)
}
