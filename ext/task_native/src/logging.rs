//! Delivers the core's log lines (`task_core::log`) to Ruby's loggers, always on a calling
//! thread that holds the GVL: `Task::Logging.deliver(level, source, message)` picks the
//! adapter's logger or `Task.logger`.

use magnus::value::LazyId;
use magnus::{function, prelude::*, Error, RModule, Ruby, Value};

static DELIVER: LazyId = LazyId::new("deliver");

/// Hands every queued line to Ruby. A logger that raises does not fail the call.
pub fn flush(ruby: &Ruby) -> Result<(), Error> {
    if !task_core::log::pending() {
        return Ok(());
    }
    let (lines, dropped) = task_core::log::drain();
    let module: RModule = ruby.define_module("Task")?.define_module("Logging")?;
    if dropped > 0 {
        let _: Value = module.funcall(
            *DELIVER,
            (
                "warn",
                "",
                format!("{dropped} log lines were dropped while no call could deliver them"),
            ),
        )?;
    }
    for line in lines {
        let _: Value = module.funcall(*DELIVER, (line.level.name(), line.source, line.message))?;
    }
    Ok(())
}

pub fn init(ruby: &Ruby, task: RModule) -> Result<(), Error> {
    task_core::log::forward_driver_events();
    let m = task.define_module("Logging")?;
    m.define_singleton_method("native_enabled=", function!(task_core::log::set_enabled, 1))?;
    let _ = ruby;
    Ok(())
}
