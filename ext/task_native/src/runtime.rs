//! The I/O runtime of the process (tokio, and the connector that shares driver sessions) and
//! the policy for waiting on it: how a Ruby thread is woken, what a wake-up resumes, fork.
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
//!
//! A call from a non-blocking fiber under a Fiber scheduler (Async, Falcon) waits through the
//! scheduler instead (`runtime/fiber.rs`): its thread goes on running other fibers, so nobody drives
//! the runtime from `block_on`. For those calls a driver thread (a plain OS thread, no Ruby
//! thread) drives it: started on the first such call, it drives only while some fiber call
//! waits (and LINGER after, so that a fiber making one call after another does not hand the
//! runtime back and forth), and otherwise sleeps. A process that never calls from a fiber
//! under a scheduler never starts it.

mod fiber;

use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

use magnus::{Error, Ruby};
use task_core::Connector;
use tokio::sync::Notify;

use crate::{errors, logging, nogvl};

pub struct Runtime {
    pid: u32,
    tokio: tokio::runtime::Runtime,
    pub connector: Connector,
    fibers: Fibers,
}

/// The driver thread for fiber calls (see the module's notes).
#[derive(Default)]
struct Fibers {
    /// Fiber calls waiting now.
    waiting: AtomicUsize,
    /// Notified when `waiting` leaves or reaches 0: the driving thread looks again.
    changed: Notify,
    /// Whether the driver thread was started; with `busy`, how it sleeps while `waiting` is 0.
    started: Mutex<bool>,
    busy: Condvar,
}

/// How long the driver thread drives on after the last fiber call ended.
const LINGER: Duration = Duration::from_millis(2);

static CURRENT: AtomicPtr<Runtime> = AtomicPtr::new(ptr::null_mut());

/// This process's id, remembered: every call asks (is the runtime, is the store, this
/// process's?), and a `getpid` system call each time was four per call, a measurable part of
/// a save's CPU. 0 until first asked, and again in a child just forked (`forget_pid`).
static PID: AtomicU32 = AtomicU32::new(0);

/// Run by libc in the child of every fork (Ruby's, or any library's), before it returns.
extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// The id of the running process (`std::process::id()`, without a system call per ask).
pub fn pid() -> u32 {
    static AT_FORK: Once = Once::new();
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, which is all a child
        // of a multi-threaded process may safely do before it returns from fork.
        unsafe {
            libc::pthread_atfork(None, None, Some(forget_pid));
        }
    });
    let p = std::process::id();
    PID.store(p, Ordering::Relaxed);
    p
}

/// How often a waiting call looks at its interrupt flag: the most an interrupt can wait.
const CANCEL_CHECK: Duration = Duration::from_millis(5);

/// How often the main thread, waiting while other Ruby threads exist, goes back to Ruby to
/// run what is pending (see `Runtime::wait`): the most a signal can wait in that case.
const RECHECK: Duration = Duration::from_millis(200);

/// The runtime of this process, made on first use (and again in a forked child).
pub fn current(ruby: &Ruby) -> Result<&'static Runtime, Error> {
    let pid = pid();
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a published runtime is never freed.
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
        fibers: Fibers::default(),
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
        self.pid == pid()
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
    pub fn block_on<T, Fut>(&'static self, ruby: &Ruby, fut: Fut) -> Result<T, Error>
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
        if let Some(scheduler) = fiber::scheduler() {
            match self.block_on_fiber(ruby, scheduler, fut) {
                Ok(out) => return out,
                // The fiber cannot be suspended: the call waits as a thread's.
                Err(same) => fut = same,
            }
        }
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
                Some(done) => {
                    // What the call logged, before its outcome reaches Ruby.
                    logging::flush(ruby)?;
                    return done.map_err(|e| errors::from_core(ruby, e));
                }
                // Raises the pending interrupt, if any; `fut` is dropped on the way out.
                None => {
                    nogvl::check_interrupts()?;
                    // Woken for log lines, perhaps: delivered now, while the call waits on.
                    logging::flush(ruby)?;
                }
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

    /// `block_on` for a non-blocking fiber under a Fiber scheduler: the fiber waits through
    /// the scheduler (`fiber::wait`). What the scheduler raises in the fiber while it waits
    /// (`Async::Task#stop`, `with_timeout`, `Timeout.timeout` where the scheduler implements
    /// `timeout_after`) drops the future, cancelling
    /// the call as an interrupt does; a fork while it waited leaves the future to the parent.
    /// `Err(fut)`: the scheduler cannot suspend this fiber, and the future is handed back.
    #[allow(clippy::type_complexity)]
    fn block_on_fiber<T, Fut>(
        &'static self,
        ruby: &Ruby,
        scheduler: magnus::Value,
        mut fut: Pin<Box<Fut>>,
    ) -> Result<Result<T, Error>, Pin<Box<Fut>>>
    where
        Fut: Future<Output = task_core::Result<T>>,
    {
        Ok(match fiber::wait(self, ruby, scheduler, fut.as_mut()) {
            Ok(fiber::Waited::Done(done)) => {
                // What the call logged, before its outcome reaches Ruby.
                logging::flush(ruby).and_then(|()| done.map_err(|e| errors::from_core(ruby, e)))
            }
            Ok(fiber::Waited::CannotSuspend) => return Err(fut),
            Ok(fiber::Waited::Forked) => {
                std::mem::forget(fut);
                Err(errors::forked(
                    ruby,
                    "the process forked while this call was waiting in a fiber; the child \
                     cannot finish it (its requests belong to the parent's connections, and the \
                     parent finishes it)",
                ))
            }
            Err(e) => {
                // Dropped in the runtime's context: what it had in flight is cancelled.
                let entered = self.tokio.enter();
                drop(fut);
                drop(entered);
                Err(e)
            }
        })
    }

    /// The runtime's context, for polling a future off the runtime's threads (a fiber call).
    fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.tokio.enter()
    }

    /// Marks a fiber call as waiting until the value returned is dropped; the driver thread
    /// drives the runtime meanwhile (started now if it never was).
    fn fiber_call(&'static self, ruby: &Ruby) -> Result<FiberCall, Error> {
        let f = &self.fibers;
        if f.waiting.fetch_add(1, Ordering::SeqCst) == 0 {
            f.changed.notify_one();
            let mut started = f.started.lock().unwrap_or_else(|p| p.into_inner());
            if !*started {
                let spawned = std::thread::Builder::new()
                    .name("task-io".into())
                    .spawn(move || self.drive_fiber_calls());
                if let Err(e) = spawned {
                    f.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Error::new(
                        ruby.exception_runtime_error(),
                        format!("cannot start the I/O thread for calls from fibers: {e}"),
                    ));
                }
                *started = true;
            }
            f.busy.notify_one();
        }
        Ok(FiberCall(self))
    }

    /// The driver thread: drives the runtime while fiber calls wait, sleeps otherwise.
    fn drive_fiber_calls(&'static self) {
        // Signals are for Ruby's threads: this one never takes them.
        // SAFETY: a sigset on the stack, filled and applied to this thread only.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, ptr::null_mut());
        }
        let f = &self.fibers;
        loop {
            {
                let mut started = f.started.lock().unwrap_or_else(|p| p.into_inner());
                while f.waiting.load(Ordering::SeqCst) == 0 {
                    started = f.busy.wait(started).unwrap_or_else(|p| p.into_inner());
                }
            }
            self.tokio.block_on(async {
                loop {
                    let changed = f.changed.notified();
                    if f.waiting.load(Ordering::SeqCst) > 0 {
                        changed.await;
                        continue;
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(LINGER) => {
                            if f.waiting.load(Ordering::SeqCst) == 0 {
                                return;
                            }
                        }
                    }
                }
            });
        }
    }

    /// Polls `fut` with the GVL released until it is done (`Some`) or the thread is woken
    /// (`None`: an interrupt may be pending, or the periodic return of the main thread).
    fn wait<T, Fut: Future<Output = T>>(
        &self,
        ruby: &Ruby,
        mut fut: Pin<&mut Fut>,
    ) -> Result<Option<T>, Error> {
        // Which thread may run the unblock function, and so how it may wake the waiting call:
        //
        // * The main thread is the only Ruby thread: Ruby would start (and then join) a helper
        //   thread for every call just to be able to unblock it on Ctrl-C; measured, about
        //   150 us per call. Instead Ruby unblocks it from its signal handler, which may only
        //   set a flag; the call checks it every CANCEL_CHECK (a timer, cheap when one thread
        //   drives the runtime alone).
        // * Other threads exist: Ruby unblocks the call from a thread (the one interrupting,
        //   or one that watches for signals), so it can wake it at once through a Notify. No
        //   timer per call: with several threads each new timer can wake the thread driving
        //   the runtime; measured with 8 threads saving, dropping it took ~8 us off each save.
        //
        // Signals are for the main thread, and are only turned into an unblock call by a
        // Ruby thread that happens to be sleeping. Should the other threads end during the
        // call, nobody would: so the main thread, when not alone, also returns to Ruby every
        // RECHECK, runs what is pending (trap handlers, Interrupt) and, if nothing raised,
        // resumes the same future, deciding anew how it may be woken.
        let (main, alone) = nogvl::calling_thread();
        let from_signal_handler = main && alone;
        let recheck = main && !alone;
        let rt = &self.tokio;
        // Log lines wake the call only while some logger is set: the wait then registers on
        // one more (process-wide) Notify.
        let logging = task_core::log::enabled();
        nogvl::call(ruby, from_signal_handler, move |unblock| {
            rt.block_on(async move {
                if let Some(wake) = unblock.notify() {
                    if recheck {
                        return tokio::select! {
                            biased;
                            v = &mut fut => Some(v),
                            _ = wake.notified() => None,
                            _ = tokio::time::sleep(RECHECK) => None,
                            _ = task_core::log::ready(), if logging => None,
                        };
                    }
                    // A permit left by an early unblock completes this at once.
                    return tokio::select! {
                        biased;
                        v = &mut fut => Some(v),
                        _ = wake.notified() => None,
                        _ = task_core::log::ready(), if logging => None,
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
                            if unblock.requested() || task_core::log::pending() {
                                return None;
                            }
                        }
                    }
                }
            })
        })
    }
}

/// A fiber call waiting (see `Runtime::fiber_call`).
struct FiberCall(&'static Runtime);

impl Drop for FiberCall {
    fn drop(&mut self) {
        // In a forked child the driver is the parent's (and not running here): left alone.
        if !self.0.is_current_process() {
            return;
        }
        let f = &self.0.fibers;
        if f.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            f.changed.notify_one();
        }
    }
}
