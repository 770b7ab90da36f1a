//! The task store, free of Ruby: the task record, the data codec checks, the `MemoryStore`
//! and the `CassandraStore`. The Ruby extension (`task_native`) wraps these.

pub mod cassandra;
pub mod error;
pub mod json;
pub mod memory;
pub mod record;

pub use cassandra::{
    consistency_name, parse_consistency, CassandraConfig, CassandraStore, Connector, Consistency,
    ScanCursor,
};
pub use error::{Error, Result};
pub use memory::MemoryStore;
pub use record::{validate_identifier, TaskKey, TaskRecord};

/// One page of a scan over a task list, and where the next page starts (`None`: no more).
#[derive(Debug)]
pub struct Page<C> {
    pub records: Vec<TaskRecord>,
    pub next: Option<C>,
}
