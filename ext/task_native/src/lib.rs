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
mod raw;
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
    // Defined here so that the codec can make them before lib/task/indifferent_hash.rb
    // (which gives them their methods) is loaded.
    let indifferent_hash = task.define_class("IndifferentHash", ruby.class_hash())?;
    classes::keep(task_module, interface, cassandra_adapter, indifferent_hash)
}
