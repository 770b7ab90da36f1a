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
use task_core::{Cursor, Page, Store, StoreSpec};
use tokio::task::JoinHandle;

use crate::{errors, runtime};

pub struct StoreHandle {
    spec: StoreSpec,
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

/// Runs a future that is ready at its first poll (a store whose `waits()` is false).
fn ready<T>(ruby: &Ruby, fut: impl Future<Output = task_core::Result<T>>) -> Result<T, Error> {
    let fut = pin!(fut);
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r.map_err(|e| errors::from_core(ruby, e)),
        Poll::Pending => Err(Error::new(
            ruby.exception_runtime_error(),
            "internal error: a store that does not wait had to wait",
        )),
    }
}

impl StoreHandle {
    pub fn new(spec: StoreSpec) -> Self {
        StoreHandle {
            spec,
            open: Mutex::new(None),
            pages_read: AtomicU64::new(0),
        }
    }

    pub fn spec(&self) -> &StoreSpec {
        &self.spec
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
        let store = self.spec.open(&rt.connector);
        if let Some(inherited) = open.replace((pid, store.clone())) {
            std::mem::forget(inherited);
        }
        Ok((rt, store))
    }

    /// Runs what `call` makes of the store to its end: polled once when the store does not
    /// wait, else on the runtime with the GVL released (see `Runtime::block_on`).
    pub fn run<T, F, Fut>(&self, ruby: &Ruby, call: F) -> Result<T, Error>
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = task_core::Result<T>>,
    {
        let (rt, store) = self.open(ruby)?;
        if store.waits() {
            rt.block_on(ruby, call(store))
        } else {
            ready(ruby, call(store))
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
