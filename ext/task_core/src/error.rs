//! The store's error type.
//!
//! Each error keeps, where there is one, the error that caused it (the driver's), so a caller
//! can see what the driver said beyond our message and `std::error::Error::source` walks to it.
//!
//! How the cause is kept: `Error::Timeout(msg)`, `Error::BadData(msg)`, ... are built and
//! matched all over the code base as one-field tuple variants, so they stay exactly as they
//! are. An error with a cause is the extra variant [`Error::WithSource`], which wraps one of
//! them; [`Error::caused_by`] builds it. `message()`, `is_transient()`, `with_message()`,
//! `Display` and `==` (kind and message; the cause is not compared) look through the wrapper.
//! Matching a variant directly does not: code that may see an error from the driver matches on
//! [`Error::kind`], which is the wrapped error itself (`match e.kind() { Error::Timeout(_) => ..`).

use std::fmt;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, Error>;

/// The error that caused one of ours. An `Arc` so that `Error` stays `Clone`: one failed
/// request can be reported to several waiters.
pub type Source = Arc<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the store. Each variant maps to one Ruby exception class
/// under `Task::Error` (or to `ArgumentError`); every message names what was involved.
#[derive(Debug, Clone)]
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
    /// A read stepped over more deleted rows (tombstones) than the server allows. Trying
    /// again cannot help: the tombstones must be purged first.
    TooManyTombstones(String),
    /// One of the errors above and the error that caused it. Built by [`Error::caused_by`],
    /// which never nests one wrapper in another.
    WithSource(Box<Error>, Source),
}

impl Error {
    /// This error with `source` as its cause (replacing any cause it had).
    pub fn caused_by(self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        let kind = match self {
            Error::WithSource(inner, _) => *inner,
            other => other,
        };
        Error::WithSource(Box::new(kind), Arc::new(source))
    }

    /// The error without its cause: always one of the message-carrying variants. Match on this
    /// to tell kinds apart.
    pub fn kind(&self) -> &Error {
        let mut e = self;
        while let Error::WithSource(inner, _) = e {
            e = inner;
        }
        e
    }

    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::BadData(m)
            | Error::NoHostAvailable(m)
            | Error::Timeout(m)
            | Error::QueryRejected(m)
            | Error::Unavailable(m)
            | Error::TooManyTombstones(m) => m,
            Error::WithSource(inner, _) => inner.message(),
        }
    }

    /// An error of the same kind, and with the same cause, with another message.
    pub fn with_message(&self, message: String) -> Error {
        match self {
            Error::InvalidArgument(_) => Error::InvalidArgument(message),
            Error::BadData(_) => Error::BadData(message),
            Error::NoHostAvailable(_) => Error::NoHostAvailable(message),
            Error::Timeout(_) => Error::Timeout(message),
            Error::QueryRejected(_) => Error::QueryRejected(message),
            Error::Unavailable(_) => Error::Unavailable(message),
            Error::TooManyTombstones(_) => Error::TooManyTombstones(message),
            Error::WithSource(inner, source) => {
                Error::WithSource(Box::new(inner.with_message(message)), Arc::clone(source))
            }
        }
    }

    /// Errors after which the same idempotent request may succeed if tried again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            Error::NoHostAvailable(_) | Error::Timeout(_) | Error::Unavailable(_)
        )
    }

    /// The cause's text, followed by the text of each of its own causes that the ones before
    /// did not already include (the driver's errors often repeat their cause in their own
    /// text); `None` when the error has no cause.
    pub fn source_text(&self) -> Option<String> {
        let mut next = std::error::Error::source(self);
        let mut text = String::new();
        while let Some(e) = next {
            let part = e.to_string();
            if !text.contains(&part) {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&part);
            }
            next = e.source();
        }
        (!text.is_empty()).then_some(text)
    }
}

impl PartialEq for Error {
    /// Same kind and message; causes are not compared (driver errors have no equality).
    fn eq(&self, other: &Error) -> bool {
        std::mem::discriminant(self.kind()) == std::mem::discriminant(other.kind())
            && self.message() == other.message()
    }
}

impl Eq for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::WithSource(_, source) => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A driver-like error with an optional cause of its own.
    #[derive(Debug)]
    struct Driver(&'static str, Option<Box<Driver>>);

    impl fmt::Display for Driver {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Driver {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|d| d as _)
        }
    }

    #[test]
    fn an_error_made_here_has_no_source() {
        let e = Error::BadData("NaN".into());
        assert!(e.source().is_none());
        assert_eq!(e.source_text(), None);
        assert!(std::ptr::eq(e.kind(), &e));
    }

    #[test]
    fn a_caused_error_keeps_kind_message_and_source() {
        let e = Error::Timeout("saving x timed out".into()).caused_by(Driver("driver: slow", None));
        assert!(matches!(e.kind(), Error::Timeout(m) if m == "saving x timed out"));
        assert_eq!(e.message(), "saving x timed out");
        assert_eq!(e.to_string(), "saving x timed out");
        assert!(e.is_transient());
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("driver: slow")
        );
        // Equal by kind and message, with or without a cause.
        assert_eq!(e, Error::Timeout("saving x timed out".into()));
        assert_ne!(e, Error::Unavailable("saving x timed out".into()));
        assert!(!Error::QueryRejected("q".into())
            .caused_by(Driver("d", None))
            .is_transient());
    }

    #[test]
    fn source_text_walks_the_chain_without_repeating_it() {
        let chain = Driver(
            "request failed: connection reset",
            Some(Box::new(Driver(
                "connection reset",
                Some(Box::new(Driver("os error 104", None))),
            ))),
        );
        let e = Error::NoHostAvailable("no host".into()).caused_by(chain);
        assert_eq!(
            e.source_text().as_deref(),
            Some("request failed: connection reset: os error 104")
        );
        // The chain also walks through std's API: ours -> driver -> its cause -> its cause.
        let mut depth = 0;
        let mut next = e.source();
        while let Some(s) = next {
            depth += 1;
            next = s.source();
        }
        assert_eq!(depth, 3);
    }

    #[test]
    fn with_message_and_caused_by_keep_one_wrapper() {
        let e = Error::Unavailable("a".into()).caused_by(Driver("first", None));
        let renamed = e.with_message("b".into());
        assert!(matches!(renamed.kind(), Error::Unavailable(m) if m == "b"));
        assert_eq!(renamed.source_text().as_deref(), Some("first"));
        let again = renamed.caused_by(Driver("second", None));
        assert!(
            matches!(&again, Error::WithSource(inner, _) if !matches!(**inner, Error::WithSource(..)))
        );
        assert_eq!(again.source_text().as_deref(), Some("second"));
        // Clones share the cause.
        assert_eq!(again.clone().source_text(), again.source_text());
    }
}
