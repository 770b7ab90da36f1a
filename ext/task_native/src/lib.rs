//! The `task` gem's native extension: wires each Ruby class's module together.

mod adapter;
mod args;
mod backend;
mod codec;
mod errors;
mod interface;
mod runtime;
mod task;

use magnus::{prelude::*, Error, Ruby};

#[magnus::init(name = "task_native")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let task = ruby.define_module("Task")?;
    let data_interface = task.define_module("DataInterface")?;
    task::init(ruby, task)?;
    interface::init(ruby, data_interface)?;
    adapter::init(ruby, data_interface)?;
    Ok(())
}
