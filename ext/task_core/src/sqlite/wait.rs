//! Waiting and stopping: the lock-wait deadline (SQLite's busy handler) and interrupting a
//! running call from another thread.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};

use super::conn::{Done, Failure};
use super::SqliteStore;

/// Stops a call running on a `SqliteStore` from another thread: Ruby's unblock function calls
/// [`CallInterrupt::interrupt`] while the call runs (GVL released) in
/// [`SqliteStore::interruptible`]. The statement running is stopped by `sqlite3_interrupt`, a
/// wait for the write lock ends at its next look (within a few milliseconds), and a call not
/// yet started does not start; the call then fails with `Error::Timeout` saying it was
/// interrupted, and its transaction is rolled back: nothing of it was applied.
///
/// `interrupt` takes a lock: call it from a thread, not from a signal handler.
#[derive(Clone, Default)]
pub struct CallInterrupt(Arc<Slot>);

#[derive(Default)]
struct Slot {
    fired: AtomicBool,
    /// The connection the call is using, while it uses one.
    running: Mutex<Option<InterruptHandle>>,
}

impl Slot {
    fn running(&self) -> MutexGuard<'_, Option<InterruptHandle>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CallInterrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the call (now, or as soon as it starts). Safe from any thread.
    pub fn interrupt(&self) {
        self.0.fired.store(true, Ordering::Release);
        if let Some(h) = self.0.running().as_ref() {
            h.interrupt();
        }
    }

    pub fn is_interrupted(&self) -> bool {
        self.0.fired.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for CallInterrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallInterrupt")
            .field("fired", &self.is_interrupted())
            .finish()
    }
}

thread_local! {
    /// The interrupt of the call this thread is running (see `SqliteStore::interruptible`).
    static CURRENT: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
    /// When this thread's wait for a lock must end (read by `busy`, which SQLite calls on the
    /// thread running the statement).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The store's interrupt count this thread's call watches, and its value when the call
    /// began (see `SqliteStore::watching`): the call is interrupted once it changed.
    static WATCH: RefCell<Option<(Arc<AtomicU64>, u64)>> = const { RefCell::new(None) };
}

pub(super) fn interrupted_here() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|s| s.fired.load(Ordering::Acquire))
    }) || WATCH.with(|w| {
        w.borrow()
            .as_ref()
            .is_some_and(|(count, start)| count.load(Ordering::Acquire) != *start)
    })
}

/// SQLite's busy handler: called while another connection holds the lock this one needs.
/// Waits (a few milliseconds at a time) until the deadline or an interrupt.
pub(super) fn busy(tries: i32) -> bool {
    if interrupted_here() {
        return false;
    }
    let Some(deadline) = DEADLINE.with(Cell::get) else {
        return false;
    };
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    let step = match tries {
        0..=3 => 1,
        4..=15 => 2,
        _ => 5,
    };
    std::thread::sleep(Duration::from_millis(step).min(deadline - now));
    true
}

/// Sets this thread's lock-wait deadline, and puts back the one before when dropped.
pub(super) struct DeadlineGuard(Option<Instant>);

impl DeadlineGuard {
    pub(super) fn set(wait: Duration) -> Self {
        let until = Instant::now().checked_add(wait);
        DeadlineGuard(DEADLINE.with(|d| d.replace(until)))
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.0));
    }
}

/// While alive, `interrupt` on the call's slot reaches this connection.
pub(super) struct Registration(Option<Arc<Slot>>);

impl Registration {
    pub(super) fn new(conn: &Connection) -> Done<Registration> {
        let Some(slot) = CURRENT.with(|c| c.borrow().clone()) else {
            return Ok(Registration(None));
        };
        *slot.running() = Some(conn.get_interrupt_handle());
        // Looked at after the handle is set: an interrupt either saw the handle or is seen.
        if slot.fired.load(Ordering::Acquire) {
            *slot.running() = None;
            return Err(Failure::Interrupted);
        }
        Ok(Registration(Some(slot)))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(slot) = &self.0 {
            *slot.running() = None;
        }
    }
}

impl SqliteStore {
    /// Runs `f` so that `interrupt.interrupt()`, from another thread, stops it (see
    /// [`CallInterrupt`]). Every store call made by `f` on this thread is covered.
    pub fn interruptible<R>(&self, interrupt: &CallInterrupt, f: impl FnOnce(&Self) -> R) -> R {
        struct Restore(Option<Arc<Slot>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let before = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = before);
            }
        }
        let before = CURRENT.with(|c| c.replace(Some(Arc::clone(&interrupt.0))));
        let _restore = Restore(before);
        f(self)
    }
}

impl SqliteStore {
    /// Runs `f` so that a change of `count` (made by anyone, at any time after `start` was
    /// read from it) stops it as `CallInterrupt::interrupt` would: by the busy handler
    /// and the progress handler, which look at it every few milliseconds or steps. Bumping
    /// an atomic is all an interrupt does, so it may come from a signal handler
    /// (`Backend::interrupt`).
    pub fn watching<R>(&self, count: &Arc<AtomicU64>, start: u64, f: impl FnOnce(&Self) -> R) -> R {
        struct Restore(Option<(Arc<AtomicU64>, u64)>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let before = self.0.take();
                WATCH.with(|w| *w.borrow_mut() = before);
            }
        }
        let before = WATCH.with(|w| w.replace(Some((Arc::clone(count), start))));
        let _restore = Restore(before);
        f(self)
    }
}

/// Whether this thread's current call was interrupted (checked between the chunks of a bulk
/// call).
pub(super) fn interrupted() -> bool {
    interrupted_here()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteConfig;

    const FOREVER: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                           SELECT count(*) FROM c";

    #[test]
    fn an_interrupt_between_two_statements_stops_the_second() {
        let dir = std::env::temp_dir().join(format!("task_core_wait2_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(SqliteStore::open(SqliteConfig::new(dir.join("t.db"))).unwrap());
        let interrupt = CallInterrupt::new();
        let (between_tx, between) = std::sync::mpsc::channel::<()>();
        let (fired_tx, fired) = std::sync::mpsc::channel::<()>();
        let call = {
            let (store, interrupt) = (Arc::clone(&store), interrupt.clone());
            std::thread::spawn(move || {
                store.interruptible(&interrupt, |s| {
                    s.with_conn(
                        || "two statements".into(),
                        |c| {
                            let one: i64 = c.query_row("SELECT 1", [], |r| r.get(0))?;
                            // No statement runs now: sqlite3_interrupt alone would be lost.
                            between_tx.send(()).unwrap();
                            fired.recv().unwrap();
                            let n: i64 = c.query_row(FOREVER, [], |r| r.get(0))?;
                            Ok(one + n)
                        },
                    )
                })
            })
        };
        between.recv().unwrap();
        interrupt.interrupt();
        fired_tx.send(()).unwrap();
        let start = Instant::now();
        while !call.is_finished() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the interrupt was lost"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let err = call.join().unwrap().unwrap_err();
        assert!(err.message().contains("was interrupted"), "{err}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_interrupt_ends_a_statement_that_would_never_end() {
        let dir = std::env::temp_dir().join(format!("task_core_wait_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let store = Arc::new(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
        let interrupt = CallInterrupt::new();
        let call = {
            let (store, interrupt) = (Arc::clone(&store), interrupt.clone());
            std::thread::spawn(move || {
                store.interruptible(&interrupt, |s| {
                    s.with_conn(
                        || "counting forever".into(),
                        |c| {
                            let n: i64 = c.query_row(FOREVER, [], |r| r.get(0))?;
                            Ok(n)
                        },
                    )
                })
            })
        };
        // Once the call holds a connection, its statement runs (or is about to).
        let start = Instant::now();
        while interrupt.0.running().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the call never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        interrupt.interrupt();
        while !call.is_finished() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the interrupt was lost"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let err = call.join().unwrap().unwrap_err();
        assert!(err.message().contains("counting forever"), "{err}");
        assert!(err.message().contains("was interrupted"), "{err}");
        // The store's connections are fine afterwards.
        assert_eq!(store.count("l").unwrap(), 0);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_busy_handler_gives_up_at_the_deadline_or_an_interrupt() {
        assert!(!busy(0), "no deadline: no wait");
        let _d = DeadlineGuard::set(Duration::from_secs(60));
        assert!(busy(0));
        let slot = CallInterrupt::new();
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(&slot.0)));
        slot.interrupt();
        assert!(!busy(1));
        CURRENT.with(|c| *c.borrow_mut() = None);
        let _past = DeadlineGuard::set(Duration::ZERO);
        assert!(!busy(2));
    }
}
