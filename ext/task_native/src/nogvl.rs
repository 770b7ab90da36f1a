//! Runs Rust code with Ruby's GVL released, in a way Ruby can interrupt: the one place that
//! releases the GVL (through `raw::nogvl`) and raises Ruby's pending interrupts. Which way an interrupt arrives is
//! the caller's choice (see `Unblock`); `runtime.rs` makes it.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use magnus::{Error, Ruby};
use tokio::sync::Notify;

use crate::raw;

/// How Ruby tells code running without the GVL to stop: it calls `unblock`, which sets a
/// flag and, when the call may be woken from a thread, notifies. From a signal handler only
/// the flag may be touched (a Notify takes a lock).
pub struct Unblock<'h> {
    flag: AtomicBool,
    wake: Option<Notify>,
    /// Called after the flag is set: ends a blocking store's call (`Backend::interrupt`).
    hook: Option<&'h (dyn Fn() + Sync)>,
}

impl Unblock<'_> {
    /// True once Ruby asked the call to stop.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// `Some` when Ruby calls `unblock` from a thread: completes once it has (at once if
    /// it already did).
    pub fn notify(&self) -> Option<&Notify> {
        self.wake.as_ref()
    }
}

/// The Ruby thread calling: whether it is the main thread, and whether it is the only one.
pub fn calling_thread() -> (bool, bool) {
    raw::calling_thread()
}

/// Runs `f` with the GVL released. `from_signal_handler`: Ruby may call `unblock` from its
/// signal handler (RB_NOGVL_UBF_ASYNC_SAFE), which spares it a helper thread per call but
/// allows only the flag; otherwise it calls it from a thread and the Notify is there too.
/// Pending interrupts are raised (as an Error) just before and after the call; a panic in `f`
/// is caught and reported as a RuntimeError.
pub fn call<R, F>(ruby: &Ruby, from_signal_handler: bool, f: F) -> Result<R, Error>
where
    F: FnOnce(&Unblock) -> R,
{
    run_without_gvl(ruby, from_signal_handler, None, f)
}

/// `call`, with `hook` run when Ruby unblocks the call (after the flag is set): from a thread,
/// or from a signal handler when `from_signal_handler`, so it must be async-signal-safe.
pub fn call_interruptible<R, F>(
    ruby: &Ruby,
    from_signal_handler: bool,
    hook: &(dyn Fn() + Sync),
    f: F,
) -> Result<R, Error>
where
    F: FnOnce(&Unblock) -> R,
{
    run_without_gvl(ruby, from_signal_handler, Some(hook), f)
}

fn run_without_gvl<R, F>(
    ruby: &Ruby,
    from_signal_handler: bool,
    hook: Option<&(dyn Fn() + Sync)>,
    f: F,
) -> Result<R, Error>
where
    F: FnOnce(&Unblock) -> R,
{
    struct Call<'h, F, R> {
        f: Option<F>,
        unblock: Unblock<'h>,
        out: Option<R>,
        panicked: bool,
    }

    unsafe extern "C" fn run<R, F: FnOnce(&Unblock) -> R>(data: *mut c_void) -> *mut c_void {
        let call = data as *mut Call<'_, F, R>;
        // SAFETY: `data` is the Call below, alive for the whole of rb_nogvl. Its fields are
        // reached one at a time through the pointer; `unblock` (maybe on another thread, or
        // in a signal handler) only ever reads `unblock`, which is never written here.
        let (f, unblock) = unsafe { ((*call).f.take(), &(*call).unblock) };
        let Some(f) = f else {
            return ptr::null_mut();
        };
        // A panic must not cross into Ruby's C frames.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(unblock)));
        match r {
            // SAFETY: as above; nothing else writes `out` or `panicked`.
            Ok(out) => unsafe { (*call).out = Some(out) },
            // SAFETY: as above.
            Err(_) => unsafe { (*call).panicked = true },
        }
        ptr::null_mut()
    }

    unsafe extern "C" fn unblock(data: *mut c_void) {
        // SAFETY: `data` is the Call's Unblock, alive while Ruby may call this.
        let u = unsafe { &*(data as *const Unblock) };
        u.flag.store(true, Ordering::Release);
        if let Some(hook) = u.hook {
            hook();
        }
        if let Some(wake) = &u.wake {
            // Only present when Ruby calls this from a thread, never a signal handler.
            wake.notify_one();
        }
    }

    let mut call = Call {
        f: Some(f),
        unblock: Unblock {
            flag: AtomicBool::new(false),
            wake: (!from_signal_handler).then(Notify::new),
            hook,
        },
        out: None,
        panicked: false,
    };
    // Both pointers Ruby is given come from this one raw pointer, and `call` is not used
    // again until rb_nogvl has returned: a reference to `call.unblock` taken first would be
    // invalidated by the `&mut call` the data pointer was made from.
    let call_ptr: *mut Call<'_, F, R> = &mut call;
    let data = call_ptr as *mut c_void;
    // SAFETY: `call_ptr` points to `call`, alive here; this only computes a field address.
    let ubf_data = unsafe { ptr::addr_of_mut!((*call_ptr).unblock) } as *mut c_void;
    // Ruby handles pending interrupts just before and just after the call and may raise
    // there; that comes back as an Error, so the exception never passes through a Rust frame
    // that owns anything (`call` is dropped normally on return).
    // SAFETY: `run` and `unblock` match the data pointers given with them (both derived from
    // `call_ptr`), `run` does not touch Ruby, and `call` outlives rb_nogvl, which returns
    // only once `run` has and Ruby will call `unblock` no more.
    unsafe { raw::nogvl(run::<R, F>, data, unblock, ubf_data, from_signal_handler)? };
    if call.panicked {
        return Err(Error::new(
            ruby.exception_runtime_error(),
            "internal error: a call panicked while waiting (see stderr)",
        ));
    }
    call.out.take().ok_or_else(|| {
        Error::new(
            ruby.exception_runtime_error(),
            "internal error: a call without the GVL did not run",
        )
    })
}

/// Raises a pending interrupt (Interrupt, SignalException, Thread#raise's exception,
/// Thread#kill) as an Error that unwinds through Rust normally; runs trap handlers.
pub fn check_interrupts() -> Result<(), Error> {
    raw::check_interrupts()
}
