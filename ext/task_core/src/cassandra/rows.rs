//! One task at a time: save, find, delete, and a list's delete.

use std::time::Duration;

use super::errors::execution_error;
use super::retry::Deadline;
use crate::error::Result;
use crate::record::check_list;
use crate::record::TaskKey;
use crate::record::TaskRecord;

use super::CassandraStore;

impl CassandraStore {
    /// Upserts one task (all four columns).
    pub async fn store(&self, record: &TaskRecord) -> Result<()> {
        record.validate()?;
        self.put(record).await
    }

    /// Writes the row as given, checking only the key columns (see `MemoryStore::store_raw`).
    pub async fn store_raw(&self, record: &TaskRecord) -> Result<()> {
        record.validate_columns()?;
        self.put(record).await
    }

    /// Writes a row already checked (see `Store`).
    pub(super) async fn put(&self, record: &TaskRecord) -> Result<()> {
        self.put_ttl(record, None).await
    }

    /// Writes a row already checked that expires after `ttl` (or the config's default).
    pub async fn put_ttl(&self, record: &TaskRecord, ttl: Option<Duration>) -> Result<()> {
        self.put_until(record, ttl, &self.deadline()).await
    }

    pub(super) async fn put_until(
        &self,
        record: &TaskRecord,
        ttl: Option<Duration>,
        deadline: &Deadline,
    ) -> Result<()> {
        let what = || format!("saving task {:?} of list {:?}", record.id, record.task_list);
        let values = (
            &record.task_list,
            &record.id,
            &record.data,
            &record.type_name,
        );
        // TTLs are whole seconds, at least one.
        let ttl = ttl
            .or(self.config.default_ttl)
            .map(|t| t.as_secs_f64().ceil().clamp(1.0, i32::MAX as f64) as i32);
        self.retrying(&what, true, deadline, || async {
            let (session, st) = self.statements().await?;
            let sent = match ttl {
                None => session.execute_unpaged(&st.insert, values).await,
                Some(t) => {
                    let (l, i, d, ty) = values;
                    session
                        .execute_unpaged(&st.insert_ttl, (l, i, d, ty, t))
                        .await
                }
            };
            sent.map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await
    }

    /// The first row under (list, id), or `None`.
    pub async fn find(&self, key: &TaskKey) -> Result<Option<TaskRecord>> {
        let what = || format!("finding task {:?} of list {:?}", key.id, key.task_list);
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.statements().await?;
            let res = session
                .execute_unpaged(&st.find, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let mut rows = self.rows(res, &key.task_list)?;
            Ok(rows.pop())
        })
        .await
    }

    /// Deletes every type under (list, id); deleting what is not there is fine.
    pub async fn delete(&self, key: &TaskKey) -> Result<()> {
        self.delete_until(key, &self.deadline()).await
    }

    pub(super) async fn delete_until(&self, key: &TaskKey, deadline: &Deadline) -> Result<()> {
        self.delete_row_until(key, deadline).await?;
        // The task first, then its claim: a claim taken in between finds the task gone.
        self.delete_claim(key, deadline).await
    }

    /// Deletes the task's row alone (its claim is the caller's to delete).
    pub(super) async fn delete_row_until(&self, key: &TaskKey, deadline: &Deadline) -> Result<()> {
        let what = || format!("completing task {:?} of list {:?}", key.id, key.task_list);
        self.retrying(&what, true, deadline, || async {
            let (session, st) = self.statements().await?;
            session
                .execute_unpaged(&st.delete, (&key.task_list, &key.id))
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await
    }

    /// Deletes a whole task list (one partition).
    pub async fn delete_list(&self, task_list: &str) -> Result<()> {
        check_list(task_list)?;
        let what = || format!("deleting task list {task_list:?}");
        self.retrying(&what, true, &self.deadline(), || async {
            let (session, st) = self.statements().await?;
            session
                .execute_unpaged(&st.delete_list, (task_list,))
                .await
                .map_err(|e| execution_error(&self.op(&what(), true), &e))?;
            Ok(())
        })
        .await?;
        self.delete_claims_of(task_list, &self.deadline()).await
    }
}
