//! Scans: the task scan `all` and `rows` return (a page in memory at a time, the next read
//! ahead where the store gains by it) and the list-name scan `lists` returns.

use std::sync::Arc;

use magnus::prelude::*;
use magnus::typed_data::Obj;
use magnus::value::{LazyId, ReprValue};
use magnus::{method, Error, RHash, RModule, Ruby, Symbol, Value};
use task_core::{Cursor, TaskRecord};

use super::hashes::raw_row;
use super::parse::bad_row_handler;
use super::Adapter;
use crate::store::{PageAhead, StoreHandle};
use crate::{args, convert, errors, instrumentation};

/// The names of the lists a store holds, read a page at a time (`adapter.lists`).
#[magnus::wrap(class = "Task::DataInterface::ListScan", free_immediately, size)]
pub struct ListScan {
    store: Arc<StoreHandle>,
}

impl ListScan {
    pub(super) fn each(ruby: &Ruby, scan: Obj<ListScan>) -> Result<Value, Error> {
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

pub(super) static IV_ON_BAD_ROW: LazyId = LazyId::new("@on_bad_row");

/// Hands a row that could not become a task to the scan's `on_bad_row` handler.
pub(super) fn report_bad_row(
    ruby: &Ruby,
    handler: Value,
    r: &TaskRecord,
    e: Error,
) -> Result<(), Error> {
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
    pub(super) fn each(ruby: &Ruby, scan: Obj<TaskScan>) -> Result<Value, Error> {
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

    pub(super) fn task_list(&self) -> String {
        self.task_list.clone()
    }
}

impl Adapter {
    pub(super) fn scan(
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
    pub(super) fn all(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<Value, Error> {
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
    pub(super) fn rows(ruby: &Ruby, rb_self: &Self, task_list: Value) -> Result<Value, Error> {
        Self::scan(ruby, rb_self, task_list, true, None, None)
    }

    /// `lists`: the names of the lists that hold tasks, lazily, a page at a time.
    pub(super) fn lists(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        ruby.obj_wrap(ListScan {
            store: rb_self.store.clone(),
        })
        .funcall("lazy", ())
    }
}

/// Defines ListScan and TaskScan.
pub(super) fn define(ruby: &Ruby, data_interface: RModule) -> Result<(), Error> {
    let list_scan = data_interface.define_class("ListScan", ruby.class_object())?;
    list_scan.undef_default_alloc_func();
    list_scan.include_module(ruby.module_enumerable())?;
    list_scan.define_method("each", method!(ListScan::each, 0))?;

    let scan = data_interface.define_class("TaskScan", ruby.class_object())?;
    scan.undef_default_alloc_func();
    scan.include_module(ruby.module_enumerable())?;
    scan.define_method("each", method!(TaskScan::each, 0))?;
    scan.define_method("task_list", method!(TaskScan::task_list, 0))?;
    Ok(())
}
