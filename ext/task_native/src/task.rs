//! `Task::Task`, the mixin: its attributes, `build`/`create`, `as_hash`, `save`/`complete`,
//! and the module functions `from_hash`, `find`, `all`, `interface`.

use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::rb_sys::AsRawValue;
use magnus::value::{IntoId, LazyId, ReprValue, StaticSymbol};
use magnus::{
    function, method, Error, RClass, RHash, RModule, RObject, RString, Ruby, Symbol, Value,
};

use crate::convert::{
    coerce_data, coerce_string, str_to_sym, ID_DATA, ID_ID, ID_TASK_LIST, IV_DATA, IV_ID,
    IV_TASK_LIST,
};
use crate::{args, codec, convert, errors, interface, raw};

static ID_TYPE: LazyId = LazyId::new("type");

/// The Symbol for an interned name, without a symbol-table lookup by text.
fn sym(ruby: &Ruby, id: &LazyId) -> Value {
    StaticSymbol::from((**id).into_id_with(ruby)).as_value()
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
        // SAFETY: the bytes are only compared, with no Ruby call in between.
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
    raw::hash_bulk_insert_symbols(h, pairs);
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

/// The JSON text of `as_hash`, as `JSON.generate(task.as_json)` writes it, or nil when only
/// Ruby's generator can tell (see `codec::task_json`); `to_json` (lib/task/json_form.rb)
/// then asks it.
fn compact_json(ruby: &Ruby, rb_self: RObject) -> Result<Option<String>, Error> {
    let [task_list, id, data] = readers(rb_self)?;
    let name: Value = rb_self.class().funcall("name", ())?;
    codec::task_json(ruby, [task_list, id, data, name])
}

/// `Task::Task.from_json(text)`: the task of a JSON text, the same as
/// `from_hash(JSON.parse(text))`.
fn from_json(ruby: &Ruby, text: Value) -> Result<Value, Error> {
    let Some(s) = RString::from_value(text) else {
        return Err(errors::argument(
            ruby,
            format!(
                "from_json takes a String of JSON, got {}",
                codec::short_inspect(text)
            ),
        ));
    };
    let enc = s.enc_get();
    let bytes_are_utf8 = enc == ruby.utf8_encindex()
        || enc == ruby.usascii_encindex()
        || enc == ruby.ascii8bit_encindex();
    // A copy: parsing makes Ruby objects (a GC may run, and compaction move an embedded
    // String's bytes) and looking the class up may run Ruby code (an autoload, a
    // `const_missing` hook) that changes or frees the String's bytes.
    let text = if bytes_are_utf8 {
        // SAFETY: the bytes are copied at once, before any Ruby code runs.
        String::from_utf8(unsafe { s.as_slice() }.to_vec()).ok()
    } else {
        None
    };
    let parsed = match text {
        Some(t) => {
            if let Some(task) = from_json_fields(ruby, &t)? {
                return Ok(task);
            }
            codec::parse_document(ruby, &t)?
        }
        // What JSON.parse would make of it (another encoding, or bytes that are not UTF-8):
        // its answer, or its error.
        None => {
            let json: RModule = ruby.class_object().const_get("JSON")?;
            json.funcall("parse", (s,))?
        }
    };
    from_hash(ruby, parsed)
}

/// The common case of `from_json`, without the outer Hash: a plain task class (see
/// `convert::plain_new`) named by a String `type`. `None` for anything else, which the
/// general path takes (with from_hash's errors).
fn from_json_fields(ruby: &Ruby, text: &str) -> Result<Option<Value>, Error> {
    let nested = codec::nested_hash_class(ruby)?;
    let Some([task_list, id, data, type_name]) = codec::parse_task_fields(ruby, text, nested)?
    else {
        return Ok(None);
    };
    let Some(name) = RString::from_value(type_name) else {
        return Ok(None);
    };
    let Ok(name) = name.to_string() else {
        return Ok(None);
    };
    // An exception from Ruby code run by the lookup (an autoload, a hook, an interrupt) is
    // raised; a missing or refused class goes the general way, for from_hash's words.
    let convert::TaskClass::Found(class) = convert::task_class(ruby, &name)? else {
        return Ok(None);
    };
    if !convert::plain_new(ruby, class)? {
        return Ok(None);
    }
    let data_coerced = RHash::from_value(data).is_some();
    convert::new_plain(ruby, class, task_list, id, data, data_coerced).map(Some)
}

/// `save`: `Task::Task.interface.store(self)`, through Ruby's dispatch, so that a module
/// prepended to the interface or the adapter (instrumentation, logging) sees every save.
/// `save(ttl: nil)`: with `ttl:` (seconds) the task is gone after that long; the option is
/// passed on to `store` only when given.
fn save(ruby: &Ruby, rb_self: RObject, args: &[Value]) -> Result<(), Error> {
    let opts = args::optional_hash(ruby, args)?;
    let iface = interface::current(ruby)?;
    // The gem's adapters check the task themselves; any other gets the same checks first,
    // so bad input never reaches it.
    if !interface::has_own_adapter(iface)? {
        convert::record_from_task(ruby, rb_self.as_value())?;
    }
    let _: Value = if opts.is_empty() {
        iface.funcall("store", (rb_self,))?
    } else {
        iface.funcall("store", (rb_self, opts))?
    };
    Ok(())
}

/// `complete`: `Task::Task.interface.delete(task_list, id)`, as `save` does.
fn complete(ruby: &Ruby, rb_self: RObject) -> Result<(), Error> {
    let task_list: Value = rb_self.funcall("task_list", ())?;
    let id: Value = rb_self.funcall("id", ())?;
    let key = args::key(ruby, task_list, id)?;
    let _: Value = interface::current(ruby)?.funcall("delete", (key.task_list, key.id))?;
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
    convert::new_task(ruby, rb_self, task_list, id, data.as_value(), true)
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
    let name = match RString::from_value(type_v) {
        Some(s) => s.to_string()?,
        None => match attr_name(type_v)? {
            Some(name) => name,
            None => {
                return Err(errors::argument(
                    ruby,
                    format!("task type must be a String, got {}", type_v.inspect()),
                ))
            }
        },
    };
    let class = match convert::task_class(ruby, &name)? {
        convert::TaskClass::Found(c) => c,
        convert::TaskClass::Missing(missing) => return Err(missing.to_error(ruby)),
        convert::TaskClass::Refused(msg) => {
            return Err(errors::invalid_type(
                ruby,
                format!("refusing to build a task of type {name:?}: {msg}"),
            ))
        }
    };
    // Data handed back (a job's arguments, as_json's Hash) reads as data read from a store:
    // nested hashes answer Symbol and String keys alike.
    let data = convert::coerce_data_nested(ruby, field(2), Some(codec::nested_hash_class(ruby)?))?;
    convert::new_task(ruby, class, field(0), field(1), data.as_value(), true)
}

fn interface_get(ruby: &Ruby) -> Result<Value, Error> {
    interface::current(ruby)
}

fn interface_set(ruby: &Ruby, v: Value) -> Result<Value, Error> {
    interface::set_current(ruby, v)?;
    Ok(v)
}

fn find(ruby: &Ruby, task_list: Value, id: Value) -> Result<Value, Error> {
    interface::current(ruby)?.funcall("find", (task_list, id))
}

/// `Task::Task.all(task_list)`; `all(task_list, on_bad_row: ...)` as the adapter's `all`.
fn all(ruby: &Ruby, args: &[Value]) -> Result<Value, Error> {
    let found = args::pass_on(ruby, interface::current(ruby)?, "all", args)?;
    found.funcall("lazy", ())
}

/// Defines Task::Task; returns it.
pub fn init(ruby: &Ruby, task: RModule) -> Result<RModule, Error> {
    let m = task.define_module("Task")?;
    let cm = m.define_module("ClassMethods")?;
    cm.define_method("build", method!(build, -1))?;
    cm.define_method("create", method!(create, -1))?;
    m.define_singleton_method("included", method!(included, 1))?;
    m.define_singleton_method("from_hash", function!(from_hash, 1))?;
    m.define_singleton_method("from_json", function!(from_json, 1))?;
    m.define_private_method("compact_json", method!(compact_json, 0))?;
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
    m.define_method("save", method!(save, -1))?;
    m.define_method("complete", method!(complete, 0))?;
    m.define_method("execute", method!(execute, -1))?;
    let _ = ruby;
    Ok(m)
}
