//! The classes and modules the extension defines, kept from init (and pinned, so GC
//! compaction cannot move them under us), and Ruby's method lookup where it is available.

use std::ffi::{c_char, c_void};
use std::sync::OnceLock;

use magnus::rb_sys::{AsRawId, AsRawValue};
use magnus::value::{IntoId, LazyId, Opaque, ReprValue};
use magnus::{Error, RClass, RModule, Ruby, Value};

struct Kept {
    task: Opaque<RModule>,
    interface: Opaque<RClass>,
    cassandra_adapter: Opaque<RClass>,
}

static KEPT: OnceLock<Kept> = OnceLock::new();

/// Called once from init, after every class is defined.
pub fn keep(task: RModule, interface: RClass, cassandra_adapter: RClass) -> Result<(), Error> {
    for v in [
        task.as_value(),
        interface.as_value(),
        cassandra_adapter.as_value(),
    ] {
        // Marked and pinned for the life of the process.
        magnus::gc::register_mark_object(v);
    }
    let _ = KEPT.set(Kept {
        task: task.into(),
        interface: interface.into(),
        cassandra_adapter: cassandra_adapter.into(),
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

type MethodEntryFn = unsafe extern "C" fn(rb_sys::VALUE, rb_sys::ID) -> *const c_void;

/// Ruby's own method lookup (`rb_method_entry`, vm_method.c): the entry a call of a method
/// on an instance of a class resolves to, compared here only by address. It is exported by
/// libruby but declared only in Ruby's internal headers, so it is found at load time; where
/// it is absent every call takes Ruby's dispatch (and `Class#new`), which is always right.
fn method_entry_fn() -> Option<MethodEntryFn> {
    static FOUND: OnceLock<Option<MethodEntryFn>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        extern "C" {
            fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
        }
        #[cfg(target_os = "macos")]
        let default = -2isize as *mut c_void; // RTLD_DEFAULT
        #[cfg(not(target_os = "macos"))]
        let default = std::ptr::null_mut(); // RTLD_DEFAULT
                                            // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads.
        let p = unsafe { dlsym(default, c"rb_method_entry".as_ptr()) };
        // SAFETY: a non-null address for this exported symbol is that function, whose
        // signature (VALUE klass, ID id) -> const rb_method_entry_t * has not changed
        // from Ruby 2.x to 3.4.
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, MethodEntryFn>(p) })
    })
}

/// The method entry `name` resolves to on `klass` (a class or module), or None when the
/// lookup is not available or finds nothing. Entries are compared, never kept: compaction
/// may move them.
pub fn method_entry(ruby: &Ruby, klass: Value, name: &LazyId) -> Option<*const c_void> {
    let f = method_entry_fn()?;
    let id = (**name).into_id_with(ruby).as_raw();
    // SAFETY: `klass` is a live class or module (the caller holds it), and the lookup
    // neither allocates nor raises.
    let entry = unsafe { f(klass.as_raw(), id) };
    (!entry.is_null()).then_some(entry)
}
