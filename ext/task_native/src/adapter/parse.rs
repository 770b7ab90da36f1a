//! Reading the adapter methods' arguments: options shared by stores (`ttl:`, `on_bad_row:`),
//! a claim's terms, bounded integers and a replication map.

use magnus::r_hash::ForEach;
use magnus::value::ReprValue;
use magnus::{Error, RHash, RString, Ruby, Symbol, Value};
use task_core::{ClaimTerms, Replication};

use crate::{args, errors, options};

/// An Integer option from `min` up to what a CQL int holds.
pub(super) fn u32_in(ruby: &Ruby, name: &str, v: Value, min: i64) -> Result<u32, Error> {
    let n = args::integer_in(ruby, name, v, min, i64::from(i32::MAX))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `replication: { "dc1" => 2, dc2: 1 }`: replicas per datacenter, in the order given.
pub(super) fn replication_map(ruby: &Ruby, v: Value) -> Result<Replication, Error> {
    let Some(h) = RHash::from_value(v) else {
        return Err(errors::argument(
            ruby,
            format!(
                "replication must be a Hash of datacenter name => replicas, got {}",
                v.inspect()
            ),
        ));
    };
    let mut dcs = Vec::new();
    h.foreach(|dc: Value, n: Value| {
        let name = if let Some(s) = Symbol::from_value(dc) {
            s.name()?.into_owned()
        } else if let Some(s) = RString::from_value(dc) {
            s.to_string()?
        } else {
            return Err(errors::argument(
                ruby,
                format!(
                    "replication: a datacenter name must be a String or Symbol, got {}",
                    dc.inspect()
                ),
            ));
        };
        let what = format!("replication[{name:?}]");
        dcs.push((name, u32_in(ruby, &what, n, 1)?));
        Ok(ForEach::Continue)
    })?;
    Ok(Replication::ByDatacenter(dcs))
}

/// A `ttl:` keyword (seconds, or nil for the store's default) from an options hash.
pub fn ttl_option(
    ruby: &Ruby,
    opts: RHash,
    what: &str,
) -> Result<Option<std::time::Duration>, Error> {
    match args::options_by_name(ruby, opts, what, &["ttl"])?[0] {
        Some(v) if !v.is_nil() => options::seconds(ruby, "ttl", v).map(Some),
        _ => Ok(None),
    }
}

/// A claim's owner and lease from Ruby arguments: seconds > 0, a non-empty owner String.
pub(super) fn claim_terms(ruby: &Ruby, seconds: Value, owner: Value) -> Result<ClaimTerms, Error> {
    let lease = options::seconds(ruby, "for", seconds)?;
    let owner = match RString::from_value(owner) {
        Some(s) => s.to_string()?,
        None => {
            return Err(errors::argument(
                ruby,
                format!("owner must be a String, got {}", owner.inspect()),
            ))
        }
    };
    if owner.is_empty() {
        return Err(errors::argument(ruby, "owner must not be empty"));
    }
    Ok(ClaimTerms { owner, lease })
}

/// An `on_bad_row:` value: nil or :raise (raise, the default), :skip, or a callable.
pub(super) fn bad_row_handler(ruby: &Ruby, v: Value) -> Result<Option<Value>, Error> {
    if v.is_nil() {
        return Ok(None);
    }
    if let Some(s) = Symbol::from_value(v) {
        match s.name()?.as_ref() {
            "raise" => return Ok(None),
            "skip" => return Ok(Some(v)),
            _ => {}
        }
    } else if v.respond_to("call", false)? {
        return Ok(Some(v));
    }
    Err(errors::argument(
        ruby,
        format!(
            "on_bad_row must be :raise, :skip or respond to #call(row, error), got {}",
            v.inspect()
        ),
    ))
}
