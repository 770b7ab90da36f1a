use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the store. Each variant maps to one Ruby exception class
/// under `Task::Error` (or to `ArgumentError`); every message names what was involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The caller passed something unusable (empty task list, bad identifier, ...).
    InvalidArgument(String),
    /// Task data that cannot be stored or a stored row that cannot be read back.
    BadData(String),
    /// No contact host could be reached.
    NoHostAvailable(String),
    /// The request ran out of time; for a write, whether it was applied is unknown.
    Timeout(String),
    /// The server answered with an error (missing keyspace or table, bad request, ...).
    QueryRejected(String),
    /// The server could not serve the request now (not enough replicas, overloaded).
    Unavailable(String),
    /// The call was interrupted (Ctrl-C, Thread#kill, Timeout.timeout) before it finished.
    Interrupted(String),
}

impl Error {
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::BadData(m)
            | Error::NoHostAvailable(m)
            | Error::Timeout(m)
            | Error::QueryRejected(m)
            | Error::Unavailable(m)
            | Error::Interrupted(m) => m,
        }
    }

    /// An error of the same kind with another message.
    pub fn with_message(&self, message: String) -> Error {
        match self {
            Error::InvalidArgument(_) => Error::InvalidArgument(message),
            Error::BadData(_) => Error::BadData(message),
            Error::NoHostAvailable(_) => Error::NoHostAvailable(message),
            Error::Timeout(_) => Error::Timeout(message),
            Error::QueryRejected(_) => Error::QueryRejected(message),
            Error::Unavailable(_) => Error::Unavailable(message),
            Error::Interrupted(_) => Error::Interrupted(message),
        }
    }

    /// Errors after which the same idempotent request may succeed if tried again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::NoHostAvailable(_) | Error::Timeout(_) | Error::Unavailable(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
