//! The classes and modules the extension defines, kept from init (and pinned, so GC
//! compaction cannot move them under us), and Ruby's method lookup where it is available.

use std::ffi::c_void;
use std::sync::OnceLock;

use magnus::value::{LazyId, Opaque, ReprValue};
use magnus::{Error, RClass, RModule, Ruby, Value};

use crate::raw;

struct Kept {
    task: Opaque<RModule>,
    interface: Opaque<RClass>,
    cassandra_adapter: Opaque<RClass>,
    indifferent_hash: Opaque<RClass>,
}

static KEPT: OnceLock<Kept> = OnceLock::new();

/// Called once from init, after every class is defined.
pub fn keep(
    task: RModule,
    interface: RClass,
    cassandra_adapter: RClass,
    indifferent_hash: RClass,
) -> Result<(), Error> {
    for v in [
        task.as_value(),
        interface.as_value(),
        cassandra_adapter.as_value(),
        indifferent_hash.as_value(),
    ] {
        // Marked and pinned for the life of the process.
        magnus::gc::register_mark_object(v);
    }
    let _ = KEPT.set(Kept {
        task: task.into(),
        interface: interface.into(),
        cassandra_adapter: cassandra_adapter.into(),
        indifferent_hash: indifferent_hash.into(),
    });
    Ok(())
}

fn kept(ruby: &Ruby) -> Result<&'static Kept, Error> {
    KEPT.get().ok_or_else(|| {
        Error::new(
            ruby.exception_runtime_error(),
            "the task extension is not initialised",
        )
    })
}

/// Task::Task.
pub fn task_module(ruby: &Ruby) -> Result<RModule, Error> {
    Ok(ruby.get_inner(kept(ruby)?.task))
}

/// Task::DataInterface::Interface.
pub fn interface(ruby: &Ruby) -> Result<RClass, Error> {
    Ok(ruby.get_inner(kept(ruby)?.interface))
}

/// Task::DataInterface::CassandraAdapter.
pub fn cassandra_adapter(ruby: &Ruby) -> Result<RClass, Error> {
    Ok(ruby.get_inner(kept(ruby)?.cassandra_adapter))
}

/// Task::IndifferentHash (its methods are in lib/task/indifferent_hash.rb).
pub fn indifferent_hash(ruby: &Ruby) -> Result<RClass, Error> {
    Ok(ruby.get_inner(kept(ruby)?.indifferent_hash))
}

/// The method entry `name` resolves to on `klass` (a class or module), or None when Ruby's
/// lookup is not available or finds nothing (see `raw::method_entry`).
pub fn method_entry(ruby: &Ruby, klass: Value, name: &LazyId) -> Option<*const c_void> {
    raw::method_entry(ruby, klass, name)
}
