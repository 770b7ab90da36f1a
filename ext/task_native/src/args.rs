//! Ruby arguments to Rust values: option hashes, counts, and the one rule for task lists and
//! ids.

use magnus::encoding::EncodingCapable;
use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::rb_sys::AsRawValue;
use magnus::{Error, Float, Integer, RHash, RString, Ruby, Symbol, Value};
use task_core::TaskKey;

use crate::{codec, errors};

/// Calls `name` on `receiver` with `args`: one argument and, only when given, an options
/// Hash after it (so that an object of one's own need not take options nobody uses).
pub fn pass_on(ruby: &Ruby, receiver: Value, name: &str, args: &[Value]) -> Result<Value, Error> {
    match args {
        [first] => receiver.funcall(name, (*first,)),
        [first, opts] => receiver.funcall(name, (*first, *opts)),
        _ => Err(errors::argument(
            ruby,
            format!(
                "wrong number of arguments (given {}, expected 1..2)",
                args.len()
            ),
        )),
    }
}

/// A Hash, or what `to_hash` makes of the value; `None` when it is neither.
pub fn hash_like(v: Value) -> Result<Option<RHash>, Error> {
    if let Some(h) = RHash::from_value(v) {
        return Ok(Some(h));
    }
    if v.respond_to("to_hash", false)? {
        return Ok(Some(v.funcall("to_hash", ())?));
    }
    Ok(None)
}

/// An optional trailing options Hash (`m(options = {})`): an empty Hash when none or nil.
pub fn optional_hash(ruby: &Ruby, args: &[Value]) -> Result<RHash, Error> {
    match args {
        [] => Ok(ruby.hash_new()),
        [o] if o.is_nil() => Ok(ruby.hash_new()),
        [o] => RHash::try_convert(*o),
        _ => Err(errors::argument(
            ruby,
            format!(
                "wrong number of arguments (given {}, expected 0..1)",
                args.len()
            ),
        )),
    }
}

/// The values of keyword options by name, in the order of `accepted` (`None`: not given).
/// Keys may be Symbols or Strings. Any other key is refused, all of them named at once with
/// the accepted ones, so a misspelt option is never silently ignored; `what` names the call.
pub fn options_by_name(
    ruby: &Ruby,
    opts: RHash,
    what: &str,
    accepted: &[&str],
) -> Result<Vec<Option<Value>>, Error> {
    let mut values = vec![None; accepted.len()];
    let mut unknown: Vec<String> = Vec::new();
    opts.foreach(|k: Value, v: Value| {
        let name = if let Some(s) = Symbol::from_value(k) {
            s.name().ok().map(|n| n.into_owned())
        } else if let Some(s) = RString::from_value(k) {
            s.to_string().ok()
        } else {
            None
        };
        match name.and_then(|n| accepted.iter().position(|a| *a == n)) {
            Some(i) => values[i] = Some(v),
            None => unknown.push(k.inspect()),
        }
        Ok(ForEach::Continue)
    })?;
    if unknown.is_empty() {
        return Ok(values);
    }
    let accepted: Vec<String> = accepted.iter().map(|a| format!(":{a}")).collect();
    Err(errors::argument(
        ruby,
        format!(
            "unknown {what} option{} {} (accepted: {})",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            accepted.join(", ")
        ),
    ))
}

/// An option that counts something: an Integer within `min..=max`, nothing else. magnus'
/// integer conversions would take a Float and truncate it (`page_size: 1.5` became 1).
pub fn integer_in(ruby: &Ruby, name: &str, v: Value, min: i64, max: i64) -> Result<i64, Error> {
    let refuse = || {
        let range = if max == i64::MAX {
            format!("of at least {min}")
        } else {
            format!("from {min} to {max}")
        };
        errors::argument(
            ruby,
            format!("{name} must be an Integer {range}, got {}", v.inspect()),
        )
    };
    let n = Integer::from_value(v)
        .ok_or_else(refuse)?
        .to_i64()
        .map_err(|_| refuse())?;
    if n < min || n > max {
        return Err(refuse());
    }
    Ok(n)
}

/// The one rule for a task list or an id (`name`), in every call that takes one: save,
/// complete, find, delete, all, rows, delete_list, store_row and the bulk calls, on every
/// store. task_rb coerced these with Virtus' String coercion, so what it could coerce is taken
/// as its `to_s` (a Symbol, Integer or Float); a String must be valid UTF-8 (another encoding
/// is converted to it) and non-empty; anything else is an ArgumentError naming the argument
/// and the class given (a `to_s` of an Array or object would name some other task).
/// `context` is appended to a refusal.
pub fn key_text(
    ruby: &Ruby,
    name: &str,
    v: Value,
    context: &dyn Fn() -> String,
) -> Result<String, Error> {
    let refuse = |got: String| {
        errors::argument(
            ruby,
            format!(
                "task {name} must be a non-empty String, Symbol, Integer or Float; got {got}{}",
                context()
            ),
        )
    };
    let s: RString = if let Some(s) = RString::from_value(v) {
        s
    } else if Symbol::from_value(v).is_some()
        || Integer::from_value(v).is_some()
        || Float::from_value(v).is_some()
    {
        v.funcall("to_s", ())?
    } else if v.is_nil() {
        return Err(refuse("nil".to_string()));
    } else {
        return Err(refuse(v.class().inspect()));
    };
    let invalid = || {
        errors::argument(
            ruby,
            format!(
                "task {name} must be valid UTF-8, got {}{}",
                codec::short_inspect(s.as_value()),
                context()
            ),
        )
    };
    let enc = s.enc_get();
    let utf8 = if enc == ruby.utf8_encindex()
        || enc == ruby.usascii_encindex()
        || enc == ruby.ascii8bit_encindex()
    {
        s
    } else {
        // As JSON.generate treats data strings: other encodings are converted.
        s.funcall::<_, _, RString>("encode", ("UTF-8",))
            .map_err(|_| invalid())?
    };
    // SAFETY: the bytes are copied before any Ruby code can run.
    let text = match std::str::from_utf8(unsafe { utf8.as_slice() }) {
        Ok(t) => t.to_owned(),
        Err(_) => return Err(invalid()),
    };
    if text.is_empty() {
        return Err(refuse("\"\"".to_string()));
    }
    // Lengths are checked with the whole key, by the store (`TaskKey::new`, `validate`).
    Ok(text)
}

fn text_arg(ruby: &Ruby, name: &str, v: Value) -> Result<String, Error> {
    key_text(ruby, name, v, &String::new)
}

/// (list, id) arguments to a key, with the errors the store would give.
pub fn key(ruby: &Ruby, task_list: Value, id: Value) -> Result<TaskKey, Error> {
    TaskKey::new(
        text_arg(ruby, "task_list", task_list)?,
        text_arg(ruby, "id", id)?,
    )
    .map_err(|e| errors::from_core(ruby, e))
}

/// A task list argument: a non-empty String.
pub fn list(ruby: &Ruby, task_list: Value) -> Result<String, Error> {
    let list = text_arg(ruby, "task_list", task_list)?;
    task_core::record::check_list(&list).map_err(|e| errors::from_core(ruby, e))?;
    Ok(list)
}

/// A true-or-false option (`name`); anything else is refused, naming it.
pub fn boolean(ruby: &Ruby, name: &str, v: Value) -> Result<bool, Error> {
    if v.as_raw() == ruby.qtrue().as_raw() {
        Ok(true)
    } else if v.as_raw() == ruby.qfalse().as_raw() {
        Ok(false)
    } else {
        Err(errors::argument(
            ruby,
            format!("{name} must be true or false, got {}", v.inspect()),
        ))
    }
}
