//! The two stores behind one face, and the conversions between Ruby task objects and the
//! records the stores hold. Every I/O wait goes through `Runtime::block_on` (GVL released).

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use magnus::encoding::EncodingCapable;
use magnus::prelude::*;
use magnus::value::{LazyId, ReprValue};
use magnus::{Error, Float, Integer, RClass, RHash, RString, Ruby, Symbol, Value};
use task_core::{CassandraConfig, CassandraStore, MemoryStore, TaskKey, TaskRecord};
use tokio::task::JoinHandle;

use crate::{codec, errors, runtime, task};

pub enum Store {
    /// The store and its page size.
    Memory(Arc<MemoryStore>, usize),
    Cassandra(Box<CassandraHandle>),
}

/// A Cassandra config and the store this process uses for it. Holding the store keeps its
/// driver session open; when the last adapter holding it is garbage-collected, the session
/// is closed (see `Connector`).
pub struct CassandraHandle {
    pub config: CassandraConfig,
    /// The store, and the pid of the process whose runtime it belongs to.
    held: Mutex<Option<(u32, Arc<CassandraStore>)>>,
}

impl CassandraHandle {
    pub fn new(config: CassandraConfig) -> Self {
        CassandraHandle {
            config,
            held: Mutex::new(None),
        }
    }

    /// The store of this process for the config: the one held, or (first use, or first use
    /// in a forked child) a new one from the process's connector.
    fn store(&self, rt: &'static runtime::Runtime) -> Arc<CassandraStore> {
        let pid = std::process::id();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, store)) = &*held {
            if *owner == pid {
                return store.clone();
            }
        }
        let store = rt.connector.store(&self.config);
        if let Some(inherited) = held.replace((pid, store.clone())) {
            // The parent's store: dropping it here could close the parent's connections'
            // registrations in the shared epoll instance.
            std::mem::forget(inherited);
        }
        store
    }
}

impl Drop for CassandraHandle {
    fn drop(&mut self) {
        let held = self.held.get_mut().unwrap_or_else(|p| p.into_inner());
        if matches!(held, Some((owner, _)) if *owner != std::process::id()) {
            std::mem::forget(held.take());
        }
    }
}

/// A store and what has been read from it.
pub struct Backend {
    pub store: Store,
    /// Pages scans (`all`, `rows`) have handed over, to show a scan reads lazily. (A
    /// Cassandra scan also has the page after the current one requested, see `Prefetch`.)
    pub pages_read: AtomicU64,
}

/// The next page of a Cassandra scan, requested while the caller works through the current
/// one, so the node reads it meanwhile. Dropping it (the scan ended early) cancels it.
pub struct Prefetch {
    rt: &'static runtime::Runtime,
    handle: ManuallyDrop<JoinHandle<task_core::Result<task_core::Page<task_core::ScanCursor>>>>,
}

impl Prefetch {
    /// False in a forked child: the request is the parent's, on the parent's connection.
    pub fn is_current_process(&self) -> bool {
        self.rt.is_current_process()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // In a forked child the handle is left alone: aborting would schedule the parent's
        // task and wake the parent's runtime through the descriptors both processes share.
        if self.rt.is_current_process() {
            self.handle.abort();
            // Safety: dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.handle) };
        }
    }
}

/// How many rows a memory scan takes at a time by default (a Cassandra scan uses its
/// config's page size).
pub const MEMORY_PAGE: usize = 1000;

pub enum Cursor {
    Start,
    Memory((String, String)),
    Cassandra(task_core::ScanCursor),
    Done,
}

static ID_TASK_LIST: LazyId = LazyId::new("task_list");
static ID_ID: LazyId = LazyId::new("id");
static ID_DATA: LazyId = LazyId::new("data");
static ID_NEW: LazyId = LazyId::new("new");

impl Backend {
    pub fn new(store: Store) -> Self {
        Backend {
            store,
            pages_read: AtomicU64::new(0),
        }
    }

    pub fn cassandra(
        &self,
        ruby: &Ruby,
        handle: &CassandraHandle,
    ) -> Result<(&'static runtime::Runtime, Arc<CassandraStore>), Error> {
        let rt = runtime::current(ruby)?;
        Ok((rt, handle.store(rt)))
    }

    pub fn store(&self, ruby: &Ruby, record: TaskRecord) -> Result<(), Error> {
        match &self.store {
            Store::Memory(m, _) => m.store(&record).map_err(|e| errors::from_core(ruby, e)),
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, store.store(&record))
            }
        }
    }

    pub fn store_raw(&self, ruby: &Ruby, record: TaskRecord) -> Result<(), Error> {
        match &self.store {
            Store::Memory(m, _) => m.store_raw(&record).map_err(|e| errors::from_core(ruby, e)),
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, store.store_raw(&record))
            }
        }
    }

    pub fn find(&self, ruby: &Ruby, key: TaskKey) -> Result<Option<TaskRecord>, Error> {
        match &self.store {
            Store::Memory(m, _) => Ok(m.find(&key)),
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, store.find(&key))
            }
        }
    }

    pub fn delete(&self, ruby: &Ruby, key: TaskKey) -> Result<(), Error> {
        match &self.store {
            Store::Memory(m, _) => {
                m.delete(&key);
                Ok(())
            }
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, store.delete(&key))
            }
        }
    }

    pub fn delete_list(&self, ruby: &Ruby, task_list: String) -> Result<(), Error> {
        task_core::record::check_list(&task_list).map_err(|e| errors::from_core(ruby, e))?;
        match &self.store {
            Store::Memory(m, _) => {
                m.delete_list(&task_list);
                Ok(())
            }
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, store.delete_list(&task_list))
            }
        }
    }

    /// Stores every record; one result per record, in order. Nothing is dropped: a record
    /// whose write failed has its error in its slot.
    pub fn store_many(
        &self,
        ruby: &Ruby,
        records: Arc<[TaskRecord]>,
        concurrency: usize,
    ) -> Result<Vec<task_core::Result<()>>, Error> {
        match &self.store {
            Store::Memory(m, _) => Ok(m.store_many(&records)),
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, async move {
                    Ok(store.store_many(records, concurrency).await)
                })
            }
        }
    }

    pub fn delete_many(
        &self,
        ruby: &Ruby,
        keys: Arc<[TaskKey]>,
        concurrency: usize,
    ) -> Result<Vec<task_core::Result<()>>, Error> {
        match &self.store {
            Store::Memory(m, _) => Ok(m.delete_many(&keys)),
            Store::Cassandra(c) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                rt.block_on(ruby, async move {
                    Ok(store.delete_many(keys, concurrency).await)
                })
            }
        }
    }

    /// Requests the page at `cursor` ahead of need (Cassandra; `None` for the memory store,
    /// whose pages cost nothing to wait for, and at the end of a scan).
    pub fn prefetch(
        &self,
        ruby: &Ruby,
        task_list: &str,
        cursor: &Cursor,
    ) -> Result<Option<Prefetch>, Error> {
        let (Store::Cassandra(c), Cursor::Cassandra(start)) = (&self.store, cursor) else {
            return Ok(None);
        };
        let (rt, store) = self.cassandra(ruby, c)?;
        let (list, start) = (task_list.to_string(), start.clone());
        let handle = rt.spawn(async move { store.page(&list, Some(start)).await });
        rt.nudge();
        Ok(Some(Prefetch {
            rt,
            handle: ManuallyDrop::new(handle),
        }))
    }

    /// Waits for a prefetched page (GVL released, interruptible, as `page`).
    pub fn take(
        &self,
        ruby: &Ruby,
        mut prefetch: Prefetch,
    ) -> Result<(Vec<TaskRecord>, Cursor), Error> {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
        let rt = prefetch.rt;
        let handle = &mut *prefetch.handle;
        let page = rt.block_on(ruby, async move {
            match handle.await {
                Ok(page) => page,
                Err(e) => Err(task_core::Error::Unavailable(format!(
                    "reading the next page did not finish: {e}"
                ))),
            }
        })?;
        Ok((
            page.records,
            page.next.map_or(Cursor::Done, Cursor::Cassandra),
        ))
    }

    /// The next page of a scan, and where the one after starts.
    pub fn page(
        &self,
        ruby: &Ruby,
        task_list: &str,
        cursor: &Cursor,
    ) -> Result<(Vec<TaskRecord>, Cursor), Error> {
        let core = |e| errors::from_core(ruby, e);
        if !matches!(cursor, Cursor::Done) {
            self.pages_read.fetch_add(1, Ordering::Relaxed);
        }
        match (&self.store, cursor) {
            (_, Cursor::Done) => Ok((Vec::new(), Cursor::Done)),
            (Store::Memory(m, page_size), Cursor::Start | Cursor::Memory(_)) => {
                let after = match cursor {
                    Cursor::Memory(a) => Some(a),
                    _ => None,
                };
                let page = m.page(task_list, after, *page_size).map_err(core)?;
                Ok((page.records, page.next.map_or(Cursor::Done, Cursor::Memory)))
            }
            (Store::Cassandra(c), Cursor::Start | Cursor::Cassandra(_)) => {
                let (rt, store) = self.cassandra(ruby, c)?;
                let start = match cursor {
                    Cursor::Cassandra(s) => Some(s.clone()),
                    _ => None,
                };
                let page = rt.block_on(ruby, store.page(task_list, start))?;
                Ok((
                    page.records,
                    page.next.map_or(Cursor::Done, Cursor::Cassandra),
                ))
            }
            _ => Err(errors::argument(
                ruby,
                "scan cursor does not belong to this store",
            )),
        }
    }
}

/// A String attribute of a task for the store, by the rule of `key_text`; an error also
/// names the task's class.
fn string_attr(ruby: &Ruby, task: Value, name: &str, value: Value) -> Result<String, Error> {
    key_text(ruby, name, value, &|| {
        format!(" (saving a {} task)", task.class().inspect())
    })
}

/// The record for a task object, or a clear error before anything is written.
pub fn record_from_task(ruby: &Ruby, task: Value) -> Result<TaskRecord, Error> {
    let task_list = string_attr(ruby, task, "task_list", task.funcall(*ID_TASK_LIST, ())?)?;
    let id = string_attr(ruby, task, "id", task.funcall(*ID_ID, ())?)?;
    let class = task.class();
    let type_name = match unsafe { class.name() } {
        std::borrow::Cow::Borrowed(s) if !s.starts_with("#<") => s.to_string(),
        std::borrow::Cow::Owned(s) if !s.starts_with("#<") => s,
        _ => {
            return Err(errors::argument(
                ruby,
                format!("cannot save task {id:?} of list {task_list:?}: its class has no name (an anonymous class cannot be found again)"),
            ))
        }
    };
    let data_v: Value = task.funcall(*ID_DATA, ())?;
    let Some(data) = RHash::from_value(data_v) else {
        return Err(errors::argument(
            ruby,
            format!(
                "task {id:?} of list {task_list:?}: data must be a Hash, got {}",
                data_v.class().inspect()
            ),
        ));
    };
    let data = codec::data_to_json(ruby, data, &|| format!("task {id:?} of list {task_list:?}"))?;
    let record = TaskRecord {
        task_list,
        id,
        type_name,
        data: Some(data),
    };
    // The stores check this again; checked here too so that a bulk call refuses the whole
    // batch before writing any of it (an id and type over Cassandra's key limit together).
    record
        .validate_columns()
        .map_err(|e| errors::from_core(ruby, e))?;
    Ok(record)
}

/// Looks up a task class by name (`Foo::Bar` too). `Ok(Err(msg))` when the name is not a
/// task class; NameError (from const_get) when nothing has that name.
pub fn task_class(ruby: &Ruby, name: &str) -> Result<Result<RClass, String>, Error> {
    task_class_named(ruby, ruby.str_new(name).as_value(), &|| name.to_string())
}

/// `task_class` for a name already in a Ruby String (`shown` gives it for messages).
pub fn task_class_named(
    ruby: &Ruby,
    name: Value,
    shown: &dyn Fn() -> String,
) -> Result<Result<RClass, String>, Error> {
    let found: Value = ruby.class_object().funcall("const_get", (name,))?;
    let Some(class) = RClass::from_value(found) else {
        return Ok(Err(format!("{} is not a class", shown())));
    };
    let includes: bool = class.funcall("include?", (task::task_module(ruby)?,))?;
    if !includes {
        return Ok(Err(format!("{} does not include Task::Task", shown())));
    }
    Ok(Ok(class))
}

/// Instantiates a task from its parts as the original did, through `Class#new`; directly
/// when nothing would differ (the class keeps `Class#new` and Task::Task#initialize).
/// `data_coerced`: `data` is a fresh Hash whose top-level keys are already Symbols.
pub fn new_task(
    ruby: &Ruby,
    class: RClass,
    task_list: Value,
    id: Value,
    data: Value,
    data_coerced: bool,
) -> Result<Value, Error> {
    if task::plain_new(ruby, class)? {
        return task::new_plain(ruby, class, task_list, id, data, data_coerced);
    }
    let attrs = ruby.hash_new();
    attrs.aset(ruby.sym_new("task_list"), task_list)?;
    attrs.aset(ruby.sym_new("id"), id)?;
    attrs.aset(ruby.sym_new("data"), data)?;
    class.funcall(*ID_NEW, (attrs,))
}

/// Task types already looked up during one scan, by stored type name. Lives on the stack of
/// the scan (so the classes in it stay visible to the GC) and only as long as one page.
#[derive(Default)]
pub struct TypeCache {
    types: Vec<(String, RClass)>,
}

impl TypeCache {
    fn get(&mut self, ruby: &Ruby, record: &TaskRecord) -> Result<RClass, Error> {
        if let Some((_, t)) = self
            .types
            .iter()
            .find(|(name, _)| *name == record.type_name)
        {
            return Ok(*t);
        }
        let what = || format!("task {:?} of list {:?}", record.id, record.task_list);
        let class = match task_class(ruby, &record.type_name) {
            Ok(Ok(c)) => c,
            Ok(Err(msg)) => {
                return Err(errors::bad_data(
                    ruby,
                    format!("{}: stored type: {msg}", what()),
                ))
            }
            Err(e) => {
                return Err(errors::bad_data(
                    ruby,
                    format!(
                        "{}: stored type {:?} names no task class ({e})",
                        what(),
                        record.type_name
                    ),
                ))
            }
        };
        self.types.push((record.type_name.clone(), class));
        Ok(class)
    }
}

/// A task object from a stored row; a row naming no task class or holding bad data raises
/// an error that names its list and id.
pub fn task_from_record(ruby: &Ruby, record: &TaskRecord) -> Result<Value, Error> {
    task_from_record_cached(ruby, record, &mut TypeCache::default())
}

pub fn task_from_record_cached(
    ruby: &Ruby,
    record: &TaskRecord,
    types: &mut TypeCache,
) -> Result<Value, Error> {
    let class = types.get(ruby, record)?;
    let what = || format!("task {:?} of list {:?}", record.id, record.task_list);
    let Some(text) = &record.data else {
        return Err(errors::bad_data(
            ruby,
            format!("{}: stored data is null", what()),
        ));
    };
    let data = codec::json_to_data(ruby, text, &what)?;
    new_task(
        ruby,
        class,
        ruby.str_new(&record.task_list).as_value(),
        ruby.str_new(&record.id).as_value(),
        data.as_value(),
        true,
    )
}

/// The one rule for a task list or an id (`name`), in every call that takes one: save,
/// complete, find, delete, all, rows, delete_list, store_row and the bulk calls, on every
/// store. task_rb coerced these with Virtus' String coercion, so what it could coerce is taken
/// as its `to_s` (a Symbol, Integer or Float); a String must be valid UTF-8 (another encoding
/// is converted to it) and non-empty; anything else is an ArgumentError naming the argument
/// and the class given (a `to_s` of an Array or object would name some other task).
/// `context` is appended to a refusal.
pub fn key_text(
    ruby: &Ruby,
    name: &str,
    v: Value,
    context: &dyn Fn() -> String,
) -> Result<String, Error> {
    let refuse = |got: String| {
        errors::argument(
            ruby,
            format!(
                "task {name} must be a non-empty String, Symbol, Integer or Float; got {got}{}",
                context()
            ),
        )
    };
    let s: RString = if let Some(s) = RString::from_value(v) {
        s
    } else if Symbol::from_value(v).is_some()
        || Integer::from_value(v).is_some()
        || Float::from_value(v).is_some()
    {
        v.funcall("to_s", ())?
    } else if v.is_nil() {
        return Err(refuse("nil".to_string()));
    } else {
        return Err(refuse(v.class().inspect()));
    };
    let invalid = || {
        errors::argument(
            ruby,
            format!(
                "task {name} must be valid UTF-8, got {}{}",
                codec::short_inspect(s.as_value()),
                context()
            ),
        )
    };
    let enc = s.enc_get();
    let utf8 = if enc == ruby.utf8_encindex()
        || enc == ruby.usascii_encindex()
        || enc == ruby.ascii8bit_encindex()
    {
        s
    } else {
        // As JSON.generate treats data strings: other encodings are converted.
        s.funcall::<_, _, RString>("encode", ("UTF-8",))
            .map_err(|_| invalid())?
    };
    // Safety: the bytes are copied before any Ruby code can run.
    let text = match std::str::from_utf8(unsafe { utf8.as_slice() }) {
        Ok(t) => t.to_owned(),
        Err(_) => return Err(invalid()),
    };
    if text.is_empty() {
        return Err(refuse("\"\"".to_string()));
    }
    task_core::record::check_length(name, &text)
        .map_err(|e| errors::argument(ruby, format!("{}{}", e.message(), context())))?;
    Ok(text)
}

fn text_arg(ruby: &Ruby, name: &str, v: Value) -> Result<String, Error> {
    key_text(ruby, name, v, &String::new)
}

/// (list, id) arguments to a key, with the errors the store would give.
pub fn key(ruby: &Ruby, task_list: Value, id: Value) -> Result<TaskKey, Error> {
    TaskKey::new(
        text_arg(ruby, "task_list", task_list)?,
        text_arg(ruby, "id", id)?,
    )
    .map_err(|e| errors::from_core(ruby, e))
}

/// A task list argument: a non-empty String.
pub fn list(ruby: &Ruby, task_list: Value) -> Result<String, Error> {
    let list = text_arg(ruby, "task_list", task_list)?;
    task_core::record::check_list(&list).map_err(|e| errors::from_core(ruby, e))?;
    Ok(list)
}
