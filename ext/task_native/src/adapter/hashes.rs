//! What the adapter hands Ruby that is not a task: stored rows and claim states, as Hashes.

use magnus::{Error, RHash, Ruby};
use task_core::TaskRecord;

pub(super) fn raw_row(ruby: &Ruby, r: &TaskRecord) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset(ruby.sym_new("task_list"), r.task_list.as_str())?;
    h.aset(ruby.sym_new("id"), r.id.as_str())?;
    h.aset(ruby.sym_new("type"), r.type_name.as_str())?;
    h.aset(ruby.sym_new("data"), r.data.as_deref())?;
    Ok(h)
}

/// A claim state as a Hash: `{id:, owner:, attempts:, last_error:, expires_in:}`.
pub(super) fn claim_hash(ruby: &Ruby, c: task_core::ClaimInfo) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset(ruby.sym_new("id"), c.id)?;
    h.aset(ruby.sym_new("owner"), c.owner)?;
    h.aset(ruby.sym_new("attempts"), c.attempts)?;
    h.aset(ruby.sym_new("last_error"), c.last_error)?;
    h.aset(ruby.sym_new("expires_in"), c.expires_in)?;
    Ok(h)
}
