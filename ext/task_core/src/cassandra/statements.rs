//! The prepared statements of a store, prepared once per store on first use.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::errors::prepare_error;
use crate::error::Error;
use crate::error::Result;

use super::CassandraStore;

pub(super) struct Statements {
    pub(super) insert: PreparedStatement,
    pub(super) insert_ttl: PreparedStatement,
    pub(super) find: PreparedStatement,
    pub(super) scan: PreparedStatement,
    pub(super) scan_after: PreparedStatement,
    pub(super) count: PreparedStatement,
    pub(super) lists: PreparedStatement,
    pub(super) delete: PreparedStatement,
    pub(super) delete_list: PreparedStatement,
}

impl CassandraStore {
    pub(super) async fn statements(&self) -> Result<(&Session, &Statements)> {
        let session = self.session().await?;
        let stmts = self
            .statements
            .get_or_try_init(|| async {
                let t = &self.table;
                // The write time comes with each row for `saved_at`; it is not a column of the table.
                let cols = "task_list, id, data, type, WRITETIME(data)";
                let prep = |cql: String, idempotent: bool| async move {
                    let mut p = session
                        .prepare(cql)
                        .await
                        .map_err(|e| prepare_error(&self.op("preparing statements", false), &e))?;
                    p.set_consistency(self.config.consistency.0);
                    p.set_request_timeout(Some(self.config.request_timeout));
                    p.set_is_idempotent(idempotent);
                    p.set_page_size(self.config.page_size);
                    Ok::<_, Error>(p)
                };
                Ok::<_, Error>(Statements {
                    insert: prep(
                        format!("INSERT INTO {t} (task_list, id, data, type) VALUES (?, ?, ?, ?)"),
                        true,
                    )
                    .await?,
                    insert_ttl: prep(
                        format!(
                            "INSERT INTO {t} (task_list, id, data, type) VALUES (?, ?, ?, ?) \
                             USING TTL ?"
                        ),
                        true,
                    )
                    .await?,
                    find: prep(
                        format!("SELECT {cols} FROM {t} WHERE task_list = ? AND id = ? LIMIT 1"),
                        true,
                    )
                    .await?,
                    scan: prep(format!("SELECT {cols} FROM {t} WHERE task_list = ?"), true).await?,
                    scan_after: prep(
                        format!("SELECT {cols} FROM {t} WHERE task_list = ? AND id > ?"),
                        true,
                    )
                    .await?,
                    count: prep(format!("SELECT id FROM {t} WHERE task_list = ?"), true).await?,
                    lists: prep(format!("SELECT DISTINCT task_list FROM {t}"), true).await?,
                    delete: prep(
                        format!("DELETE FROM {t} WHERE task_list = ? AND id = ?"),
                        true,
                    )
                    .await?,
                    delete_list: prep(format!("DELETE FROM {t} WHERE task_list = ?"), true).await?,
                })
            })
            .await?;
        Ok((session.as_ref(), stmts))
    }
}
