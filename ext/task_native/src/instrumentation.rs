//! The native half of `Task::Instrumentation`: scans publish one event per page read, which
//! only the scan loop sees. Off (one relaxed load per page) until Ruby turns it on, when
//! something subscribes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use magnus::value::{LazyId, ReprValue};
use magnus::{function, prelude::*, Error, RModule, Ruby, Value};

static ON: AtomicBool = AtomicBool::new(false);
static PUBLISH_PAGE: LazyId = LazyId::new("publish_page");

/// Whether scans publish their pages.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// `Task::Instrumentation.native_events = bool`.
fn set_on(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Hands one page of a scan to `Task::Instrumentation.publish_page(list, count, seconds,
/// error)`; `error` is the exception the page read raised, or nil.
pub fn page(
    ruby: &Ruby,
    task_list: &str,
    count: usize,
    took: Duration,
    error: Option<&Error>,
) -> Result<(), Error> {
    let module: RModule = ruby
        .define_module("Task")?
        .define_module("Instrumentation")?;
    let error: Value = match error.map(Error::error_type) {
        Some(magnus::error::ErrorType::Exception(x)) => x.as_value(),
        Some(magnus::error::ErrorType::Error(class, msg)) => {
            class.funcall("new", (msg.as_ref(),))?
        }
        _ => ruby.qnil().as_value(),
    };
    let _: Value = module.funcall(*PUBLISH_PAGE, (task_list, count, took.as_secs_f64(), error))?;
    Ok(())
}

pub fn init(ruby: &Ruby, task: RModule) -> Result<(), Error> {
    let m = task.define_module("Instrumentation")?;
    m.define_singleton_method("native_events=", function!(set_on, 1))?;
    m.define_singleton_method(
        "reset_attempts",
        function!(task_core::log::reset_attempts, 0),
    )?;
    m.define_singleton_method("attempts", function!(task_core::log::attempts, 0))?;
    let _ = ruby;
    Ok(())
}
