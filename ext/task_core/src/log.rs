//! Lines for the application's logger, from wherever the store runs (the I/O runtime
//! included): queued here, never handed to Ruby from that thread. The extension drains the
//! queue on a calling thread holding the GVL: when a waiting call is woken by `ready`, and
//! when a call returns. Nothing is queued while no logger is set (`set_enabled`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The Logger method of this level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One line: its level, the store it is about (see `CassandraStore::log_source`) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    pub source: String,
    pub message: String,
}

thread_local! {
    /// Attempts the last retried request on this thread took (0: none since `reset_attempts`).
    /// Calls run on the thread that waits for them, so the caller reads its own call's.
    static ATTEMPTS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Records how many attempts a request took (see `CassandraStore::retrying`).
pub fn note_attempts(n: u32) {
    ATTEMPTS.with(|a| a.set(n));
}

pub fn reset_attempts() {
    ATTEMPTS.with(|a| a.set(0));
}

/// The attempts noted on this thread since the last reset (0: no request was retried or
/// made).
pub fn attempts() -> u32 {
    ATTEMPTS.with(|a| a.get())
}

/// Lines kept while nobody drains them (a call waiting on another thread); older ones go.
const MAX_QUEUED: usize = 1000;

static ENABLED: AtomicBool = AtomicBool::new(false);
static PENDING: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static QUEUE: Mutex<VecDeque<Line>> = Mutex::new(VecDeque::new());
static READY: Notify = Notify::const_new();

/// Whether lines are queued at all (some logger is set).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Queues a line (the text is made only when a logger will see it) and wakes a waiting call
/// to deliver it.
pub fn log(level: Level, source: &str, message: impl FnOnce() -> String) {
    if !enabled() {
        return;
    }
    let line = Line {
        level,
        source: source.to_string(),
        message: message(),
    };
    {
        let mut q = QUEUE.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_QUEUED {
            q.pop_front();
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(line);
    }
    PENDING.store(true, Ordering::Release);
    READY.notify_one();
}

/// Whether lines wait to be delivered (one relaxed load: checked after every call).
pub fn pending() -> bool {
    PENDING.load(Ordering::Acquire)
}

/// Takes every queued line, and how many were dropped since the last drain.
pub fn drain() -> (Vec<Line>, u64) {
    let mut q = QUEUE.lock().unwrap_or_else(|p| p.into_inner());
    PENDING.store(false, Ordering::Release);
    (q.drain(..).collect(), DROPPED.swap(0, Ordering::Relaxed))
}

/// Completes once a line has been queued (at once if one was queued since the last wait).
pub async fn ready() {
    READY.notified().await;
}

/// Passes the driver's own events (its `tracing` events at debug level and above:
/// connections opened and lost, nodes up and down, metadata refreshes) on as lines at debug,
/// while a logger is set. Installed once per process as the global `tracing` subscriber.
pub fn forward_driver_events() {
    let _ = tracing::subscriber::set_global_default(DriverEvents);
}

struct DriverEvents;

/// An event's fields as text: its message first, then `name=value` for the others.
#[derive(Default)]
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = if field.name() == "message" {
            write!(self.0, "{value:?}")
        } else {
            write!(self.0, "{}={value:?}", field.name())
        };
    }
}

impl tracing::Subscriber for DriverEvents {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Asked anew each time: whether a logger is set changes at run time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        enabled() && metadata.is_event() && *metadata.level() <= tracing::Level::DEBUG
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        log(Level::Debug, "driver", || {
            let mut fields = Fields::default();
            event.record(&mut fields);
            format!("{} {}: {}", meta.level(), meta.target(), fields.0)
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_only_while_enabled_and_drains_in_order() {
        set_enabled(false);
        log(Level::Warn, "s", || {
            unreachable!("not formatted while disabled")
        });
        set_enabled(true);
        log(Level::Info, "s", || "one".into());
        log(Level::Warn, "s", || "two".into());
        assert!(pending());
        let (lines, dropped) = drain();
        assert_eq!(dropped, 0);
        let texts: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert!(texts.ends_with(&["one", "two"]));
        assert!(!pending());
        set_enabled(false);
    }
}
