//! Ruby task objects <-> the records the stores hold: a task's record (checked before anything
//! is written), a task from a stored row, task classes by name, and making a task the way
//! `Class#new` would, directly when nothing would differ.

use magnus::encoding::Coderange;
use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::value::{IntoId, LazyId, ReprValue};
use magnus::{
    Error, Float, Integer, RArray, RClass, RHash, RModule, RObject, RString, Ruby, Symbol, Value,
};
use task_core::TaskRecord;

use crate::{args, classes, codec, errors, raw};

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
    // Class#new's lookup starts at the singleton class (every class has one already).
    let meta = class.singleton_class()?.as_value();
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
    // TypeError for a class that cannot be allocated, as Class#new would raise; protected,
    // so it unwinds the Rust frames above (a scan's page among them) normally.
    let obj = class.obj_alloc()?;
    let obj = RObject::from_value(obj).ok_or_else(|| {
        Error::new(
            ruby.exception_type_error(),
            format!("{} does not make plain objects", class.inspect()),
        )
    })?;
    raw::ivar_set_fresh(
        obj,
        &[(&IV_TASK_LIST, task_list), (&IV_ID, id), (&IV_DATA, data)],
        ruby,
    );
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
    coerce_data_nested(ruby, v, None)
}

/// `coerce_data`, and with `nested` its nested hashes (also those inside arrays) become
/// hashes of that class, as data read from a store holds them (see
/// `codec::nested_hash_class`): what `from_hash` makes of the data it is given.
pub fn coerce_data_nested(ruby: &Ruby, v: Value, nested: Option<RClass>) -> Result<RHash, Error> {
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
        let val = match nested {
            Some(class) => codec::indifferent(ruby, val, class, 2)?,
            None => val,
        };
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
    raw::str_intern_valid(s)
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
    let ivar = |name: &LazyId| raw::ivar_get(object, name, ruby);
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

/// What a stored or given type name names.
pub enum TaskClass {
    /// A class that includes Task::Task.
    Found(RClass),
    /// No constant has that name: what `Object.const_get(name)` would have raised as
    /// NameError, described but never raised (building NameError's message, with
    /// did_you_mean's suggestions, cost milliseconds a row).
    Missing(Missing),
    /// Something else by that name: why it is not a task class.
    Refused(String),
}

/// A constant path's first missing constant.
pub struct Missing {
    /// `uninitialized constant Foo::Bar`, or `wrong constant name foo`, as Ruby says it.
    pub message: String,
    /// The module searched, and the name not found in it (NameError's receiver and name).
    receiver: Value,
    name: String,
}

impl Missing {
    /// The NameError `Object.const_get` would have raised.
    pub fn to_error(&self, ruby: &Ruby) -> Error {
        let name = ruby.to_symbol(&self.name);
        let made = ruby.exception_name_error().new_instance((
            self.message.as_str(),
            name,
            magnus::kwargs!(ruby, "receiver" => self.receiver),
        ));
        match made {
            Ok(e) => Error::from(e),
            Err(e) => e,
        }
    }
}

static ID_CONST_MISSING: LazyId = LazyId::new("const_missing");

/// Looks up a task class by name (`Foo::Bar` and `::Foo` too), as `Object.const_get(name)`
/// would find it (autoload and `const_missing` hooks included), without ever raising or
/// catching NameError for a name that is simply not there. An exception raised by Ruby code
/// run meanwhile (an autoload, a `const_missing` hook, an interrupt) is returned as the
/// Error, unless it is a NameError for the very constant looked up, which means "missing".
pub fn task_class(ruby: &Ruby, name: &str) -> Result<TaskClass, Error> {
    let found = match constant(ruby, name)? {
        Ok(v) => v,
        Err(missing) => return Ok(TaskClass::Missing(missing)),
    };
    let Some(class) = RClass::from_value(found) else {
        return Ok(TaskClass::Refused(format!("{name} is not a class")));
    };
    let includes: bool = class.funcall("include?", (classes::task_module(ruby)?,))?;
    if !includes {
        return Ok(TaskClass::Refused(format!(
            "{name} does not include Task::Task"
        )));
    }
    Ok(TaskClass::Found(class))
}

/// The value of the constant path `path`, or what is missing.
fn constant(ruby: &Ruby, path: &str) -> Result<Result<Value, Missing>, Error> {
    let object = ruby.class_object().as_value();
    let rest = path.strip_prefix("::").unwrap_or(path);
    let mut module = object;
    let mut walked: usize = 0; // bytes of `rest` before the current segment
    for (i, segment) in rest.split("::").enumerate() {
        let before = &rest[..walked.saturating_sub(2)];
        let shown = &rest[..walked + segment.len()];
        walked += segment.len() + 2;
        let wrong_name = |receiver: Value| Missing {
            message: format!("wrong constant name {segment}"),
            receiver,
            name: segment.to_string(),
        };
        if RModule::from_value(module).is_none() && RClass::from_value(module).is_none() {
            return Ok(Err(Missing {
                message: format!("{before} does not refer to class/module"),
                receiver: module,
                name: segment.to_string(),
            }));
        }
        if !looks_like_constant(segment) {
            return Ok(Err(wrong_name(module)));
        }
        let top = i == 0;
        let id = match raw::existing_id(segment)? {
            Some(id) if !raw::is_const_id(id) => return Ok(Err(wrong_name(module))),
            Some(id) if raw::const_defined(module, id, top) => Some(id),
            _ => None,
        };
        let missing = || Missing {
            message: format!("uninitialized constant {shown}"),
            receiver: module,
            name: segment.to_string(),
        };
        let got = match id {
            Some(id) => raw::const_get(module, id, top),
            // Not there. Ruby would call `const_missing`: only a hook of the application's
            // (Rails' classic autoloader) can make anything of that, so it is called when
            // there is one, and Module#const_missing's NameError is simply not raised.
            None if raw::method_is_basic(
                module.class().as_value(),
                (*ID_CONST_MISSING).into_id_with(ruby),
            ) =>
            {
                return Ok(Err(missing()))
            }
            None => module.funcall(*ID_CONST_MISSING, (ruby.to_symbol(segment),)),
        };
        module = match got {
            Ok(v) => v,
            Err(e) if is_name_error_for(ruby, &e, segment)? => return Ok(Err(missing())),
            Err(e) => return Err(e),
        };
    }
    Ok(Ok(module))
}

/// A constant name's shape: an upper-case first letter (non-ASCII letters are left to Ruby).
fn looks_like_constant(segment: &str) -> bool {
    match segment.chars().next() {
        Some(c) if c.is_ascii() => {
            c.is_ascii_uppercase()
                && segment
                    .chars()
                    .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '_')
        }
        Some(_) => true,
        None => false,
    }
}

/// True when `e` is a NameError (not a NoMethodError) whose name is `segment`: the
/// constant being looked up is not there. Anything else is someone else's exception.
fn is_name_error_for(ruby: &Ruby, e: &Error, segment: &str) -> Result<bool, Error> {
    if !e.is_kind_of(ruby.exception_name_error()) || e.is_kind_of(ruby.exception_no_method_error())
    {
        return Ok(false);
    }
    let Some(exception) = e.value() else {
        return Ok(false);
    };
    let name: Value = exception.funcall("name", ())?;
    Ok(match Symbol::from_value(name) {
        Some(sym) => sym.name()? == segment,
        None => RString::from_value(name)
            .map(|s| s.to_string())
            .transpose()?
            .is_some_and(|s| s == segment),
    })
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

/// Task types already looked up during one scan, by stored type name, found or not. The
/// names and refusals are Rust strings; the classes are in a Ruby Array, which the GC marks
/// (and updates, should compaction move a class) because the cache lives on the scan's
/// stack: no Ruby object is kept in a Rust heap structure across the yields in between.
/// The class of nested hashes read back is looked up once per cache as well.
pub struct TypeCache {
    names: Vec<(String, Result<usize, String>)>,
    classes: RArray,
    nested: Option<RClass>,
}

impl TypeCache {
    pub fn new(ruby: &Ruby) -> Self {
        TypeCache {
            names: Vec::new(),
            classes: ruby.ary_new(),
            nested: None,
        }
    }

    fn get(&mut self, ruby: &Ruby, record: &TaskRecord) -> Result<RClass, Error> {
        let what = || format!("task {:?} of list {:?}", record.id, record.task_list);
        let known = self
            .names
            .iter()
            .find(|(n, _)| *n == record.type_name)
            .map(|(_, r)| r.clone());
        let answer = match known {
            Some(answer) => answer,
            None => {
                let answer = match task_class(ruby, &record.type_name)? {
                    TaskClass::Found(class) => {
                        self.classes.push(class)?;
                        Ok(self.classes.len() - 1)
                    }
                    TaskClass::Refused(msg) => Err(format!("stored type: {msg}")),
                    TaskClass::Missing(m) => Err(format!(
                        "stored type {:?} names no task class ({})",
                        record.type_name, m.message
                    )),
                };
                self.names.push((record.type_name.clone(), answer.clone()));
                answer
            }
        };
        match answer {
            Ok(i) => {
                RClass::from_value(self.classes.entry::<Value>(i as isize)?).ok_or_else(|| {
                    Error::new(
                        ruby.exception_runtime_error(),
                        "internal error: a cached task class is gone",
                    )
                })
            }
            Err(msg) => Err(errors::bad_data(ruby, format!("{}: {msg}", what()))),
        }
    }

    /// The class nested hashes of data read back are made of (see codec::nested_hash_class).
    fn nested(&mut self, ruby: &Ruby) -> Result<RClass, Error> {
        if let Some(c) = self.nested {
            return Ok(c);
        }
        let c = codec::nested_hash_class(ruby)?;
        self.nested = Some(c);
        Ok(c)
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
    let nested = types.nested(ruby)?;
    let data = codec::json_to_data(ruby, text, nested, &what)?;
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
