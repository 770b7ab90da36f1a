//! The task store, free of Ruby: the task record, the JSON reader, the one store API
//! (`store`: the `Backend` trait every store implements, and `Store` over it) and the stores,
//! one module each (`memory`, `cassandra`, `sqlite`). The Ruby extension wraps these.

#![forbid(unsafe_code)]

pub mod cassandra;
pub mod claims;
pub mod error;
pub mod expiry;
pub mod json;
pub mod log;
pub mod memory;
pub mod page;
pub mod record;
pub mod schema;
pub mod sqlite;
pub mod store;

pub use cassandra::{
    consistency_name, parse_consistency, CassandraConfig, CassandraStore, Connector, Consistency,
    ScanCursor, ServerReport, TableReport,
};
pub use claims::{ClaimInfo, ClaimOutcome, ClaimTerms};
pub use error::{Error, Result};
pub use memory::MemoryStore;
pub use page::Page;
pub use record::{validate_identifier, TaskKey, TaskRecord};
pub use schema::{Replication, Schema, DEFAULT_GC_GRACE_SECONDS};
pub use sqlite::{
    CallInterrupt, SqliteConfig, SqliteCursor, SqliteReport, SqliteStore, Synchronous,
};
pub use store::{Backend, BoxFuture, Cursor, Mode, Store, StoreSpec};
