//! Argument shapes several methods share.

use magnus::prelude::*;
use magnus::{Error, RHash, Ruby, Value};

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
