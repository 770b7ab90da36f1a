//! Turns the driver's errors into ours, each with a message that names what was involved.

use scylla::errors::{DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError};

use crate::error::Error;

/// What a failed request was doing, for the message.
pub(crate) struct Op<'a> {
    pub what: &'a str,
    pub hosts: &'a str,
    pub table: &'a str,
    pub is_write: bool,
}

pub(crate) fn connect_error(e: &NewSessionError, hosts: &str) -> Error {
    match e {
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
    }
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
            "{where_}: Cassandra timed out waiting for replicas ({msg}); the write may or may not have been applied"
        )),
        DbError::ReadTimeout { .. } => {
            Error::Timeout(format!("{where_}: Cassandra timed out reading ({msg})"))
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
            unknown_outcome(op)
        )),
        RequestAttemptError::SerializationError(_) => Error::BadData(format!(
            "{} on {}: a value could not be encoded: {e}",
            op.what, op.table
        )),
        _ => Error::QueryRejected(format!("{} on {} at {}: {e}", op.what, op.table, op.hosts)),
    }
}

fn unknown_outcome(op: &Op) -> &'static str {
    if op.is_write {
        "; the write may or may not have been applied"
    } else {
        ""
    }
}

pub(crate) fn prepare_error(op: &Op, e: &PrepareError) -> Error {
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
    match e {
        ExecutionError::RequestTimeout(d) => Error::Timeout(format!(
            "{} on {} at {} timed out after {}ms{}",
            op.what,
            op.table,
            op.hosts,
            d.as_millis(),
            unknown_outcome(op)
        )),
        ExecutionError::LastAttemptError(a) => attempt_error(op, a),
        ExecutionError::PrepareError(p) => prepare_error(op, p),
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            Error::NoHostAvailable(format!(
                "{} on {}: no Cassandra host reachable at {}: {e}",
                op.what, op.table, op.hosts
            ))
        }
        ExecutionError::BadQuery(_) => Error::BadData(format!("{} on {}: {e}", op.what, op.table)),
        _ => Error::QueryRejected(format!("{} on {} at {}: {e}", op.what, op.table, op.hosts)),
    }
}
