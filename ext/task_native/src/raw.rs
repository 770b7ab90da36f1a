//! Every call into Ruby's C API that does not go through magnus, in one place.
//!
//! The rules each function here keeps (its SAFETY comment says how):
//! * Called only from a Ruby thread holding the GVL; the one exception is `nogvl`, which
//!   gives the GVL up for the duration of its callback, which must not touch Ruby.
//! * A C function that can raise (allocate, call Ruby code, autoload, look up a name that
//!   may not be one) runs inside `magnus::rb_sys::protect`, so the exception comes back as
//!   an `Error` and unwinds Rust normally; a raise never longjmps over a Rust frame that owns
//!   anything. A call is made unprotected only when Ruby's source shows it cannot raise for
//!   the arguments the function's signature admits; that is said beside it.
//! * Values handed in are live (held by the caller on the machine stack, where the GC sees
//!   them); nothing returned is kept in Rust's heap past the caller's frame.
//! * Raw pointers into Ruby memory (a String's bytes) never outlive a call that may run Ruby
//!   code or allocate: copy first.

use std::ffi::{c_char, c_long, c_void};
use std::sync::OnceLock;

use magnus::rb_sys::{protect, AsRawId, AsRawValue, FromRawId, FromRawValue};
use magnus::value::{Id, IntoId, LazyId};
use magnus::{Error, RHash, RObject, RString, Ruby, Symbol, Value};

/// A Symbol's name as its own frozen String (no copy, no allocation).
pub fn sym2str(sym: Symbol) -> Value {
    // SAFETY: rb_sym2str takes any Symbol (static or dynamic) and returns the name String
    // it already holds: it neither allocates nor raises.
    unsafe { Value::from_raw(rb_sys::rb_sym2str(sym.as_raw())) }
}

/// The arity of `v`'s method `id` as Method#arity reports it; 0 when there is no method.
pub fn method_arity(v: Value, id: Id) -> i32 {
    // SAFETY: a plain method-table lookup on the receiver's class (singleton included); it
    // neither allocates nor raises, and gives 0 when there is no method entry.
    unsafe { rb_sys::rb_obj_method_arity(v.as_raw(), id.as_raw()) }
}

/// True when `klass`'s method `id` is still the one Ruby itself defined (no override in
/// the class, its ancestors or prepended modules).
pub fn method_is_basic(klass: Value, id: Id) -> bool {
    // SAFETY: a method lookup through the global method cache; it neither allocates nor
    // raises, for any class or module.
    unsafe { rb_sys::rb_method_basic_definition_p(klass.as_raw(), id.as_raw()) != 0 }
}

/// A String as a Symbol: the caller has checked that its bytes are valid in its encoding
/// (rb_str_intern raises EncodingError otherwise), so this cannot raise.
pub fn str_intern_valid(s: RString) -> Value {
    // SAFETY: rb_str_intern raises only for a String of broken encoding, which the caller
    // excluded; making the Symbol allocates at most a Symbol, which does not raise short of
    // NoMemoryError (which Ruby raises as a fatal error anyway).
    unsafe { Value::from_raw(rb_sys::rb_str_intern(s.as_raw())) }
}

/// An instance variable of a plain object (T_OBJECT); nil when unset.
pub fn ivar_get(object: RObject, name: &LazyId, ruby: &Ruby) -> Value {
    let id = (**name).into_id_with(ruby).as_raw();
    // SAFETY: reading an instance variable of a live T_OBJECT neither raises nor allocates;
    // magnus's ivar_get would wrap it in rb_protect, which measured as much as the read.
    unsafe { Value::from_raw(rb_sys::rb_ivar_get(object.as_raw(), id)) }
}

/// Sets instance variables on an object the caller just allocated and nobody else has seen.
pub fn ivar_set_fresh(object: RObject, pairs: &[(&LazyId, Value)], ruby: &Ruby) {
    for (name, v) in pairs {
        let id = (**name).into_id_with(ruby).as_raw();
        // SAFETY: the object is fresh and not frozen, so rb_ivar_set cannot raise
        // FrozenError; growing its ivar table allocates only (no Ruby code runs).
        unsafe { rb_sys::rb_ivar_set(object.as_raw(), id, v.as_raw()) };
    }
}

/// Inserts `pairs` (keys and values alternating) into a fresh Hash whose keys are Symbols,
/// as a Hash literal is built.
pub fn hash_bulk_insert_symbols(hash: RHash, pairs: &[Value]) {
    // SAFETY: Value is a transparent VALUE, so the slice is an array of VALUEs. The keys are
    // Symbols, whose #hash and #eql? are Ruby's own (no Ruby code runs), and the Hash is
    // fresh (not frozen, not being iterated): inserting cannot raise.
    unsafe {
        rb_sys::rb_hash_bulk_insert(
            pairs.len() as _,
            pairs.as_ptr() as *const rb_sys::VALUE,
            hash.as_raw(),
        )
    };
}

/// The Ruby thread calling: whether it is the main thread, and whether it is the only one.
pub fn calling_thread() -> (bool, bool) {
    // SAFETY: plain queries of the VM's thread list, which neither allocate nor raise.
    unsafe {
        let main = rb_sys::rb_thread_current() == rb_sys::rb_thread_main();
        (main, rb_sys::rb_thread_alone() != 0)
    }
}

/// The current Fiber scheduler when the calling fiber is non-blocking (Ruby 3.0+):
/// `Fiber.scheduler` unless `Fiber.blocking?`; None otherwise.
pub fn fiber_scheduler() -> Option<Value> {
    // SAFETY: rb_fiber_scheduler_current reads the current thread's scheduler and blocking
    // count (scheduler.c): it neither allocates nor raises.
    let s = unsafe { rb_sys::rb_fiber_scheduler_current() };
    if s == rb_sys::Qnil as rb_sys::VALUE {
        return None;
    }
    // SAFETY: a live value: the scheduler, which the thread holds.
    Some(unsafe { Value::from_raw(s) })
}

/// `scheduler.io_wait(io, IO::READABLE, nil)`: the calling fiber waits until `io` is readable
/// while the scheduler runs others. Whatever the scheduler raises in the fiber meanwhile
/// (a stop, a timeout) comes back as an Error. False when the scheduler returned nil or false
/// (no readiness, though no timeout was given).
pub fn scheduler_wait_readable(scheduler: Value, io: Value) -> Result<bool, Error> {
    let v = protect(|| {
        // SAFETY: `scheduler` is the current scheduler and `io` a live IO, both held by the
        // caller; any exception is caught by protect.
        unsafe { rb_sys::rb_fiber_scheduler_io_wait_readable(scheduler.as_raw(), io.as_raw()) }
    })?;
    Ok(v != rb_sys::Qnil as rb_sys::VALUE && v != rb_sys::Qfalse as rb_sys::VALUE)
}

/// The C signatures of `nogvl`'s callbacks.
pub type NogvlFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
pub type UnblockFn = unsafe extern "C" fn(*mut c_void);

/// `rb_nogvl(func, data, ubf, ubf_data, flags)` under rb_protect: Ruby handles pending
/// interrupts just before and after the call and may raise there; that comes back as an
/// Error.
///
/// # Safety
/// `func` must not touch Ruby, and `data`/`ubf_data` must be what `func`/`ubf` expect and
/// stay valid until this returns (Ruby calls `ubf` no more once rb_nogvl has returned).
/// Both pointers must be derived from one raw pointer to the callers' shared state, so
/// that neither invalidates the other.
pub unsafe fn nogvl(
    func: NogvlFn,
    data: *mut c_void,
    ubf: UnblockFn,
    ubf_data: *mut c_void,
    async_safe_ubf: bool,
) -> Result<(), Error> {
    let flags = if async_safe_ubf {
        rb_sys::RB_NOGVL_UBF_ASYNC_SAFE as i32
    } else {
        0
    };
    // (rb_thread_call_without_gvl2 instead refuses to run while any interrupt is pending,
    // finalizer and GC jobs included, which under GC.stress is always.)
    protect(|| {
        // SAFETY: the caller's contract above.
        unsafe { rb_sys::rb_nogvl(Some(func), data, Some(ubf), ubf_data, flags) };
        rb_sys::Qnil as rb_sys::VALUE
    })
    .map(|_| ())
}

/// Raises a pending interrupt (Interrupt, SignalException, Thread#raise's exception,
/// Thread#kill) as an Error that unwinds through Rust normally; runs trap handlers.
pub fn check_interrupts() -> Result<(), Error> {
    protect(|| {
        // SAFETY: called with the GVL held; any exception is caught by protect.
        unsafe { rb_sys::rb_thread_check_ints() };
        rb_sys::Qnil as rb_sys::VALUE
    })
    .map(|_| ())
}

// Constants, looked up without raising NameError for a missing name (see convert.rs).

/// The ID of an existing Symbol named `name` (UTF-8), or None when no such Symbol was ever
/// made: then no constant can have that name. Makes no Symbol.
pub fn existing_id(name: &str) -> Result<Option<Id>, Error> {
    let id = protect(|| {
        // SAFETY: the pointer and length are a valid UTF-8 str, which rb_check_id_cstr only
        // reads; it raises only for a name invalid in its encoding (caught by protect).
        unsafe {
            rb_sys::rb_check_id_cstr(
                name.as_ptr() as *const c_char,
                name.len() as c_long,
                rb_sys::rb_utf8_encoding(),
            ) as rb_sys::VALUE
        }
    })?;
    // SAFETY: the value is an ID (or 0 for none) as rb_check_id_cstr returned it.
    Ok((id != 0).then(|| unsafe { Id::from_raw(id as rb_sys::ID) }))
}

/// True when `id` is a constant name (starts with an upper-case letter).
pub fn is_const_id(id: Id) -> bool {
    // SAFETY: a pure check of the ID's kind bits.
    unsafe { rb_sys::rb_is_const_id(id.as_raw()) != 0 }
}

/// Whether `Object.const_get` would find `id` in `module`: `top` for the first segment of
/// a path (`module` is Object: its ancestors count), otherwise as for a later segment
/// (ancestors count, Object's own constants do not). An autoload not yet loaded counts as
/// defined. Never loads anything.
pub fn const_defined(module: Value, id: Id, top: bool) -> bool {
    // SAFETY: `module` is a Class or Module (checked by the caller); both functions only
    // walk constant tables (and the autoload table, without loading) and neither allocates
    // nor raises.
    unsafe {
        if top {
            rb_sys::rb_const_defined(module.as_raw(), id.as_raw()) != 0
        } else {
            rb_sys::rb_const_defined_from(module.as_raw(), id.as_raw()) != 0
        }
    }
}

/// The constant `const_defined(module, id, top)` found, as `Object.const_get` gets it:
/// this may autoload, warn of a deprecated constant or call `const_missing`, so it is
/// protected.
pub fn const_get(module: Value, id: Id, top: bool) -> Result<Value, Error> {
    let v = protect(|| {
        // SAFETY: `module` is a Class or Module; any exception is caught by protect.
        unsafe {
            if top {
                rb_sys::rb_const_get(module.as_raw(), id.as_raw())
            } else {
                rb_sys::rb_const_get_from(module.as_raw(), id.as_raw())
            }
        }
    })?;
    // SAFETY: rb_const_get returned a live value.
    Ok(unsafe { Value::from_raw(v) })
}

/// The constant `id` of `module` itself (not its ancestors'), when it is defined (an
/// autoload not yet loaded is loaded now).
pub fn const_at(module: Value, id: Id) -> Result<Option<Value>, Error> {
    // SAFETY: `module` is a Class or Module (the caller's); rb_const_defined_at only reads.
    let defined = unsafe { rb_sys::rb_const_defined_at(module.as_raw(), id.as_raw()) != 0 };
    if !defined {
        return Ok(None);
    }
    let v = protect(|| {
        // SAFETY: a defined constant; an autoload or a deprecation warning may run Ruby
        // code, and any exception is caught by protect.
        unsafe { rb_sys::rb_const_get_at(module.as_raw(), id.as_raw()) }
    })?;
    // SAFETY: rb_const_get_at returned a live value.
    Ok(Some(unsafe { Value::from_raw(v) }))
}

// Ruby's own method lookup, found at load time.

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
