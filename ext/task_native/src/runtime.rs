//! The tokio runtime and the driver sessions, owned by one process, and the one way Ruby
//! threads wait on them: with the GVL released and interruptible.
//!
//! The runtime has no threads of its own: it is a current-thread runtime, driven by whichever
//! Ruby thread is waiting in `block_on` (others waiting at the same time park until their own
//! request is done or the driving thread hands the runtime over). A request is sent, awaited
//! and read on the calling thread, with no wake-up crossing threads; measured against a
//! two-worker runtime with the same code, one thread's save + find + complete cycles went from
//! ~1,150 to ~1,600 a second, and bulk writes and 8 saving threads did as well or better. The
//! driver's background work (pool refills, keepalives) runs only while some thread waits on a
//! request (or during `nudge`), which is when it is needed.
//!
//! After a fork the child gets a new runtime on first use. The inherited one is leaked on
//! purpose: its sockets and timers belong to the parent's connections.

use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::Duration;

use magnus::{Error, Ruby};
use task_core::Connector;
use tokio::sync::Notify;

use crate::errors;

pub struct Runtime {
    pid: u32,
    tokio: tokio::runtime::Runtime,
    pub connector: Connector,
}

static CURRENT: AtomicPtr<Runtime> = AtomicPtr::new(ptr::null_mut());

/// How often a waiting call looks at its interrupt flag: the most an interrupt can wait.
const CANCEL_CHECK: Duration = Duration::from_millis(5);

/// How often the main thread, waiting while other Ruby threads exist, goes back to Ruby to
/// run what is pending (see `Runtime::wait`): the most a signal can wait in that case.
const RECHECK: Duration = Duration::from_millis(200);

/// The runtime of this process, made on first use (and again in a forked child).
pub fn current(ruby: &Ruby) -> Result<&'static Runtime, Error> {
    let pid = std::process::id();
    let p = CURRENT.load(Ordering::Acquire);
    // Safety: a published runtime is never freed.
    if let Some(rt) = unsafe { p.as_ref() } {
        if rt.pid == pid {
            return Ok(rt);
        }
    }
    // Only threads holding the GVL get here, so two cannot build at once.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ruby.exception_runtime_error(),
                format!("cannot start the I/O runtime: {e}"),
            )
        })?;
    let rt: &'static Runtime = Box::leak(Box::new(Runtime {
        pid,
        tokio,
        connector: Connector::new(),
    }));
    CURRENT.store(rt as *const Runtime as *mut Runtime, Ordering::Release);
    Ok(rt)
}

impl Runtime {
    /// Starts `fut` on the runtime; it makes progress whenever some thread waits in
    /// `block_on` (and during `nudge`).
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tokio.spawn(fut)
    }

    /// Runs whatever is ready on the runtime for a moment, without waiting for anything:
    /// enough for a request just spawned to be written to its connection. Called with the GVL
    /// held; it never blocks (a `yield_now` loop is always ready again at once).
    pub fn nudge(&self) {
        self.tokio.block_on(async {
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
        })
    }

    /// True when this runtime belongs to the running process (not inherited through fork).
    pub fn is_current_process(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Runs `fut` to completion with the GVL released. Ctrl-C, SIGTERM, `Thread#kill`,
    /// `Thread#raise` and `Timeout.timeout` interrupt it: the pending exception is raised as
    /// an Error that unwinds through Rust normally, and the future is dropped (cancelling what
    /// it had in flight). A wake-up with no exception behind it (a trapped signal whose
    /// handler returned, `Thread#wakeup`) resumes the same future: nothing it finished is
    /// done again, and every deadline it holds keeps counting from when the call began.
    ///
    /// A trap handler may fork. The child then holds a future whose sockets and timers belong
    /// to the parent's runtime: it must neither poll nor drop it, so the future is leaked and
    /// the child gets `Task::Error::Forked`; the parent resumes as if nothing happened.
    pub fn block_on<T, Fut>(&self, ruby: &Ruby, fut: Fut) -> Result<T, Error>
    where
        Fut: Future<Output = task_core::Result<T>>,
    {
        if !self.is_current_process() {
            return Err(errors::forked(
                ruby,
                "this call belongs to a connection of the parent process",
            ));
        }
        // Boxed so that it stays put while the thread goes back to Ruby between waits.
        let mut fut = Box::pin(fut);
        loop {
            let waited = self.wait(ruby, fut.as_mut());
            if !self.is_current_process() {
                std::mem::forget(fut);
                return Err(errors::forked(
                    ruby,
                    "the process forked while this call was waiting; the child cannot finish it \
                     (its requests belong to the parent's connections, and the parent finishes it)",
                ));
            }
            match waited? {
                Some(Ok(v)) => return Ok(v),
                Some(Err(e)) => return Err(errors::from_core(ruby, e)),
                // Raises the pending interrupt, if any; `fut` is dropped on the way out.
                None => check_interrupts()?,
            }
            // A trap handler run by check_interrupts may have forked too.
            if !self.is_current_process() {
                std::mem::forget(fut);
                return Err(errors::forked(
                    ruby,
                    "the process forked in a signal handler while this call was waiting; the \
                     child cannot finish it (the parent does)",
                ));
            }
        }
    }

    /// Polls `fut` with the GVL released until it is done (`Some`) or the thread is woken
    /// (`None`: an interrupt may be pending, or the periodic return of the main thread).
    fn wait<T, Fut: Future<Output = T>>(
        &self,
        ruby: &Ruby,
        fut: Pin<&mut Fut>,
    ) -> Result<Option<T>, Error> {
        struct Call<'a, T, Fut> {
            rt: &'a tokio::runtime::Runtime,
            fut: Option<Pin<&'a mut Fut>>,
            cancel: Cancel,
            recheck: bool,
            out: Option<T>,
            panicked: bool,
        }

        unsafe extern "C" fn run<T, Fut: Future<Output = T>>(data: *mut c_void) -> *mut c_void {
            // Safety: `data` is the Call below, alive for the whole of this call. Its fields
            // are reached through the raw pointer, one at a time; `unblock` (possibly on another
            // thread) only ever touches `cancel`.
            let call = data as *mut Call<'_, T, Fut>;
            let Some(mut fut) = (unsafe { (*call).fut.take() }) else {
                return ptr::null_mut();
            };
            let cancel: &Cancel = unsafe { &(*call).cancel };
            let recheck = unsafe { (*call).recheck };
            let rt = unsafe { (*call).rt };
            // A panic must not cross into Ruby's C frames; it is reported below.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(async move {
                    if let Some(wake) = &cancel.wake {
                        if recheck {
                            // See RECHECK: the main thread goes back to Ruby now and then.
                            return tokio::select! {
                                biased;
                                v = &mut fut => Some(v),
                                _ = wake.notified() => None,
                                _ = tokio::time::sleep(RECHECK) => None,
                            };
                        }
                        // A permit left by an early interrupt completes this at once.
                        return tokio::select! {
                            biased;
                            v = &mut fut => Some(v),
                            _ = wake.notified() => None,
                        };
                    }
                    // The first tick is immediate, so an interrupt that came before the call
                    // began is seen at once.
                    let mut tick = tokio::time::interval(CANCEL_CHECK);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            biased;
                            v = &mut fut => return Some(v),
                            _ = tick.tick() => {
                                if cancel.flag.load(Ordering::Acquire) {
                                    return None;
                                }
                            }
                        }
                    }
                })
            }));
            // Safety: as above.
            match r {
                Ok(out) => unsafe { (*call).out = out },
                Err(_) => unsafe { (*call).panicked = true },
            }
            ptr::null_mut()
        }

        unsafe extern "C" fn unblock(data: *mut c_void) {
            // Safety: `data` is the Call's Cancel, alive while Ruby may call this.
            let cancel = unsafe { &*(data as *const Cancel) };
            cancel.flag.store(true, Ordering::Release);
            if let Some(wake) = &cancel.wake {
                // Only present when Ruby calls this from a thread, never a signal handler.
                wake.notify_one();
            }
        }

        // Which thread may run `unblock`, and so how it may wake the waiting call:
        //
        // * The main thread is the only Ruby thread: Ruby would start (and then join) a helper
        //   thread for every call just to be able to run `unblock` on Ctrl-C; measured, about
        //   150 us per call. With RB_NOGVL_UBF_ASYNC_SAFE it calls `unblock` from its signal
        //   handler instead, so `unblock` only sets an atomic flag, which the call checks
        //   every CANCEL_CHECK (a timer, cheap when one thread drives the runtime alone).
        // * Other threads exist: Ruby calls `unblock` from a thread (the one interrupting, or
        //   one that watches for signals), never from a signal handler (the flag is not
        //   passed), so it can wake the call at once through a Notify. No timer per call:
        //   with several threads each new timer can wake the thread driving the runtime;
        //   measured with 8 threads saving, dropping it took ~8 us of CPU off every save.
        //
        // Signals are for the main thread, and are only turned into an `unblock` call by a
        // Ruby thread that happens to be sleeping. Should the other threads end during the
        // call, nobody would: so the main thread, when not alone, also returns to Ruby every
        // RECHECK, runs what is pending (trap handlers, Interrupt) and, if nothing raised,
        // resumes the same future, deciding anew how it may be woken.
        let (alone, main) = unsafe {
            let main = rb_sys::rb_thread_current() == rb_sys::rb_thread_main();
            (rb_sys::rb_thread_alone() != 0 && main, main)
        };
        let mut call = Call {
            rt: &self.tokio,
            fut: Some(fut),
            cancel: Cancel {
                flag: AtomicBool::new(false),
                wake: (!alone).then(Notify::new),
            },
            recheck: main && !alone,
            out: None,
            panicked: false,
        };
        let cancel = &call.cancel as *const Cancel as *mut c_void;
        let data = &mut call as *mut Call<'_, T, Fut> as *mut c_void;
        let flags = if alone {
            rb_sys::RB_NOGVL_UBF_ASYNC_SAFE as i32
        } else {
            0
        };
        // Ruby handles pending interrupts just before and just after the call, and may raise
        // there; rb_protect turns that into an Error here, so the exception never passes
        // through a Rust frame that owns anything (`call` is dropped normally on return).
        // (rb_thread_call_without_gvl2 instead refuses to run while any interrupt is pending,
        // finalizer and GC jobs included, which under GC.stress is always.)
        magnus::rb_sys::protect(|| {
            unsafe {
                rb_sys::rb_nogvl(Some(run::<T, Fut>), data, Some(unblock), cancel, flags);
            }
            rb_sys::Qnil as rb_sys::VALUE
        })?;
        if call.panicked {
            return Err(Error::new(
                ruby.exception_runtime_error(),
                "internal error: the Cassandra request panicked (see stderr)",
            ));
        }
        Ok(call.out.take())
    }
}

/// How an interrupt reaches a waiting call (see `Runtime::wait`).
struct Cancel {
    flag: AtomicBool,
    wake: Option<Notify>,
}

/// Raises a pending interrupt (Interrupt, Thread#raise's exception, Thread#kill) as an
/// Error that unwinds through Rust normally.
fn check_interrupts() -> Result<(), Error> {
    magnus::rb_sys::protect(|| {
        unsafe { rb_sys::rb_thread_check_ints() };
        rb_sys::Qnil as rb_sys::VALUE
    })
    .map(|_| ())
}
