//! Reading a list a page at a time (`page`, `count`) and the names of the lists.

use std::ops::ControlFlow;

use scylla::response::PagingState;
use scylla::response::PagingStateResponse;

use super::errors::execution_error;
use super::Row;
use super::ScanCursor;
use crate::error::Error;
use crate::error::Result;
use crate::page::Page;
use crate::record::check_list;
use crate::record::TaskRecord;

use super::CassandraStore;

impl CassandraStore {
    /// One page of the list, starting where `cursor` says (`None`: from the start).
    /// `after`: only tasks whose id sorts after it (a cursor then belongs to that same query).
    pub async fn page(
        &self,
        task_list: &str,
        after: Option<&str>,
        cursor: Option<ScanCursor>,
    ) -> Result<Page<ScanCursor>> {
        check_list(task_list)?;
        let cursor = cursor.unwrap_or_else(PagingState::start);
        let what = || format!("reading task list {task_list:?}");
        self.retrying(&what, false, &self.deadline(), || async {
            let (session, st) = self.statements().await?;
            let sent = match after {
                None => {
                    session
                        .execute_single_page(&st.scan, (task_list,), cursor.clone())
                        .await
                }
                Some(id) => {
                    session
                        .execute_single_page(&st.scan_after, (task_list, id), cursor.clone())
                        .await
                }
            };
            let (res, paging) = sent.map_err(|e| execution_error(&self.op(&what(), false), &e))?;
            let records = self.rows(res, task_list)?;
            let next = match paging {
                PagingStateResponse::HasMorePages { .. } => match paging.into_paging_control_flow()
                {
                    ControlFlow::Continue(s) => Some(s),
                    ControlFlow::Break(()) => None,
                },
                PagingStateResponse::NoMorePages => None,
            };
            Ok(Page { records, next })
        })
        .await
    }

    /// How many rows the list holds: its ids read page by page (a partition's COUNT(*)
    /// would have to finish within one request timeout however large the list).
    pub async fn count(&self, task_list: &str) -> Result<u64> {
        check_list(task_list)?;
        let what = || format!("counting task list {task_list:?}");
        let mut total = 0u64;
        let mut paging = PagingState::start();
        loop {
            let (n, next) = self
                .retrying(&what, false, &self.deadline(), || {
                    let paging = paging.clone();
                    async move {
                        let (session, st) = self.statements().await?;
                        let (res, next) = session
                            .execute_single_page(&st.count, (task_list,), paging)
                            .await
                            .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                        let rows = res
                            .into_rows_result()
                            .map_err(|e| Error::BadData(format!("{}: {e}", what())))?;
                        Ok((rows.rows_num() as u64, next))
                    }
                })
                .await?;
            total += n;
            match next.into_paging_control_flow() {
                ControlFlow::Continue(p) => paging = p,
                ControlFlow::Break(()) => return Ok(total),
            }
        }
    }

    /// One page of the table's list names (in token order), and where the next starts.
    pub async fn lists_page(
        &self,
        cursor: Option<ScanCursor>,
    ) -> Result<(Vec<String>, Option<ScanCursor>)> {
        let what = || "listing the task lists".to_string();
        let paging = cursor.unwrap_or_else(PagingState::start);
        self.retrying(&what, false, &self.deadline(), || {
            let paging = paging.clone();
            async move {
                let (session, st) = self.statements().await?;
                let (res, next) = session
                    .execute_single_page(&st.lists, (), paging)
                    .await
                    .map_err(|e| execution_error(&self.op(&what(), false), &e))?;
                let bad = |e: &dyn std::fmt::Display| Error::BadData(format!("{}: {e}", what()));
                let rows = res.into_rows_result().map_err(|e| bad(&e))?;
                let mut names = Vec::with_capacity(rows.rows_num());
                for row in rows.rows::<(String,)>().map_err(|e| bad(&e))? {
                    names.push(row.map_err(|e| bad(&e))?.0);
                }
                let next = match next.into_paging_control_flow() {
                    ControlFlow::Continue(p) => Some(p),
                    ControlFlow::Break(()) => None,
                };
                Ok((names, next))
            }
        })
        .await
    }

    pub(super) fn rows(
        &self,
        res: scylla::response::query_result::QueryResult,
        task_list: &str,
    ) -> Result<Vec<TaskRecord>> {
        let bad = |e: &dyn std::fmt::Display| {
            Error::BadData(format!(
                "reading task list {task_list:?} from {}: unexpected result: {e}",
                self.table
            ))
        };
        let rows = res.into_rows_result().map_err(|e| bad(&e))?;
        let mut out = Vec::with_capacity(rows.rows_num());
        for row in rows.rows::<Row>().map_err(|e| bad(&e))? {
            // A null `data` is kept: `rows` shows it as stored, and a scan of tasks reports
            // that one row as bad without losing the others.
            let (list, id, data, type_name, saved_at) = row.map_err(|e| bad(&e))?;
            out.push(TaskRecord {
                task_list: list,
                id,
                type_name,
                data,
                saved_at,
            });
        }
        Ok(out)
    }
}
