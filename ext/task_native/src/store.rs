//! An adapter's store as this process sees it, and the one way a Ruby call waits on it.
//!
//! The store is opened once per adapter and process (`StoreHandle::open`): no registry lookup
//! per request. A process made by fork opens its own on first use, and leaves what it
//! inherited untouched: dropping the parent's store there could remove the parent's sockets
//! from the epoll instance both processes share.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use magnus::{Error, Ruby};
use task_core::{Cursor, Mode, Page, Store, StoreSpec};
use tokio::task::JoinHandle;

use crate::{errors, logging, nogvl, runtime};

pub struct StoreHandle {
    spec: Box<dyn StoreSpec>,
    /// The store, and the pid of the process it was opened in.
    open: Mutex<Option<(u32, Store)>>,
    /// Pages scans (`all`, `rows`) have handed over, to show a scan reads lazily.
    pages_read: AtomicU64,
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        let open = self.open.get_mut().unwrap_or_else(|p| p.into_inner());
        if matches!(open, Some((pid, _)) if *pid != runtime::pid()) {
            std::mem::forget(open.take());
        }
    }
}

/// Polls a future that is ready at its first poll (`Mode::Ready` and `Mode::Blocking`);
/// `None` when it was not.
fn poll_once<T>(fut: impl Future<Output = T>) -> Option<T> {
    let fut = pin!(fut);
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

fn had_to_wait(ruby: &Ruby) -> Error {
    Error::new(
        ruby.exception_runtime_error(),
        "internal error: a store that does not wait had to wait",
    )
}

impl StoreHandle {
    pub fn new(spec: Box<dyn StoreSpec>) -> Self {
        StoreHandle {
            spec,
            open: Mutex::new(None),
            pages_read: AtomicU64::new(0),
        }
    }

    pub fn spec(&self) -> &dyn StoreSpec {
        &*self.spec
    }

    pub fn pages_read(&self) -> u64 {
        self.pages_read.load(Ordering::Relaxed)
    }

    /// This process's runtime and store.
    fn open(&self, ruby: &Ruby) -> Result<(&'static runtime::Runtime, Store), Error> {
        let rt = runtime::current(ruby)?;
        let pid = runtime::pid();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, store)) = &*open {
            if *owner == pid {
                return Ok((rt, store.clone()));
            }
        }
        let store = self
            .spec
            .open(&rt.connector)
            .map_err(|e| errors::from_core(ruby, e))?;
        if let Some(inherited) = open.replace((pid, store.clone())) {
            std::mem::forget(inherited);
        }
        Ok((rt, store))
    }

    /// Runs what `call` makes of the store to its end, as the store's mode says: polled once
    /// holding the GVL (`Ready`); on the runtime with the GVL released (`Async`, see
    /// `Runtime::block_on`); polled once with the GVL released, interruptibly (`Blocking`, see
    /// `blocking`). `call` may be made again (`Blocking`, after an interrupt).
    pub fn run<T, F, Fut>(&self, ruby: &Ruby, call: F) -> Result<T, Error>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = task_core::Result<T>>,
    {
        let (rt, store) = self.open(ruby)?;
        match store.mode() {
            Mode::Ready => match poll_once(call(store)) {
                Some(r) => r.map_err(|e| errors::from_core(ruby, e)),
                None => Err(had_to_wait(ruby)),
            },
            Mode::Async => rt.block_on(ruby, call(store)),
            Mode::Blocking => blocking(ruby, &store, call),
        }
    }

    /// The page of `task_list` at `cursor` (`None`: the first).
    pub fn page(
        &self,
        ruby: &Ruby,
        task_list: &str,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Cursor>, Error> {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
        self.run(ruby, |s| async move { s.page(task_list, cursor).await })
    }

    /// A page of list names at `cursor` (`None`: the first).
    pub fn lists_page(
        &self,
        ruby: &Ruby,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<String>, Option<Cursor>), Error> {
        self.run(ruby, |s| async move { s.lists_page(cursor).await })
    }

    /// Asks for the page at `cursor` in the background, so the store reads it while the
    /// caller works through the current one; `None` when the store gains nothing by it.
    pub fn read_ahead(
        &self,
        ruby: &Ruby,
        task_list: &str,
        cursor: &Cursor,
    ) -> Result<Option<PageAhead>, Error> {
        let (rt, store) = self.open(ruby)?;
        if !store.reads_ahead() {
            return Ok(None);
        }
        let (list, cursor) = (task_list.to_string(), cursor.clone());
        let handle = rt.spawn(async move { store.page(&list, Some(&cursor)).await });
        rt.nudge();
        Ok(Some(PageAhead {
            rt,
            handle: ManuallyDrop::new(handle),
        }))
    }

    /// Waits for a page asked for ahead (GVL released, interruptible).
    pub fn take(&self, ruby: &Ruby, mut ahead: PageAhead) -> Result<Page<Cursor>, Error> {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
        let rt = ahead.rt;
        let handle = &mut *ahead.handle;
        rt.block_on(ruby, async move {
            match handle.await {
                Ok(page) => page,
                Err(e) => Err(task_core::Error::Unavailable(format!(
                    "reading the next page did not finish: {e}"
                ))),
            }
        })
    }
}

/// Runs a blocking store's call with the GVL released. Ruby's unblock (Ctrl-C, `Thread#raise`,
/// `Timeout`, `Thread#kill`, a trapped signal) calls the store's `interrupt`, which ends the
/// call early with nothing half-done; the pending exception is then raised, and when there is
/// none (a trap handler that returned) the call is made again (by the process that began it:
/// a child forked by the handler gets Task::Error::Forked).
fn blocking<T, F, Fut>(ruby: &Ruby, store: &Store, call: F) -> Result<T, Error>
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = task_core::Result<T>>,
{
    let interrupt = || store.interrupt();
    let pid = runtime::pid();
    loop {
        let (main, alone) = nogvl::calling_thread();
        let before = store.interrupts();
        let (out, interrupted) = nogvl::call_interruptible(ruby, main && alone, &interrupt, |u| {
            (poll_once(call(store.clone())), u.requested())
        })?;
        let Some(out) = out else {
            return Err(had_to_wait(ruby));
        };
        // What the call logged, before its outcome reaches Ruby.
        logging::flush(ruby)?;
        match out {
            Ok(v) => return Ok(v),
            // Ended by an interrupt meant for another call of the store: made again.
            Err(_) if !interrupted && store.interrupts() != before => {}
            Err(e) if !interrupted => return Err(errors::from_core(ruby, e)),
            // Raises the exception behind the interrupt, if any; else the call runs again.
            Err(_) => {
                nogvl::check_interrupts()?;
                // A trap handler may have forked: the child must not use the parent's store.
                if runtime::pid() != pid {
                    return Err(errors::forked(
                        ruby,
                        "the process forked in a signal handler while this call was waiting; \
                         the child cannot finish it (the parent does)",
                    ));
                }
            }
        }
    }
}

/// A page requested ahead of need. Dropping it (the scan ended early) cancels the request.
pub struct PageAhead {
    rt: &'static runtime::Runtime,
    handle: ManuallyDrop<JoinHandle<task_core::Result<Page<Cursor>>>>,
}

impl PageAhead {
    /// False in a forked child: the request is the parent's, on the parent's connection.
    pub fn is_current_process(&self) -> bool {
        self.rt.is_current_process()
    }
}

impl Drop for PageAhead {
    fn drop(&mut self) {
        // In a forked child the handle is left alone: aborting would schedule the parent's
        // task and wake the parent's runtime through the descriptors both processes share.
        if self.rt.is_current_process() {
            self.handle.abort();
            // SAFETY: dropped once, here; the field is not used after.
            unsafe { ManuallyDrop::drop(&mut self.handle) };
        }
    }
}
