//! `Task::DataInterface::Interface`: delegates to an adapter built by `adapter_builder`,
//! which subclasses inherit and may each override (class_attribute semantics).

use magnus::prelude::*;
use magnus::rb_sys::AsRawValue;
use magnus::typed_data::Obj;
use magnus::value::{LazyId, ReprValue};
use magnus::{method, Error, RClass, RHash, RModule, RObject, Ruby, Value};

use crate::adapter::{self, Adapter};
use crate::{args, classes, errors, options};

static IV_ADAPTER: LazyId = LazyId::new("@adapter");
static IV_OPTIONS: LazyId = LazyId::new("@options");
static IV_BUILDER: LazyId = LazyId::new("@adapter_builder");
/// On Task::Task: the interface `Task::Task.interface` returns.
static IV_CURRENT: LazyId = LazyId::new("@interface");

fn interface_class(ruby: &Ruby) -> Result<RClass, Error> {
    classes::interface(ruby)
}

/// `Task::Task.interface`: built once with the current adapter_builder, then reused.
pub fn current(ruby: &Ruby) -> Result<Value, Error> {
    let module = classes::task_module(ruby)?;
    let cached: Value = module.ivar_get(*IV_CURRENT)?;
    if !cached.is_nil() {
        return Ok(cached);
    }
    let iface: Value = interface_class(ruby)?.funcall("new", ())?;
    module.ivar_set(*IV_CURRENT, iface)?;
    Ok(iface)
}

/// `Task::Task.interface = v` (nil: build one again on next use).
pub fn set_current(ruby: &Ruby, v: Value) -> Result<(), Error> {
    classes::task_module(ruby)?.ivar_set(*IV_CURRENT, v)
}

/// The builder of this class, else of the nearest ancestor that set one, else the default.
fn adapter_builder(ruby: &Ruby, rb_self: RClass) -> Result<Value, Error> {
    let base = interface_class(ruby)?;
    let mut class = Some(rb_self);
    while let Some(c) = class {
        let defined: bool = c.funcall(
            "instance_variable_defined?",
            (ruby.to_symbol("@adapter_builder"),),
        )?;
        if defined {
            return c.ivar_get(*IV_BUILDER);
        }
        if c.as_raw() == base.as_raw() {
            break;
        }
        class = c.superclass().ok();
    }
    base.const_get("DEFAULT_ADAPTER_BUILDER")
}

fn set_adapter_builder(ruby: &Ruby, rb_self: RClass, builder: Value) -> Result<Value, Error> {
    if !builder.is_nil() && !builder.respond_to("call", false)? {
        return Err(errors::argument(
            ruby,
            format!(
                "adapter_builder must respond to #call(options), got {}",
                builder.inspect()
            ),
        ));
    }
    if builder.is_nil() {
        // nil: back to inheriting.
        if rb_self.funcall::<_, _, bool>(
            "instance_variable_defined?",
            (ruby.to_symbol("@adapter_builder"),),
        )? {
            let _: Value = rb_self.funcall(
                "remove_instance_variable",
                (ruby.to_symbol("@adapter_builder"),),
            )?;
        }
    } else {
        rb_self.ivar_set(*IV_BUILDER, builder)?;
    }
    // Task::Task.interface was built with the old builder.
    set_current(ruby, ruby.qnil().as_value())?;
    Ok(builder)
}

/// The default builder: the store the configuration gives (lib/task/configuration.rb:
/// `Task.configure`, a YAML file and the environment). For Cassandra, a CassandraAdapter from
/// the configured options with the call's own over them (task_rb's `:hosts`, `:port`,
/// `:keyspace`, and any other CassandraAdapter option), read here so that a name it does not
/// know is refused as Interface's (`:adapter` is Interface#initialize's own, nil when it gets
/// here). Another store's adapter is built by the configuration. Without the configuration
/// loaded (the extension required alone), the call's options alone, as task_rb did.
fn default_builder(ruby: &Ruby, args: &[Value]) -> Result<Value, Error> {
    let opts = match args.first() {
        Some(v) if !v.is_nil() => Some(RHash::try_convert(*v)?),
        _ => None,
    };
    let task = ruby.define_module("Task")?;
    if !task.respond_to("configuration", false)? {
        let config = options::cassandra_config(ruby, opts, "Interface", &["adapter"])?;
        return adapter::cassandra_adapter(ruby, config);
    }
    let conf: Value = task.funcall("configuration", ())?;
    let given = opts.unwrap_or_else(|| ruby.hash_new());
    // nil: the configured store is another one, whose adapter the configuration builds.
    let merged: Value = conf.funcall("default_cassandra_options", (given,))?;
    let Some(merged) = RHash::from_value(merged) else {
        return conf.funcall("build_adapter", (given,));
    };
    let config = options::cassandra_config(ruby, Some(merged), "Interface", &["adapter"])?;
    let built = adapter::cassandra_adapter(ruby, config)?;
    // The one warning of a process that connects where nothing configured told it to.
    let _: Value = conf.funcall("default_adapter_built", (built, merged))?;
    Ok(built)
}

fn initialize(ruby: &Ruby, rb_self: RObject, args: &[Value]) -> Result<(), Error> {
    let options = args::optional_hash(ruby, args)?;
    let adapter = match options.get(ruby.sym_new("adapter")) {
        Some(a) if !a.is_nil() => a,
        _ => {
            let builder = adapter_builder(ruby, rb_self.class())?;
            builder.funcall("call", (options,))?
        }
    };
    for m in ["store", "all", "find", "delete"] {
        if !adapter.respond_to(m, false)? {
            return Err(errors::argument(
                ruby,
                format!("adapter {} does not respond to #{m} (an adapter needs store, all, find and delete)", adapter.inspect()),
            ));
        }
    }
    rb_self.ivar_set(*IV_OPTIONS, options)?;
    rb_self.ivar_set(*IV_ADAPTER, adapter)
}

fn adapter(rb_self: RObject) -> Result<Value, Error> {
    rb_self.ivar_get(*IV_ADAPTER)
}

/// `store(task)`, or `store(task, ttl: seconds)` passed on as given.
fn store(ruby: &Ruby, rb_self: RObject, args: &[Value]) -> Result<Value, Error> {
    args::pass_on(ruby, adapter(rb_self)?, "store", args)
}

/// `all(task_list)`, or `all(task_list, on_bad_row: ..., after: ...)` passed on as given.
fn all(ruby: &Ruby, rb_self: RObject, args: &[Value]) -> Result<Value, Error> {
    args::pass_on(ruby, adapter(rb_self)?, "all", args)
}

fn find(rb_self: RObject, task_list: Value, id: Value) -> Result<Value, Error> {
    adapter(rb_self)?.funcall("find", (task_list, id))
}

fn delete(rb_self: RObject, task_list: Value, id: Value) -> Result<Value, Error> {
    adapter(rb_self)?.funcall("delete", (task_list, id))
}

/// True when `iface` holds one of the gem's adapters (which check what they are given).
pub fn has_own_adapter(iface: Value) -> Result<bool, Error> {
    let Some(obj) = RObject::from_value(iface) else {
        return Ok(false);
    };
    let a: Value = obj.ivar_get(*IV_ADAPTER)?;
    Ok(Obj::<Adapter>::try_convert(a).is_ok())
}

/// Defines Task::DataInterface::Interface; returns it.
pub fn init(ruby: &Ruby, data_interface: RModule) -> Result<RClass, Error> {
    let class = data_interface.define_class("Interface", ruby.class_object())?;
    class.define_singleton_method("adapter_builder", method!(adapter_builder, 0))?;
    class.define_singleton_method("adapter_builder=", method!(set_adapter_builder, 1))?;
    let default = ruby.proc_from_fn(|ruby, args, _block| default_builder(ruby, args));
    class.const_set("DEFAULT_ADAPTER_BUILDER", default)?;
    class.define_method("initialize", method!(initialize, -1))?;
    class.define_method("adapter", method!(adapter, 0))?;
    class.define_method("store", method!(store, -1))?;
    class.define_method("all", method!(all, -1))?;
    class.define_method("find", method!(find, 2))?;
    class.define_method("delete", method!(delete, 2))?;
    Ok(class)
}
