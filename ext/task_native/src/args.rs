//! Argument shapes several methods share.

use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::{Error, Integer, RHash, RString, Ruby, Symbol, Value};

use crate::errors;

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
