//! `Task::DataInterface::MemoryAdapter`: the in-process store, and its options.

use std::sync::Arc;

use magnus::prelude::*;
use magnus::typed_data::Obj;
use magnus::{method, Error, RClass, RHash, RModule, Ruby, Value};
use task_core::memory::MemorySpec;
use task_core::MemoryStore;

use super::Adapter;
use crate::{args, errors, options};

/// `MemoryAdapter.new(page_size: 1000)`.
pub(super) fn memory_new(
    ruby: &Ruby,
    class: RClass,
    args: &[Value],
) -> Result<Obj<Adapter>, Error> {
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
    Ok(ruby.obj_wrap_as(Adapter::new(Box::new(MemorySpec(Arc::new(store)))), class))
}

/// Defines MemoryAdapter.
pub(super) fn define(
    _ruby: &Ruby,
    data_interface: RModule,
    native: RClass,
) -> Result<RClass, Error> {
    let memory = data_interface.define_class("MemoryAdapter", native)?;
    memory.define_singleton_method("new", method!(memory_new, -1))?;
    memory.define_method("clear", method!(Adapter::clear, 0))?;
    Ok(memory)
}
