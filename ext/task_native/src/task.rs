//! `Task::Task`, the mixin: attributes with their coercions, `build`/`create`, `as_hash`,
//! `save`/`complete`, and the module functions `from_hash`, `find`, `all`, `interface`.

use std::sync::OnceLock;

use magnus::encoding::Coderange;
use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::rb_sys::AsRawId;
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::value::{IntoId, LazyId, Opaque, ReprValue, StaticSymbol};
use magnus::{
    function, method, Error, Float, Integer, RClass, RHash, RModule, RObject, RString, Ruby,
    Symbol, Value,
};

use crate::{args, backend, errors, interface};

static IV_TASK_LIST: LazyId = LazyId::new("@task_list");
static IV_ID: LazyId = LazyId::new("@id");
static IV_DATA: LazyId = LazyId::new("@data");
static IV_INTERFACE: LazyId = LazyId::new("@interface");

static ID_TASK_LIST: LazyId = LazyId::new("task_list");
static ID_ID: LazyId = LazyId::new("id");
static ID_DATA: LazyId = LazyId::new("data");
static ID_TYPE: LazyId = LazyId::new("type");
static ID_INITIALIZE: LazyId = LazyId::new("initialize");
static ID_NEW: LazyId = LazyId::new("new");

/// The Symbol for an interned name, without a symbol-table lookup by text.
fn sym(ruby: &Ruby, id: &LazyId) -> Value {
    StaticSymbol::from((**id).into_id_with(ruby)).as_value()
}

extern "C" {
    /// Ruby's own method lookup (vm_method.c, exported by libruby): the entry a call of `id`
    /// on an instance of `klass` resolves to, compared here only by address.
    fn rb_method_entry(klass: rb_sys::VALUE, id: rb_sys::ID) -> *const std::ffi::c_void;
}

/// True when `class.new(attrs)` would run exactly `Class#new` and Task::Task#initialize:
/// nothing in the class, its ancestors, prepended modules or its singleton redefines
/// either. Then a task can be made directly, which is what `Class#new` would have done.
pub fn plain_new(ruby: &Ruby, class: RClass) -> Result<bool, Error> {
    let module = task_module(ruby)?;
    let init = (*ID_INITIALIZE).into_id_with(ruby).as_raw();
    let new = (*ID_NEW).into_id_with(ruby).as_raw();
    // Safety: both are classes or modules, and the lookups neither allocate nor raise.
    unsafe {
        let mine = rb_method_entry(class.as_raw(), init);
        if mine.is_null() || mine != rb_method_entry(module.as_raw(), init) {
            return Ok(false);
        }
        let meta = rb_sys::rb_singleton_class(class.as_raw());
        let new_entry = rb_method_entry(meta, new);
        Ok(!new_entry.is_null() && new_entry == rb_method_entry(ruby.class_class().as_raw(), new))
    }
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
    // Safety: `class` is a Class (rb_obj_alloc raises TypeError for anything it cannot
    // allocate, as Class#new would).
    let obj = unsafe { Value::from_raw(rb_sys::rb_obj_alloc(class.as_raw())) };
    let obj = RObject::from_value(obj).ok_or_else(|| {
        Error::new(
            ruby.exception_type_error(),
            format!("{} does not make plain objects", class.inspect()),
        )
    })?;
    // Safety: a fresh, unfrozen object: setting its instance variables cannot raise.
    unsafe {
        for (iv, v) in [(&IV_TASK_LIST, task_list), (&IV_ID, id), (&IV_DATA, data)] {
            rb_sys::rb_ivar_set(obj.as_raw(), (**iv).into_id_with(ruby).as_raw(), v.as_raw());
        }
    }
    Ok(obj.as_value())
}

/// Task::Task, kept from init so that save and complete need no constant lookups.
static TASK_MODULE: OnceLock<Opaque<RModule>> = OnceLock::new();

pub fn task_module(ruby: &Ruby) -> Result<RModule, Error> {
    TASK_MODULE
        .get()
        .map(|m| ruby.get_inner(*m))
        .ok_or_else(|| {
            Error::new(
                ruby.exception_runtime_error(),
                "Task::Task is not defined yet",
            )
        })
}

/// String attributes: `7` and `:x` become `"7"` and `"x"`; nil stays nil; anything else is
/// kept as given and rejected when saved.
fn coerce_string(v: Value) -> Result<Value, Error> {
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
fn coerce_data(ruby: &Ruby, v: Value) -> Result<RHash, Error> {
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
fn str_to_sym(s: RString) -> Value {
    if s.enc_coderange_scan() == Coderange::Broken {
        return s.as_value();
    }
    // Safety: rb_str_intern raises only for a String of broken encoding, excluded above.
    unsafe { Value::from_raw(rb_sys::rb_str_intern(s.as_raw())) }
}

/// Which attribute a `new` key names: Symbols by identity, Strings by content.
#[derive(PartialEq)]
enum Attr {
    TaskList,
    Id,
    Data,
    Type,
    Other,
}

fn attr_of(ruby: &Ruby, k: Value) -> Attr {
    let raw = k.as_raw();
    if Symbol::from_value(k).is_some() {
        return if raw == sym(ruby, &ID_TASK_LIST).as_raw() {
            Attr::TaskList
        } else if raw == sym(ruby, &ID_ID).as_raw() {
            Attr::Id
        } else if raw == sym(ruby, &ID_DATA).as_raw() {
            Attr::Data
        } else if raw == sym(ruby, &ID_TYPE).as_raw() {
            Attr::Type
        } else {
            Attr::Other
        };
    }
    if let Some(s) = RString::from_value(k) {
        // Safety: the bytes are only compared, with no Ruby call in between.
        return match unsafe { s.as_slice() } {
            b"task_list" => Attr::TaskList,
            b"id" => Attr::Id,
            b"data" => Attr::Data,
            b"type" => Attr::Type,
            _ => Attr::Other,
        };
    }
    Attr::Other
}

fn attr_name(k: Value) -> Result<Option<String>, Error> {
    if let Some(s) = Symbol::from_value(k) {
        return Ok(Some(s.name()?.into_owned()));
    }
    if let Some(s) = RString::from_value(k) {
        return Ok(Some(s.to_string()?));
    }
    Ok(None)
}

/// `new(task_list:, id:, data:)`: keys may be Symbols or Strings; unknown keys are ignored.
fn initialize(ruby: &Ruby, rb_self: RObject, args: &[Value]) -> Result<(), Error> {
    rb_self.ivar_set(*IV_TASK_LIST, ruby.qnil())?;
    rb_self.ivar_set(*IV_ID, ruby.qnil())?;
    let Some(a) = args.first().copied().filter(|a| !a.is_nil()) else {
        rb_self.ivar_set(*IV_DATA, ruby.hash_new())?;
        return args::optional_hash(ruby, args).map(|_| ());
    };
    rb_self.ivar_set(*IV_DATA, ruby.qnil())?;
    if args.len() > 1 {
        args::optional_hash(ruby, args)?; // raises the arity error
    }
    let Some(attrs) = args::hash_like(a)? else {
        return Err(errors::argument(
            ruby,
            format!(
                "{}.new takes a Hash of attributes, got {}",
                rb_self.class().inspect(),
                a.inspect()
            ),
        ));
    };
    let mut data = None;
    attrs.foreach(|k: Value, v: Value| {
        match attr_of(ruby, k) {
            Attr::TaskList => rb_self.ivar_set(*IV_TASK_LIST, coerce_string(v)?)?,
            Attr::Id => rb_self.ivar_set(*IV_ID, coerce_string(v)?)?,
            Attr::Data => data = Some(coerce_data(ruby, v)?),
            Attr::Type | Attr::Other => {}
        }
        Ok(ForEach::Continue)
    })?;
    rb_self.ivar_set(*IV_DATA, data.unwrap_or_else(|| ruby.hash_new()))
}

fn get_task_list(rb_self: RObject) -> Result<Value, Error> {
    rb_self.ivar_get(*IV_TASK_LIST)
}
fn set_task_list(rb_self: RObject, v: Value) -> Result<(), Error> {
    rb_self.ivar_set(*IV_TASK_LIST, coerce_string(v)?)
}
fn get_id(rb_self: RObject) -> Result<Value, Error> {
    rb_self.ivar_get(*IV_ID)
}
fn set_id(rb_self: RObject, v: Value) -> Result<(), Error> {
    rb_self.ivar_set(*IV_ID, coerce_string(v)?)
}
fn get_data(ruby: &Ruby, rb_self: RObject) -> Result<Value, Error> {
    let v: Value = rb_self.ivar_get(*IV_DATA)?;
    if v.is_nil() {
        // A subclass whose initialize skipped super still gets the default.
        let h = ruby.hash_new();
        rb_self.ivar_set(*IV_DATA, h)?;
        return Ok(h.as_value());
    }
    Ok(v)
}
fn set_data(ruby: &Ruby, rb_self: RObject, v: Value) -> Result<(), Error> {
    rb_self.ivar_set(*IV_DATA, coerce_data(ruby, v)?)
}

/// A new Hash of `pairs` (keys and values alternating), as a Hash literal is built.
fn hash_of(ruby: &Ruby, pairs: &[Value]) -> RHash {
    let h = ruby.hash_new();
    // Safety: Value is a transparent VALUE, so the slice is an array of VALUEs; a fresh Hash
    // and Symbol keys: inserting calls no Ruby code and cannot raise.
    unsafe {
        rb_sys::rb_hash_bulk_insert(
            pairs.len() as _,
            pairs.as_ptr() as *const rb_sys::VALUE,
            h.as_raw(),
        )
    };
    h
}

/// The three attributes through their readers (a task class may override them).
fn readers(rb_self: RObject) -> Result<[Value; 3], Error> {
    Ok([
        rb_self.funcall(*ID_TASK_LIST, ())?,
        rb_self.funcall(*ID_ID, ())?,
        rb_self.funcall(*ID_DATA, ())?,
    ])
}

/// `task_list:`, `id:`, `data:` and their values, as Hash pairs.
fn attribute_pairs(ruby: &Ruby, rb_self: RObject) -> Result<[Value; 6], Error> {
    let [task_list, id, data] = readers(rb_self)?;
    Ok([
        sym(ruby, &ID_TASK_LIST),
        task_list,
        sym(ruby, &ID_ID),
        id,
        sym(ruby, &ID_DATA),
        data,
    ])
}

fn attributes(ruby: &Ruby, rb_self: RObject) -> Result<RHash, Error> {
    Ok(hash_of(ruby, &attribute_pairs(ruby, rb_self)?))
}

/// `attributes` plus `type: "ClassName"`: the wire form.
fn as_hash(ruby: &Ruby, rb_self: RObject) -> Result<RHash, Error> {
    let [a, b, c, d, e, f] = attribute_pairs(ruby, rb_self)?;
    let name: Value = rb_self.class().funcall("name", ())?;
    Ok(hash_of(
        ruby,
        &[a, b, c, d, e, f, sym(ruby, &ID_TYPE), name],
    ))
}

fn save(ruby: &Ruby, rb_self: RObject) -> Result<(), Error> {
    let iface = current_interface(ruby)?;
    if let Some(adapter) = interface::native_adapter(ruby, iface)? {
        let record = backend::record_from_task(ruby, rb_self.as_value())?;
        return adapter.backend().store(ruby, record);
    }
    // Any other adapter gets the same checks first, so bad input never reaches it.
    backend::record_from_task(ruby, rb_self.as_value())?;
    let _: Value = iface.funcall("store", (rb_self,))?;
    Ok(())
}

fn complete(ruby: &Ruby, rb_self: RObject) -> Result<(), Error> {
    let task_list: Value = rb_self.funcall("task_list", ())?;
    let id: Value = rb_self.funcall("id", ())?;
    let key = backend::key(ruby, task_list, id)?;
    let iface = current_interface(ruby)?;
    if let Some(adapter) = interface::native_adapter(ruby, iface)? {
        return adapter.backend().delete(ruby, key);
    }
    let _: Value = iface.funcall("delete", (key.task_list, key.id))?;
    Ok(())
}

fn execute(ruby: &Ruby, rb_self: RObject, _args: &[Value]) -> Result<Value, Error> {
    Err(Error::new(
        ruby.exception_not_imp_error(),
        format!(
            "{}#execute is not implemented: define it in the task class",
            rb_self.class().inspect()
        ),
    ))
}

/// `build(options)`: `:task_list` and `:id` are taken out, every other key goes into
/// `data`; without an id a random one (a UUID's 32 hex digits) is made. The caller's hash is
/// left as it was.
fn build(ruby: &Ruby, rb_self: RClass, args: &[Value]) -> Result<Value, Error> {
    let options = args::optional_hash(ruby, args)?;
    let task_list_key = sym(ruby, &ID_TASK_LIST).as_raw();
    let id_key = sym(ruby, &ID_ID).as_raw();
    let mut task_list = ruby.qnil().as_value();
    let mut id = ruby.qnil().as_value();
    let data = ruby.hash_new();
    options.foreach(|k: Value, v: Value| {
        if k.as_raw() == task_list_key {
            task_list = v;
        } else if k.as_raw() == id_key {
            id = v;
        } else {
            // As initialize would store it: top-level String keys become Symbols.
            match RString::from_value(k) {
                Some(s) => data.aset(str_to_sym(s), v)?,
                None => data.aset(k, v)?,
            }
        }
        Ok(ForEach::Continue)
    })?;
    if id.is_nil() {
        id = ruby
            .str_new(&uuid::Uuid::new_v4().simple().to_string())
            .as_value();
    }
    backend::new_task(ruby, rb_self, task_list, id, data.as_value(), true)
}

fn create(ruby: &Ruby, rb_self: RClass, args: &[Value]) -> Result<Value, Error> {
    let task = build(ruby, rb_self, args)?;
    let _: Value = task.funcall("save", ())?;
    Ok(task)
}

fn included(ruby: &Ruby, rb_self: RModule, base: Value) -> Result<(), Error> {
    let class_methods: RModule = rb_self.const_get("ClassMethods")?;
    let _ = ruby;
    let _: Value = base.funcall("extend", (class_methods,))?;
    Ok(())
}

/// `Task::Task.from_hash(hash)`: the task `as_hash` described. Symbol or String keys; the
/// `type` must name a class that includes Task::Task (unknown names raise NameError).
fn from_hash(ruby: &Ruby, hash: Value) -> Result<Value, Error> {
    let Some(h) = args::hash_like(hash)? else {
        return Err(errors::argument(
            ruby,
            format!("from_hash takes a Hash, got {}", hash.inspect()),
        ));
    };
    // One pass over the hash: a Symbol key wins over the same name as a String.
    let nil = ruby.qnil().as_value();
    let mut by_sym = [None::<Value>; 4];
    let mut by_str = [None::<Value>; 4];
    h.foreach(|k: Value, v: Value| {
        let slot = match attr_of(ruby, k) {
            Attr::TaskList => 0,
            Attr::Id => 1,
            Attr::Data => 2,
            Attr::Type => 3,
            Attr::Other => return Ok(ForEach::Continue),
        };
        if Symbol::from_value(k).is_some() {
            by_sym[slot] = Some(v);
        } else {
            by_str[slot] = Some(v);
        }
        Ok(ForEach::Continue)
    })?;
    let field = |slot: usize| by_sym[slot].or(by_str[slot]).unwrap_or(nil);
    let type_v = field(3);
    if type_v.is_nil() {
        return Err(errors::argument(
            ruby,
            format!(
                "from_hash needs a :type naming the task class, got {}",
                h.inspect()
            ),
        ));
    }
    let class = match RString::from_value(type_v) {
        // The common case: the String from the hash is the constant path, no copy made.
        Some(s) => backend::task_class_named(ruby, s.as_value(), &|| {
            s.to_string().unwrap_or_else(|_| s.inspect())
        }),
        None => match attr_name(type_v)? {
            Some(name) => backend::task_class(ruby, &name),
            None => {
                return Err(errors::argument(
                    ruby,
                    format!("task type must be a String, got {}", type_v.inspect()),
                ))
            }
        },
    }?;
    let class = match class {
        Ok(c) => c,
        Err(msg) => {
            return Err(errors::invalid_type(
                ruby,
                format!(
                    "refusing to build a task of type {:?}: {msg}",
                    attr_name(type_v)?.unwrap_or_default()
                ),
            ))
        }
    };
    backend::new_task(ruby, class, field(0), field(1), field(2), false)
}

pub fn current_interface(ruby: &Ruby) -> Result<Value, Error> {
    let module = task_module(ruby)?;
    let cached: Value = module.ivar_get(*IV_INTERFACE)?;
    if !cached.is_nil() {
        return Ok(cached);
    }
    let iface = interface::new_default(ruby)?;
    module.ivar_set(*IV_INTERFACE, iface)?;
    Ok(iface)
}

/// Forgets the cached interface, so the next use builds one with the current adapter_builder.
pub fn reset_interface(ruby: &Ruby) -> Result<(), Error> {
    task_module(ruby)?.ivar_set(*IV_INTERFACE, ruby.qnil())
}

fn interface_get(ruby: &Ruby) -> Result<Value, Error> {
    current_interface(ruby)
}

fn interface_set(ruby: &Ruby, v: Value) -> Result<Value, Error> {
    task_module(ruby)?.ivar_set(*IV_INTERFACE, v)?;
    Ok(v)
}

fn find(ruby: &Ruby, task_list: Value, id: Value) -> Result<Value, Error> {
    current_interface(ruby)?.funcall("find", (task_list, id))
}

/// `Task::Task.all(task_list)`; `all(task_list, on_bad_row: ...)` as the adapter's `all`.
fn all(ruby: &Ruby, args: &[Value]) -> Result<Value, Error> {
    let found: Value = match args {
        [list] => current_interface(ruby)?.funcall("all", (*list,))?,
        [list, opts] => current_interface(ruby)?.funcall("all", (*list, *opts))?,
        _ => {
            return Err(errors::argument(
                ruby,
                format!(
                    "wrong number of arguments (given {}, expected 1..2)",
                    args.len()
                ),
            ))
        }
    };
    found.funcall("lazy", ())
}

pub fn init(ruby: &Ruby, task: RModule) -> Result<(), Error> {
    let m = task.define_module("Task")?;
    let _ = TASK_MODULE.set(Opaque::from(m));
    let cm = m.define_module("ClassMethods")?;
    cm.define_method("build", method!(build, -1))?;
    cm.define_method("create", method!(create, -1))?;
    m.define_singleton_method("included", method!(included, 1))?;
    m.define_singleton_method("from_hash", function!(from_hash, 1))?;
    m.define_singleton_method("find", function!(find, 2))?;
    m.define_singleton_method("all", function!(all, -1))?;
    m.define_singleton_method("interface", function!(interface_get, 0))?;
    m.define_singleton_method("interface=", function!(interface_set, 1))?;

    m.define_method("initialize", method!(initialize, -1))?;
    m.define_method("task_list", method!(get_task_list, 0))?;
    m.define_method("task_list=", method!(set_task_list, 1))?;
    m.define_method("id", method!(get_id, 0))?;
    m.define_method("id=", method!(set_id, 1))?;
    m.define_method("data", method!(get_data, 0))?;
    m.define_method("data=", method!(set_data, 1))?;
    m.define_method("attributes", method!(attributes, 0))?;
    m.define_method("as_hash", method!(as_hash, 0))?;
    m.define_method("save", method!(save, 0))?;
    m.define_method("complete", method!(complete, 0))?;
    m.define_method("execute", method!(execute, -1))?;
    let _ = ruby;
    Ok(())
}
