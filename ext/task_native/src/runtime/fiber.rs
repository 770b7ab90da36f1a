//! Waiting calls made from a fiber under a Fiber scheduler (Ruby 3's `Fiber.scheduler`: Async,
//! Falcon): the fiber waits through the scheduler, which runs other fibers meanwhile.
//!
//! The call's future stays where it is (on the caller's stack, as for a thread's call) and is
//! polled on the calling thread, with the GVL held (a poll is a few microseconds of Rust: it
//! sends the request, or reads the answer). Between polls the fiber waits, through the
//! scheduler's `io_wait`, on a wake-up descriptor (an eventfd; a pipe where there is none)
//! that the future's waker writes to. The runtime's I/O and timers are meanwhile driven by the
//! runtime's driver thread (`Runtime::fiber_call`), which runs only while fiber calls wait.
//!
//! Whatever the scheduler raises in the fiber while it waits (`Async::Task#stop`,
//! `with_timeout`, `Timeout.timeout` with a scheduler that implements `timeout_after`, an
//! exception from another fiber) comes back as an Error and the caller drops the future: the
//! call is cancelled exactly as an interrupt cancels a thread's call.
//!
//! Calls of a SQLite store (`Mode::Blocking`) and of the memory store (`Mode::Ready`) do not
//! come here: a memory call never waits, and a SQLite call runs on the calling thread for its
//! length (store.rs), holding up the fibers of that thread meanwhile.
//!
//! Wake-up descriptors are kept for the next call (one per fiber waiting at the same time,
//! never more) and are never closed: a waker may outlive its call (a connection holds it until
//! its next event), and its late write must land on a descriptor of ours, where it is at most
//! a wake-up too many. A forked child makes its own: the inherited ones are shared with the
//! parent, whose wake-ups the child must not take.

use std::ffi::c_void;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use magnus::value::{Opaque, ReprValue};
use magnus::{kwargs, Error, Ruby, Value};

use super::Runtime;
use crate::raw;

/// The scheduler of the calling fiber when it is non-blocking (`Fiber.scheduler` set on the
/// thread and `Fiber.blocking?` false); None otherwise (every call then waits as a thread's).
pub fn scheduler() -> Option<Value> {
    raw::fiber_scheduler()
}

/// A wake-up descriptor and the Ruby IO the scheduler waits on.
struct Signal {
    read: RawFd,
    write: RawFd,
    io: Opaque<Value>,
    /// Set by the first wake-up since the last drain: later ones write nothing.
    woken: AtomicBool,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            let one: u64 = 1;
            // SAFETY: `write` is open for as long as the Signal lives (never closed), and the
            // buffer is 8 readable bytes. A full pipe (EAGAIN) is already readable: nothing lost.
            unsafe { libc::write(self.write, &one as *const u64 as *const c_void, 8) };
        }
    }
}

impl Signal {
    fn new(ruby: &Ruby) -> Result<Arc<Signal>, Error> {
        let (read, write) = descriptors().map_err(|e| {
            Error::new(
                ruby.exception_runtime_error(),
                format!("cannot make a wake-up descriptor for a call under a Fiber scheduler: {e}"),
            )
        })?;
        let io: Result<Value, Error> = ruby
            .class_io()
            .funcall("for_fd", (read, kwargs!("autoclose" => false)));
        let io = match io {
            Ok(io) => io,
            Err(e) => {
                close(read, write);
                return Err(e);
            }
        };
        // Kept (and so marked) for good, as the descriptor is.
        magnus::gc::register_mark_object(io);
        Ok(Arc::new(Signal {
            read,
            write,
            io: Opaque::from(io),
            woken: AtomicBool::new(false),
        }))
    }

    /// Consumes the wake-ups written so far, then lets the next one write again. A wake-up
    /// between the two writes nothing, but the poll that follows the drain sees what it woke
    /// for; one after writes, so the next wait returns at once. (Cleared before reading, a
    /// wake-up in between would leave the flag set and nothing to read: the next one lost.)
    fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `read` is open (never closed) and non-blocking; `buf` is writable.
            let n = unsafe { libc::read(self.read, buf.as_mut_ptr() as *mut c_void, buf.len()) };
            if n < buf.len() as isize {
                break;
            }
        }
        self.woken.store(false, Ordering::Release);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn descriptors() -> std::io::Result<(RawFd, RawFd)> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fd, fd))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn descriptors() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for fd in fds {
        // SAFETY: fcntl on a descriptor just made.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    Ok((fds[0], fds[1]))
}

fn close(read: RawFd, write: RawFd) {
    // SAFETY: descriptors this module made and nothing else holds.
    unsafe {
        libc::close(read);
        if write != read {
            libc::close(write);
        }
    }
}

/// Wake-up descriptors free for the next call, and the process they belong to.
static FREE: Mutex<(u32, Vec<Arc<Signal>>)> = Mutex::new((0, Vec::new()));

fn take(ruby: &Ruby) -> Result<Arc<Signal>, Error> {
    let pid = super::pid();
    {
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        if free.0 != pid {
            // Inherited through fork: shared with the parent, left to it.
            std::mem::forget(std::mem::take(&mut free.1));
            free.0 = pid;
        }
        if let Some(s) = free.1.pop() {
            return Ok(s);
        }
    }
    Signal::new(ruby)
}

fn give_back(signal: Arc<Signal>) {
    let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
    if free.0 == super::pid() {
        free.1.push(signal);
    } else {
        std::mem::forget(signal);
    }
}

/// How a fiber's wait ended (other than by an exception).
pub enum Waited<T> {
    Done(T),
    /// The process forked while the fiber waited: the future is the parent's, and the caller
    /// must neither poll nor drop it.
    Forked,
    /// The scheduler cannot suspend this fiber (FiberError): a child forked inside a fiber,
    /// under Ruby 3.1, runs on in that fiber as its thread's root fiber, which has nothing to
    /// yield to. The future is as it was: the caller waits for it as a thread would.
    CannotSuspend,
}

/// Polls `fut` on this thread until it is done, the fiber waiting through `scheduler` between
/// polls. An Error is what the scheduler raised in the fiber (cancellation, a timeout): the
/// caller drops the future, cancelling the call.
pub fn wait<T, Fut: Future<Output = T>>(
    rt: &'static Runtime,
    ruby: &Ruby,
    scheduler: Value,
    mut fut: Pin<&mut Fut>,
) -> Result<Waited<T>, Error> {
    let signal = take(ruby)?;
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let io = ruby.get_inner(signal.io);
    let out = {
        let _busy = rt.fiber_call(ruby)?;
        loop {
            let polled = {
                let _in = rt.enter();
                fut.as_mut().poll(&mut cx)
            };
            if let Poll::Ready(v) = polled {
                break Ok(Waited::Done(v));
            }
            let waited = raw::scheduler_wait_readable(scheduler, io.as_value());
            if !rt.is_current_process() {
                break Ok(Waited::Forked);
            }
            match waited {
                Ok(true) => {}
                // Async 1.x's io_wait rescues Async::TimeoutError (meant for its own timeout
                // argument) and returns nil: `task.with_timeout` ended the wait, and its error
                // is raised here as it would have been.
                Ok(false) => {
                    if let Some(e) = swallowed_timeout(ruby) {
                        break Err(e);
                    }
                }
                Err(e) if is_fiber_error(ruby, &e) => break Ok(Waited::CannotSuspend),
                Err(e) => break Err(e),
            }
            signal.drain();
        }
    };
    give_back(signal);
    out
}

fn is_fiber_error(ruby: &Ruby, e: &Error) -> bool {
    use magnus::Module;
    ruby.class_object()
        .const_get::<_, magnus::ExceptionClass>("FiberError")
        .is_ok_and(|class| e.is_kind_of(class))
}

/// The error a scheduler's `io_wait` swallowed when it returns nil with no timeout given:
/// Async 1.x's `Async::TimeoutError` ("execution expired", as `with_timeout` makes it). None
/// for another scheduler: the fiber polls and waits again.
fn swallowed_timeout(ruby: &Ruby) -> Option<Error> {
    use magnus::Module;
    let async_module: magnus::RModule = ruby.class_object().const_get("Async").ok()?;
    let class: magnus::ExceptionClass = async_module.const_get("TimeoutError").ok()?;
    Some(Error::new(class, "execution expired"))
}
