//! The task store, free of Ruby: the task record, the JSON reader, the stores (`MemoryStore`,
//! `CassandraStore`) and the one API over them (`Store`). The Ruby extension wraps these.

pub mod cassandra;
pub mod claims;
pub mod error;
pub mod expiry;
pub mod json;
pub mod log;
pub mod memory;
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
pub use record::{validate_identifier, TaskKey, TaskRecord};
pub use schema::{Replication, Schema, DEFAULT_GC_GRACE_SECONDS};
pub use sqlite::{
    CallInterrupt, SqliteConfig, SqliteCursor, SqliteReport, SqliteStore, Synchronous,
};
pub use store::{Cursor, Store, StoreSpec};

/// One page of a scan over a task list, and where the next page starts (`None`: no more).
#[derive(Debug)]
pub struct Page<C> {
    pub records: Vec<TaskRecord>,
    pub next: Option<C>,
}
