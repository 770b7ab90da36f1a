//! `Task::DataInterface::MemoryAdapter`: the in-process store, and its options.

use std::sync::Arc;

use magnus::prelude::*;
use magnus::typed_data::Obj;
use magnus::{method, Error, RClass, RHash, RModule, Ruby, Value};
use task_core::memory::MemorySpec;
use task_core::MemoryStore;

use super::Adapter;
use crate::options::{self, Opt};
use crate::{args, errors};

/// What `MemoryAdapter.new` is given.
struct MemoryOptions {
    page_size: usize,
    max_attempts: Option<u32>,
    default_ttl: Option<std::time::Duration>,
}

/// `MemoryAdapter`'s options (see `options::Opt`); `#options` shows none of them, as before.
const OPTIONS: &[Opt<MemoryOptions>] = &[
    Opt {
        name: "page_size",
        read: |r, o, v| {
            // Memory pages are Vecs: any count that fits in memory is fine.
            let n = args::integer_in(r, "page_size", v, 1, i64::MAX)?;
            o.page_size = usize::try_from(n).unwrap_or(usize::MAX);
            Ok(())
        },
        show: None,
    },
    Opt {
        name: "max_attempts",
        read: |r, o, v| {
            o.max_attempts = options::max_attempts(r, v)?;
            Ok(())
        },
        show: None,
    },
    Opt {
        name: "default_ttl",
        read: |r, o, v| {
            o.default_ttl = options::default_ttl(r, v)?;
            Ok(())
        },
        show: None,
    },
];

/// `MemoryAdapter.new(page_size: 1000, max_attempts: 25, default_ttl: nil)`.
pub(super) fn memory_new(
    ruby: &Ruby,
    class: RClass,
    args: &[Value],
) -> Result<Obj<Adapter>, Error> {
    let mut o = MemoryOptions {
        page_size: task_core::memory::DEFAULT_PAGE_SIZE,
        max_attempts: Some(task_core::claims::DEFAULT_MAX_ATTEMPTS),
        default_ttl: None,
    };
    match args {
        [] => {}
        [h] => options::read(
            ruby,
            RHash::try_convert(*h)?,
            "MemoryAdapter",
            &[],
            OPTIONS,
            &mut o,
        )?,
        _ => {
            return Err(errors::argument(
                ruby,
                "MemoryAdapter.new(page_size: 1000, max_attempts: 25)",
            ))
        }
    }
    let store =
        MemoryStore::with_options(o.page_size, o.max_attempts).with_default_ttl(o.default_ttl);
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
