//! The schema: creating the keyspace and tables, tuning existing ones for churn, and what the
//! node reports about the deployment (`task doctor`).

use super::claims;
use super::errors::execution_error;
use crate::error::Error;
use crate::error::Result;
use crate::log::Level as LogLevel;
use crate::schema::churn_options;
use crate::schema::Schema;

use super::CassandraStore;

/// See `CassandraStore::describe`.
#[derive(Debug, Clone)]
pub struct ServerReport {
    pub release_version: String,
    pub cql_version: String,
    pub server_time_ms: i64,
    /// The keyspace's replication options; `None` when the keyspace does not exist.
    pub replication: Option<Vec<(String, String)>>,
    /// The task table and the claims table, by name, with their options when they exist.
    pub tables: Vec<(String, Option<TableReport>)>,
}

/// A table's options that matter for lists that churn.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub gc_grace_seconds: i32,
    pub compaction: Vec<(String, String)>,
}

impl CassandraStore {
    /// The ALTER TABLE statements that give existing tables (task_rb's, or this gem's made
    /// before) the options `create_schema` uses for churn, with this grace period.
    pub fn tuning_cql(&self, gc_grace_seconds: u32) -> Vec<String> {
        let options = churn_options(gc_grace_seconds);
        [self.table.clone(), self.config.qualified_claims_table()]
            .iter()
            .map(|t| format!("ALTER TABLE {t} WITH {options}"))
            .collect()
    }

    /// What `task doctor` reports about the deployment, read from the node's system tables:
    /// its release and CQL versions, its clock (milliseconds since the epoch), the keyspace's
    /// replication, and each table's grace period and compaction (`None`: no such table).
    pub async fn describe(&self) -> Result<ServerReport> {
        use std::collections::BTreeMap;
        let session = self.session().await?;
        let rejected = |what: &str, e: &dyn std::fmt::Display| {
            Error::QueryRejected(format!("reading {what} from {}: {e}", self.hosts))
        };
        let run = |cql: &'static str, what: &'static str, values: Vec<String>| async move {
            session
                .query_unpaged(cql, values)
                .await
                .map_err(|e| execution_error(&self.op(what, false), &e))?
                .into_rows_result()
                .map_err(|e| rejected(what, &e))
        };
        let local = run(
            "SELECT release_version, cql_version, toUnixTimestamp(now()) FROM system.local",
            "the node's versions",
            vec![],
        )
        .await?;
        let (release_version, cql_version, server_time_ms) = local
            .single_row::<(String, String, i64)>()
            .map_err(|e| rejected("system.local", &e))?;
        let ks = self.config.keyspace.clone();
        let replication = run(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            "the keyspace's replication",
            vec![ks.clone()],
        )
        .await?
        .maybe_first_row::<(BTreeMap<String, String>,)>()
        .map_err(|e| rejected("system_schema.keyspaces", &e))?
        .map(|(r,)| r.into_iter().collect());
        let mut tables = Vec::new();
        for table in [
            self.config.table.clone(),
            format!("{}_claims", self.config.table),
        ] {
            let found = run(
                "SELECT gc_grace_seconds, compaction FROM system_schema.tables \
                 WHERE keyspace_name = ? AND table_name = ?",
                "the tables' options",
                vec![ks.clone(), table.clone()],
            )
            .await?
            .maybe_first_row::<(i32, BTreeMap<String, String>)>()
            .map_err(|e| rejected("system_schema.tables", &e))?
            .map(|(grace, compaction)| TableReport {
                gc_grace_seconds: grace,
                compaction: compaction.into_iter().collect(),
            });
            tables.push((table, found));
        }
        Ok(ServerReport {
            release_version,
            cql_version,
            server_time_ms,
            replication,
            tables,
        })
    }

    /// Runs `tuning_cql` (the claims table's statement only if that table exists).
    pub async fn tune_tables(&self, gc_grace_seconds: u32) -> Result<Vec<String>> {
        let session = self.session().await?;
        let mut done = Vec::new();
        for (i, cql) in self.tuning_cql(gc_grace_seconds).into_iter().enumerate() {
            match session.query_unpaged(cql.clone(), ()).await {
                Ok(_) => {
                    self.log(LogLevel::Info, || format!("schema: {cql}"));
                    done.push(cql)
                }
                Err(e) => {
                    let err = execution_error(&self.op("tuning the table", true), &e);
                    let missing = matches!(err.kind(), Error::QueryRejected(m) if m.contains("does not exist") || m.contains("unconfigured"));
                    if !(i == 1 && missing) {
                        return Err(err);
                    }
                }
            }
        }
        Ok(done)
    }

    /// Creates the keyspace (with the schema's replication), the table the original gem's
    /// users created by hand and, with `schema.claims`, the claims table, both with the
    /// options for churn; does nothing to ones that exist.
    pub async fn create_schema(&self, schema: &Schema) -> Result<()> {
        schema.replication.validate()?;
        let session = self.session().await?;
        let ks = &self.config.keyspace;
        let ddl = [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
                schema.replication.cql()
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task_list text, id text, data text, type text, \
                 PRIMARY KEY ((task_list), id, type)) WITH {}",
                self.table,
                churn_options(schema.gc_grace_seconds)
            ),
            claims::create_table_cql(&self.config, schema.gc_grace_seconds),
        ];
        for cql in ddl.into_iter().take(if schema.claims { 3 } else { 2 }) {
            session
                .query_unpaged(cql.clone(), ())
                .await
                .map_err(|e| execution_error(&self.op("creating the schema", true), &e))?;
            self.log(LogLevel::Info, || format!("schema: {cql}"));
        }
        Ok(())
    }
}
