//! The Cassandra (or Scylla) store on the `scylla` driver: prepared statements, manual paging,
//! bounded retries of idempotent statements, and one session per connection config.
//!
//! One file per job: `config` (settings), `connection` (sessions, TLS), `statements`
//! (prepared once per store), `retry` (deadlines and the retry loop), `errors` (driver errors
//! as the gem's), `rows` (one task), `scan` (pages, counts, list names), `bulk`, `claims`,
//! `describe` (schema, tuning, what the node reports) and `backend` (the store API). This
//! file holds the store itself; the others add to it.

mod backend;
mod bulk;
mod claim_many;
mod claims;
mod config;
mod connection;
mod describe;
mod errors;
mod retry;
mod rows;
mod scan;
mod statements;

use std::sync::Mutex;
use std::time::Instant;

use scylla::response::PagingState;
use tokio::sync::OnceCell;

pub use bulk::{BATCH_BYTES, BATCH_ROWS};
pub use config::{
    consistency_name, parse_consistency, CassandraConfig, ConnectionKey, Consistency, Level, Serial,
};
pub use connection::Connector;
use connection::SessionSlot;
pub use describe::{ServerReport, TableReport};
use errors::Op;
pub use retry::Deadline;
use statements::Statements;

use crate::log::Level as LogLevel;

/// Where the next page of a Cassandra scan starts.
pub type ScanCursor = PagingState;

pub struct CassandraStore {
    config: CassandraConfig,
    hosts: String,
    table: String,
    session: SessionSlot,
    statements: OnceCell<Statements>,
    /// Prepared on the first claim call or deletion (the claims table may not exist where
    /// claims are not used: deletions then leave claims alone).
    claims: claims::ClaimStatements,
    /// True once this store has been asked for a claim: its deletions then delete claims by a
    /// transaction without reading first (see `claims.rs`).
    claimed: std::sync::atomic::AtomicBool,
    /// When the claims table was last found missing (deletions then skip claims for a while).
    claims_absent: Mutex<Option<Instant>>,
}

type Row = (String, String, Option<String>, String, Option<i64>);

impl CassandraStore {
    fn new(config: CassandraConfig, session: SessionSlot) -> Self {
        CassandraStore {
            hosts: config.host_list(),
            table: config.qualified_table(),
            config,
            session,
            statements: OnceCell::new(),
            claims: claims::ClaimStatements::default(),
            claimed: std::sync::atomic::AtomicBool::new(false),
            claims_absent: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &CassandraConfig {
        &self.config
    }

    /// What log lines about this store name as their source: its table and hosts.
    pub fn log_source(&self) -> String {
        self.config.log_source()
    }

    fn log(&self, level: LogLevel, message: impl FnOnce() -> String) {
        if crate::log::enabled() {
            crate::log::log(level, &self.log_source(), message);
        }
    }

    fn op<'a>(&'a self, what: &'a str, is_write: bool) -> Op<'a> {
        Op {
            what,
            hosts: &self.hosts,
            table: &self.table,
            is_write,
        }
    }
}
