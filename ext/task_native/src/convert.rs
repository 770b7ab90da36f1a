//! Ruby task objects <-> the records the stores hold: a task's record (checked before anything
//! is written), a task from a stored row, task classes by name, and making a task the way
//! `Class#new` would, directly when nothing would differ.

use magnus::encoding::Coderange;
use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::rb_sys::{AsRawId, AsRawValue, FromRawValue};
use magnus::value::{IntoId, LazyId, ReprValue};
use magnus::{Error, Float, Integer, RArray, RClass, RHash, RObject, RString, Ruby, Symbol, Value};
use task_core::TaskRecord;

use crate::{args, classes, codec, errors};

// A task's instance variables and attribute readers, shared with task.rs.
pub(crate) static IV_TASK_LIST: LazyId = LazyId::new("@task_list");
pub(crate) static IV_ID: LazyId = LazyId::new("@id");
pub(crate) static IV_DATA: LazyId = LazyId::new("@data");
/// The store's write time of a task read back, in microseconds since the Unix epoch (an
/// Integer: `Task::Task#saved_at` makes the Time only when asked).
static IV_SAVED_AT: LazyId = LazyId::new("@saved_at_usec");
pub(crate) static ID_TASK_LIST: LazyId = LazyId::new("task_list");
pub(crate) static ID_ID: LazyId = LazyId::new("id");
pub(crate) static ID_DATA: LazyId = LazyId::new("data");
static ID_INITIALIZE: LazyId = LazyId::new("initialize");
static ID_NEW: LazyId = LazyId::new("new");

/// True when `class.new(attrs)` would run exactly `Class#new` and Task::Task#initialize:
/// nothing in the class, its ancestors, prepended modules or its singleton redefines
/// either. Then a task can be made directly, which is what `Class#new` would have done.
/// Without Ruby's method lookup (see `classes::method_entry`) this is always false.
pub fn plain_new(ruby: &Ruby, class: RClass) -> Result<bool, Error> {
    let module = classes::task_module(ruby)?;
    let Some(mine) = classes::method_entry(ruby, class.as_value(), &ID_INITIALIZE) else {
        return Ok(false);
    };
    if Some(mine) != classes::method_entry(ruby, module.as_value(), &ID_INITIALIZE) {
        return Ok(false);
    }
    // SAFETY: `class` is a live class; rb_singleton_class returns (making it if needed) its
    // singleton class, as Class#new's lookup would.
    let meta = unsafe { Value::from_raw(rb_sys::rb_singleton_class(class.as_raw())) };
    let new_entry = classes::method_entry(ruby, meta, &ID_NEW);
    Ok(new_entry.is_some()
        && new_entry == classes::method_entry(ruby, ruby.class_class().as_value(), &ID_NEW))
}

/// A task made as `Class#new` + Task::Task#initialize would make it: `plain_new(class)`
/// must hold. `data_coerced` says `data` is already a fresh Hash with Symbol keys.
pub fn new_plain(
    ruby: &Ruby,
    class: RClass,
    task_list: Value,
    id: Value,
    data: Value,
    data_coerced: bool,
) -> Result<Value, Error> {
    let task_list = coerce_string(task_list)?;
    let id = coerce_string(id)?;
    let data = if data_coerced {
        data
    } else {
        coerce_data(ruby, data)?.as_value()
    };
    // SAFETY: `class` is a Class (rb_obj_alloc raises TypeError for anything it cannot
    // allocate, as Class#new would).
    let obj = unsafe { Value::from_raw(rb_sys::rb_obj_alloc(class.as_raw())) };
    let obj = RObject::from_value(obj).ok_or_else(|| {
        Error::new(
            ruby.exception_type_error(),
            format!("{} does not make plain objects", class.inspect()),
        )
    })?;
    // SAFETY: a fresh, unfrozen object: setting its instance variables cannot raise.
    unsafe {
        for (iv, v) in [(&IV_TASK_LIST, task_list), (&IV_ID, id), (&IV_DATA, data)] {
            rb_sys::rb_ivar_set(obj.as_raw(), (**iv).into_id_with(ruby).as_raw(), v.as_raw());
        }
    }
    Ok(obj.as_value())
}

/// String attributes: `7` and `:x` become `"7"` and `"x"`; nil stays nil; anything else is
/// kept as given and rejected when saved.
pub fn coerce_string(v: Value) -> Result<Value, Error> {
    if v.is_nil() || RString::from_value(v).is_some() {
        return Ok(v);
    }
    if Symbol::from_value(v).is_some()
        || Integer::from_value(v).is_some()
        || Float::from_value(v).is_some()
    {
        return v.funcall("to_s", ());
    }
    Ok(v)
}

/// `data`: a new Hash whose top-level String keys are Symbols (nested hashes untouched).
pub fn coerce_data(ruby: &Ruby, v: Value) -> Result<RHash, Error> {
    if v.is_nil() {
        return Ok(ruby.hash_new());
    }
    let Some(source) = args::hash_like(v)? else {
        return Err(errors::argument(
            ruby,
            format!(
                "task data must be a Hash, got {} ({})",
                v.class().inspect(),
                v.inspect()
            ),
        ));
    };
    let data = ruby.hash_new();
    source.foreach(|k: Value, val: Value| {
        match RString::from_value(k) {
            Some(s) => data.aset(str_to_sym(s), val)?,
            None => data.aset(k, val)?,
        }
        Ok(ForEach::Continue)
    })?;
    Ok(data)
}

/// A top-level data key as a Symbol. A String whose bytes are not valid in its encoding
/// cannot be one (rb_str_intern raises EncodingError for it), so it stays the String: `new` and
/// `build` accept it, and `save` refuses it as Task::Error::BadData naming the task, exactly
/// as it refuses the same key nested deeper.
pub fn str_to_sym(s: RString) -> Value {
    if s.enc_coderange_scan() == Coderange::Broken {
        return s.as_value();
    }
    // SAFETY: rb_str_intern raises only for a String of broken encoding, excluded above.
    unsafe { Value::from_raw(rb_sys::rb_str_intern(s.as_raw())) }
}

/// A String attribute of a task for the store, by the rule of `key_text`; an error also
/// names the task's class.
fn string_attr(ruby: &Ruby, task: Value, name: &str, value: Value) -> Result<String, Error> {
    args::key_text(ruby, name, value, &|| {
        format!(" (saving a {} task)", task.class().inspect())
    })
}

/// A task's list, id and data read from its instance variables, when that is exactly what
/// calling `task_list`, `id` and `data` would return: the object's class (its singleton
/// included) resolves the three to Task::Task's own readers, and `@data` is set (the reader
/// fills in a missing one). `None` otherwise, or without Ruby's method lookup: then the
/// methods are called. Three lookups cost less than three calls from C, which is most of
/// what converting a task for a bulk write took.
fn plain_attributes(ruby: &Ruby, task: Value) -> Result<Option<(Value, Value, Value)>, Error> {
    let Some(object) = RObject::from_value(task) else {
        return Ok(None);
    };
    let module = classes::task_module(ruby)?.as_value();
    let class = task.class().as_value();
    for name in [&ID_TASK_LIST, &ID_ID, &ID_DATA] {
        let mine = classes::method_entry(ruby, class, name);
        if mine.is_none() || mine != classes::method_entry(ruby, module, name) {
            return Ok(None);
        }
    }
    let ivar = |name: &LazyId| {
        let id = (**name).into_id_with(ruby).as_raw();
        // SAFETY: reading an instance variable of a live object (a T_OBJECT) neither raises
        // nor allocates; magnus's ivar_get would wrap it in rb_protect, which measured as
        // much as the read itself.
        unsafe { Value::from_raw(rb_sys::rb_ivar_get(object.as_raw(), id)) }
    };
    let data = ivar(&IV_DATA);
    if data.is_nil() {
        return Ok(None);
    }
    Ok(Some((ivar(&IV_TASK_LIST), ivar(&IV_ID), data)))
}

/// The record for a task object, or a clear error before anything is written.
pub fn record_from_task(ruby: &Ruby, task: Value) -> Result<TaskRecord, Error> {
    let (task_list_v, id_v, data_v) = match plain_attributes(ruby, task)? {
        Some(parts) => parts,
        None => (
            task.funcall(*ID_TASK_LIST, ())?,
            task.funcall(*ID_ID, ())?,
            task.funcall(*ID_DATA, ())?,
        ),
    };
    let task_list = string_attr(ruby, task, "task_list", task_list_v)?;
    let id = string_attr(ruby, task, "id", id_v)?;
    let class = task.class();
    // SAFETY: the name is copied out before any Ruby code runs.
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
    // Checked once, by the store (`Store::store`, or `Store::store_many` for the whole batch
    // before any write).
    Ok(TaskRecord {
        task_list,
        id,
        type_name,
        data: Some(data),
        saved_at: None,
    })
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
    let includes: bool = class.funcall("include?", (classes::task_module(ruby)?,))?;
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
    if plain_new(ruby, class)? {
        return new_plain(ruby, class, task_list, id, data, data_coerced);
    }
    let attrs = ruby.hash_new();
    attrs.aset(ruby.sym_new("task_list"), task_list)?;
    attrs.aset(ruby.sym_new("id"), id)?;
    attrs.aset(ruby.sym_new("data"), data)?;
    class.funcall(*ID_NEW, (attrs,))
}

/// Task types already looked up during one scan, by stored type name. The names are Rust
/// strings; the classes are in a Ruby Array, which the GC marks (and updates, should
/// compaction move a class) because the cache lives on the scan's stack: no Ruby object is
/// kept in a Rust heap structure across the yields in between.
pub struct TypeCache {
    names: Vec<String>,
    classes: RArray,
}

impl TypeCache {
    pub fn new(ruby: &Ruby) -> Self {
        TypeCache {
            names: Vec::new(),
            classes: ruby.ary_new(),
        }
    }

    fn get(&mut self, ruby: &Ruby, record: &TaskRecord) -> Result<RClass, Error> {
        if let Some(i) = self.names.iter().position(|n| *n == record.type_name) {
            if let Some(class) = RClass::from_value(self.classes.entry::<Value>(i as isize)?) {
                return Ok(class);
            }
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
        self.classes.push(class)?;
        self.names.push(record.type_name.clone());
        Ok(class)
    }
}

/// A task object from a stored row; a row naming no task class or holding bad data raises
/// an error that names its list and id.
pub fn task_from_record(ruby: &Ruby, record: &TaskRecord) -> Result<Value, Error> {
    task_from_record_cached(ruby, record, &mut TypeCache::new(ruby))
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
    let task = new_task(
        ruby,
        class,
        ruby.str_new(&record.task_list).as_value(),
        ruby.str_new(&record.id).as_value(),
        data.as_value(),
        true,
    )?;
    if let (Some(usec), Some(object)) = (record.saved_at, RObject::from_value(task)) {
        object.ivar_set(*IV_SAVED_AT, usec)?;
    }
    Ok(task)
}
