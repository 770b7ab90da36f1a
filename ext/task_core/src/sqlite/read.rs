//! Reading tasks: one by key, a list a page at a time, a count, the names of the lists. Each
//! reads live rows only (expired ones are hidden until a write purges them).

use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension, Row};

use super::conn::{Done, Failure};
use super::tasks::of_key;
use super::{micros_now, SqliteCursor, SqliteStore};
use crate::error::{Error, Result};
use crate::record::{check_list, shown, TaskKey, TaskRecord};
use crate::Page;

/// The condition that hides expired rows (`?` numbered by the caller).
macro_rules! live {
    ($n:literal) => {
        concat!("(expires_at IS NULL OR expires_at > ?", $n, ")")
    };
}

const FIND: &str = concat!(
    "SELECT type, data, saved_at FROM tasks WHERE task_list = ?1 AND id = ?2 AND ",
    live!(3),
    " ORDER BY type LIMIT 1"
);

const PAGE_FROM_START: &str = concat!(
    "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " ORDER BY id, type LIMIT ?3"
);
const PAGE_AFTER_ID: &str = concat!(
    "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " AND id > ?4 ORDER BY id, type LIMIT ?3"
);
const PAGE_AFTER: &str = concat!(
    "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " AND (id, type) > (?4, ?5) ORDER BY id, type LIMIT ?3"
);

const COUNT: &str = concat!(
    "SELECT count(*) FROM tasks WHERE task_list = ?1 AND ",
    live!(2)
);

const NEXT_LIST: &str = "SELECT task_list FROM tasks WHERE task_list > ?1 \
     ORDER BY task_list LIMIT 1";
const LIST_LIVE: &str = concat!(
    "SELECT 1 FROM tasks WHERE task_list = ?1 AND ",
    live!(2),
    " LIMIT 1"
);

/// A text column read back (`data` of another tool may be a number or a blob: given as its
/// text, for the reader's bad-row handling; text that is not UTF-8 is bad data).
fn text(row: &Row<'_>, i: usize, list: &str, what: &str) -> Done<Option<String>> {
    let bad = |detail: &str| {
        Failure::Task(Error::BadData(format!(
            "a row of task list {} has {what} {detail}",
            shown(list)
        )))
    };
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => {
            Some(String::from_utf8(b.to_vec()).map_err(|_| bad("that is not UTF-8 text"))?)
        }
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

fn key_text(row: &Row<'_>, i: usize, list: &str, what: &str) -> Done<String> {
    text(row, i, list, what)?.ok_or_else(|| {
        Failure::Task(Error::BadData(format!(
            "a row of task list {} has a null {what}",
            shown(list)
        )))
    })
}

impl SqliteStore {
    /// The first live row under (list, id) in type order, or `None`.
    pub fn find(&self, key: &TaskKey) -> Result<Option<TaskRecord>> {
        self.with_conn(
            || of_key("reading", key),
            |c| {
                let mut stmt = c.prepare_cached(FIND)?;
                let mut rows = stmt.query(params![key.task_list, key.id, micros_now()])?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                Ok(Some(TaskRecord {
                    task_list: key.task_list.clone(),
                    id: key.id.clone(),
                    type_name: key_text(row, 0, &key.task_list, "type")?,
                    data: text(row, 1, &key.task_list, "data")?,
                    saved_at: row.get(2)?,
                }))
            },
        )
    }

    /// One page (`page_size` rows) of the list in (id, type) order, after `after`.
    pub fn page(
        &self,
        task_list: &str,
        after: Option<&SqliteCursor>,
    ) -> Result<Page<SqliteCursor>> {
        check_list(task_list)?;
        let limit = self.config.page_size;
        self.with_conn(
            || format!("reading task list {}", shown(task_list)),
            |c| {
                let now = micros_now();
                let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
                let (mut stmt, mut rows);
                match after {
                    None => {
                        stmt = c.prepare_cached(PAGE_FROM_START)?;
                        rows = stmt.query(params![task_list, now, fetch])?;
                    }
                    Some(SqliteCursor::AfterId(id)) => {
                        stmt = c.prepare_cached(PAGE_AFTER_ID)?;
                        rows = stmt.query(params![task_list, now, fetch, id])?;
                    }
                    Some(SqliteCursor::After(id, ty)) => {
                        stmt = c.prepare_cached(PAGE_AFTER)?;
                        rows = stmt.query(params![task_list, now, fetch, id, ty])?;
                    }
                }
                let mut records = Vec::new();
                let mut more = false;
                while let Some(row) = rows.next()? {
                    if records.len() == limit {
                        more = true;
                        break;
                    }
                    records.push(TaskRecord {
                        task_list: task_list.to_string(),
                        id: key_text(row, 0, task_list, "id")?,
                        type_name: key_text(row, 1, task_list, "type")?,
                        data: text(row, 2, task_list, "data")?,
                        saved_at: row.get(3)?,
                    });
                }
                let next = if more {
                    records
                        .last()
                        .map(|r| SqliteCursor::After(r.id.clone(), r.type_name.clone()))
                } else {
                    None
                };
                Ok(Page { records, next })
            },
        )
    }

    /// How many live rows the list holds.
    pub fn count(&self, task_list: &str) -> Result<u64> {
        check_list(task_list)?;
        self.with_conn(
            || format!("counting task list {}", shown(task_list)),
            |c| {
                let n: i64 = c
                    .prepare_cached(COUNT)?
                    .query_row(params![task_list, micros_now()], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            },
        )
    }

    /// Up to `page_size` names of lists that hold live rows, after `after`, in name order,
    /// and the name to continue after when more follow.
    pub fn lists_page(&self, after: Option<&str>) -> Result<(Vec<String>, Option<String>)> {
        let limit = self.config.page_size;
        self.with_conn(
            || "listing the task lists".to_string(),
            |c| {
                // One read transaction: one snapshot for the whole page.
                let tx = c.transaction()?;
                let now = micros_now();
                let mut names = Vec::new();
                let mut from = after.unwrap_or("").to_string();
                let mut more = false;
                {
                    let mut next = tx.prepare_cached(NEXT_LIST)?;
                    let mut live = tx.prepare_cached(LIST_LIVE)?;
                    while let Some(name) = next
                        .query_row([&from], |r| r.get::<_, String>(0))
                        .optional()?
                    {
                        if live.exists(params![name, now])? {
                            if names.len() == limit {
                                more = true;
                                break;
                            }
                            names.push(name.clone());
                        }
                        from = name;
                    }
                }
                tx.commit()?;
                let next = if more { names.last().cloned() } else { None };
                Ok((names, next))
            },
        )
    }
}
