//! Turns the driver's errors into ours, each with a message that names what was involved and
//! with the driver's error kept as its source (`Error::caused_by`).

use scylla::errors::{DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError};

use crate::error::Error;

/// What a failed request was doing, for the message.
pub(crate) struct Op<'a> {
    pub what: &'a str,
    pub hosts: &'a str,
    pub table: &'a str,
    pub is_write: bool,
}

/// Said of a write whose request failed after it may have reached a replica. A message ends
/// with it; `unknown_outcome` adds it only for writes.
const UNKNOWN_OUTCOME: &str = "; the write may or may not have been applied";

/// `UNKNOWN_OUTCOME` for a write, nothing for a read.
pub(crate) fn unknown_outcome(is_write: bool) -> &'static str {
    if is_write {
        UNKNOWN_OUTCOME
    } else {
        ""
    }
}

pub(crate) fn connect_error(e: &NewSessionError, hosts: &str) -> Error {
    let ours = match e {
        NewSessionError::IllegalConfig(m) => {
            Error::InvalidArgument(format!("Cassandra session options rejected: {m}"))
        }
        _ => {
            let text = e.to_string();
            if text.contains("uthenticat") || text.contains("credentials") {
                Error::QueryRejected(format!("Cassandra at {hosts} refused the login (check the username: and password: options): {text}"))
            } else {
                Error::NoHostAvailable(format!("no Cassandra host reachable at {hosts}: {text}"))
            }
        }
    };
    ours.caused_by(e.clone())
}

pub(crate) fn connect_timeout(hosts: &str, secs: f64) -> Error {
    Error::NoHostAvailable(format!(
        "no Cassandra host reachable at {hosts}: connecting took longer than {secs}s"
    ))
}

fn missing_schema_hint(table: &str, msg: &str) -> Option<String> {
    let lower = msg.to_ascii_lowercase();
    // Cassandra 3/4 say "unconfigured table x"; 5 says "table x does not exist" or
    // "keyspace x does not exist".
    (lower.contains("unconfigured table")
        || ((lower.contains("keyspace") || lower.contains("table"))
            && lower.contains("does not exist")))
    .then(|| {
        format!(
            "table {table} does not exist ({msg}); create it with \
             Task::DataInterface::CassandraAdapter#create_schema or the CQL in the README"
        )
    })
}

fn db_error(op: &Op, db: &DbError, msg: &str) -> Error {
    let where_ = format!("{} on {} at {}", op.what, op.table, op.hosts);
    match db {
        DbError::WriteTimeout { .. } => Error::Timeout(format!(
            "{where_}: Cassandra timed out waiting for replicas ({msg}){UNKNOWN_OUTCOME}"
        )),
        DbError::ReadTimeout { .. } => {
            Error::Timeout(format!("{where_}: Cassandra timed out reading ({msg})"))
        }
        // Cassandra names the reason in the message (protocol v4 has no reason codes).
        DbError::ReadFailure { .. } if msg.contains("TOO_MANY_TOMBSTONES") => {
            Error::TooManyTombstones(format!(
                "{where_}: the read stepped over more deleted rows (tombstones of completed \
                 tasks, not yet purged) than the node allows ({msg}). Retrying cannot help. \
                 Remedies: let gc_grace_seconds pass and compact (nodetool compact), set the \
                 table's gc_grace_seconds and compaction for churn \
                 (CassandraAdapter#tune_table, see the README), or move new tasks to a new list"
            ))
        }
        DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::ServerError
        | DbError::TruncateError
        | DbError::ReadFailure { .. }
        | DbError::WriteFailure { .. } => {
            Error::Unavailable(format!("{where_}: Cassandra could not serve it now: {msg}"))
        }
        _ => match missing_schema_hint(op.table, msg) {
            Some(hint) => Error::QueryRejected(format!("{where_}: {hint}")),
            None => Error::QueryRejected(format!("{where_}: Cassandra rejected it: {msg}")),
        },
    }
}

fn attempt_error(op: &Op, e: &RequestAttemptError) -> Error {
    match e {
        RequestAttemptError::DbError(db, msg) => db_error(op, db, msg),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => Error::NoHostAvailable(format!(
            "{} on {}: connection to {} lost: {e}{}",
            op.what,
            op.table,
            op.hosts,
            unknown_outcome(op.is_write)
        )),
        RequestAttemptError::SerializationError(_) => Error::BadData(format!(
            "{} on {}: a value could not be encoded: {e}",
            op.what, op.table
        )),
        _ => Error::QueryRejected(format!("{} on {} at {}: {e}", op.what, op.table, op.hosts)),
    }
}

pub(crate) fn prepare_error(op: &Op, e: &PrepareError) -> Error {
    prepare_kind(op, e).caused_by(e.clone())
}

/// Our error for a failed prepare, without its source (the caller attaches the outermost
/// driver error, whose text already includes this one's).
fn prepare_kind(op: &Op, e: &PrepareError) -> Error {
    match e {
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_error(op, first_attempt),
        PrepareError::ConnectionPoolError(_) => Error::NoHostAvailable(format!(
            "{} on {}: no Cassandra host reachable at {}: {e}",
            op.what, op.table, op.hosts
        )),
        _ => Error::QueryRejected(format!("{} on {}: {e}", op.what, op.table)),
    }
}

pub(crate) fn execution_error(op: &Op, e: &ExecutionError) -> Error {
    let ours = match e {
        ExecutionError::RequestTimeout(d) => Error::Timeout(format!(
            "{} on {} at {} timed out after {}ms{}",
            op.what,
            op.table,
            op.hosts,
            d.as_millis(),
            unknown_outcome(op.is_write)
        )),
        ExecutionError::LastAttemptError(a) => attempt_error(op, a),
        ExecutionError::PrepareError(p) => prepare_kind(op, p),
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            Error::NoHostAvailable(format!(
                "{} on {}: no Cassandra host reachable at {}: {e}",
                op.what, op.table, op.hosts
            ))
        }
        ExecutionError::BadQuery(_) => Error::BadData(format!("{} on {}: {e}", op.what, op.table)),
        _ => Error::QueryRejected(format!("{} on {} at {}: {e}", op.what, op.table, op.hosts)),
    };
    ours.caused_by(e.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::time::Duration;

    fn op(is_write: bool) -> Op<'static> {
        Op {
            what: "saving task \"1\"",
            hosts: "127.0.0.1:9042",
            table: "ks.tasks",
            is_write,
        }
    }

    #[test]
    fn a_rejected_request_keeps_the_servers_message_in_its_source() {
        let driver = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Invalid,
            "unconfigured table tasks".into(),
        ));
        let e = execution_error(&op(false), &driver);
        assert!(
            matches!(e.kind(), Error::QueryRejected(m) if m.contains("create_schema")),
            "{e}"
        );
        assert_eq!(e.source().map(|s| s.to_string()), Some(driver.to_string()));
        let text = e.source_text().unwrap_or_default();
        assert!(text.contains("unconfigured table tasks"), "{text}");
    }

    #[test]
    fn a_timed_out_write_keeps_its_source_and_says_the_outcome_is_unknown() {
        let driver = ExecutionError::RequestTimeout(Duration::from_millis(1500));
        let write = execution_error(&op(true), &driver);
        assert!(
            matches!(write.kind(), Error::Timeout(m) if m.ends_with(UNKNOWN_OUTCOME)),
            "{write}"
        );
        assert!(write.is_transient());
        assert!(write.source_text().unwrap_or_default().contains("1500ms"));
        let read = execution_error(&op(false), &driver);
        assert!(!read.message().contains(UNKNOWN_OUTCOME), "{read}");
    }

    #[test]
    fn a_failed_connect_keeps_the_drivers_error_and_our_own_timeout_has_none() {
        let e = connect_error(&NewSessionError::EmptyKnownNodesList, "127.0.0.1:1");
        assert!(matches!(e.kind(), Error::NoHostAvailable(_)), "{e}");
        assert_eq!(e.source_text().as_deref(), Some("Empty known nodes list"));
        assert!(connect_timeout("127.0.0.1:1", 2.0).source().is_none());
    }
}
