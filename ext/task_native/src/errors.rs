//! Rust errors -> Ruby exceptions. The classes are defined once, in lib/task/error.rb, and
//! looked up here by name.

use magnus::value::Lazy;
use magnus::{prelude::*, Error, ExceptionClass, RModule, Ruby, Value};

fn class(ruby: &Ruby, name: &str) -> ExceptionClass {
    let lookup = || -> Result<ExceptionClass, Error> {
        let task: RModule = ruby.class_object().const_get("Task")?;
        let base: ExceptionClass = task.const_get("Error")?;
        if name == "Error" {
            return Ok(base);
        }
        base.const_get(name)
    };
    // lib/task.rb defines the hierarchy before loading the extension; StandardError is the
    // fallback only if someone loads the library on its own.
    lookup().unwrap_or_else(|_| ruby.exception_standard_error())
}

static BAD_DATA: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "BadData"));
static NO_HOST: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "NoHostAvailable"));
static TIMEOUT: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "Timeout"));
static QUERY_REJECTED: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "QueryRejected"));
static UNAVAILABLE: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "Unavailable"));
static INVALID_TYPE: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "InvalidType"));
static FORKED: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "Forked"));
static TOO_MANY_TOMBSTONES: Lazy<ExceptionClass> =
    Lazy::new(|ruby| class(ruby, "TooManyTombstones"));
static BULK_FAILURE: Lazy<ExceptionClass> = Lazy::new(|ruby| class(ruby, "BulkFailure"));

/// Task::Error::BulkFailure with its list of `{task_list:, id:, error:}` failures.
pub fn bulk_failure(ruby: &Ruby, msg: String, failures: magnus::RArray) -> Result<Error, Error> {
    let exc: Value = ruby
        .get_inner(&BULK_FAILURE)
        .funcall("new", (msg, failures))?;
    match magnus::Exception::from_value(exc) {
        Some(e) => Ok(Error::from(e)),
        None => Err(argument(
            ruby,
            "Task::Error::BulkFailure.new did not return an exception",
        )),
    }
}

pub fn is_bad_data(ruby: &Ruby, e: &Error) -> bool {
    e.is_kind_of(ruby.get_inner(&BAD_DATA))
}

pub fn bad_data(ruby: &Ruby, msg: String) -> Error {
    Error::new(ruby.get_inner(&BAD_DATA), msg)
}

pub fn forked(ruby: &Ruby, msg: &str) -> Error {
    Error::new(ruby.get_inner(&FORKED), msg.to_string())
}

pub fn invalid_type(ruby: &Ruby, msg: String) -> Error {
    Error::new(ruby.get_inner(&INVALID_TYPE), msg)
}

pub fn argument(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), msg.into())
}

fn class_of(ruby: &Ruby, e: &task_core::Error) -> ExceptionClass {
    use task_core::Error as E;
    // An error from the driver comes wrapped with its cause: the class is the wrapped error's.
    match e.kind() {
        E::InvalidArgument(_) => ruby.exception_arg_error(),
        E::BadData(_) => ruby.get_inner(&BAD_DATA),
        E::NoHostAvailable(_) => ruby.get_inner(&NO_HOST),
        E::Timeout(_) => ruby.get_inner(&TIMEOUT),
        E::QueryRejected(_) => ruby.get_inner(&QUERY_REJECTED),
        E::Unavailable(_) => ruby.get_inner(&UNAVAILABLE),
        E::TooManyTombstones(_) => ruby.get_inner(&TOO_MANY_TOMBSTONES),
        // Not returned by kind(); listed so that a new variant cannot go unmapped.
        E::WithSource(inner, _) => class_of(ruby, inner),
    }
}

pub fn from_core(ruby: &Ruby, e: task_core::Error) -> Error {
    let class = class_of(ruby, &e);
    if std::error::Error::source(&e).is_none() {
        // Nothing to attach: let Ruby build the exception only if it is raised.
        return Error::new(class, e.message().to_string());
    }
    match exception(ruby, &e).map(magnus::Exception::from_value) {
        Ok(Some(exc)) => Error::from(exc),
        // Building it failed (a Ruby-side error): raise that one, it says what went wrong.
        Err(err) => err,
        Ok(None) => argument(ruby, format!("{class}.new did not return an exception")),
    }
}

/// The exception object for an error, to hand back without raising it (bulk results). A
/// Task::Error carries the driver's error text, if any, as `driver_error`.
pub fn exception(ruby: &Ruby, e: &task_core::Error) -> Result<Value, Error> {
    let exc: Value = class_of(ruby, e).funcall("new", (e.message(),))?;
    if let Some(text) = e.source_text() {
        let _: Value = exc.funcall("instance_variable_set", ("@driver_error", text))?;
    }
    Ok(exc)
}
