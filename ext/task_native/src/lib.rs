//! The `task` gem's native extension: wires each Ruby class's module together.

mod adapter;
mod args;
mod classes;
mod codec;
mod convert;
mod errors;
mod instrumentation;
mod interface;
mod logging;
mod nogvl;
mod options;
mod runtime;
mod store;
mod task;

use magnus::{prelude::*, Error, Ruby};

#[magnus::init(name = "task_native")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let task = ruby.define_module("Task")?;
    let data_interface = task.define_module("DataInterface")?;
    let task_module = task::init(ruby, task)?;
    let interface = interface::init(ruby, data_interface)?;
    let cassandra_adapter = adapter::init(ruby, data_interface)?;
    instrumentation::init(ruby, task)?;
    logging::init(ruby, task)?;
    classes::keep(task_module, interface, cassandra_adapter)
}
