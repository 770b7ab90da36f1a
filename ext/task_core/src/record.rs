use crate::error::{Error, Result};

/// A stored task: the four columns of the `tasks` table. `data` is the JSON text of the data
/// hash, kept as text so both stores hold exactly the bytes the original gem wrote; `None`
/// is a null column, which only a raw write (or another tool) can leave in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub task_list: String,
    pub id: String,
    pub type_name: String,
    pub data: Option<String>,
}

/// Where a task lives: its list and its id (every type under that id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    pub task_list: String,
    pub id: String,
}

impl TaskKey {
    pub fn new(task_list: impl Into<String>, id: impl Into<String>) -> Result<Self> {
        let key = TaskKey {
            task_list: task_list.into(),
            id: id.into(),
        };
        check_key(&key.task_list, &key.id)?;
        Ok(key)
    }
}

/// The checks `TaskKey::new` makes, on borrowed text.
pub fn check_key(task_list: &str, id: &str) -> Result<()> {
    check_list(task_list)?;
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "task id must not be empty (task list {task_list:?})"
        )));
    }
    Ok(())
}

pub fn check_list(task_list: &str) -> Result<()> {
    if task_list.is_empty() {
        return Err(Error::InvalidArgument(
            "task_list must not be empty".to_string(),
        ));
    }
    Ok(())
}

impl TaskRecord {
    /// Checks everything the table needs before anything is written: non-empty key columns, a
    /// type name, and data that is a JSON object.
    pub fn validate(&self) -> Result<()> {
        self.validate_columns()?;
        let data = self.data.as_deref().unwrap_or("null");
        if !data.trim_start().starts_with('{') {
            return Err(Error::BadData(format!(
                "task {:?} in list {:?}: data must be a JSON object, got {:?}",
                self.id,
                self.task_list,
                truncate(data, 40)
            )));
        }
        Ok(())
    }
}

impl TaskRecord {
    /// The checks a raw row must pass: the key columns and the type, whatever the data.
    pub fn validate_columns(&self) -> Result<()> {
        check_key(&self.task_list, &self.id)?;
        if self.type_name.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "task {:?} in list {:?} has no type",
                self.id, self.task_list
            )));
        }
        Ok(())
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Keyspace and table names go into query text, so only plain CQL identifiers are accepted:
/// a letter, then letters, digits or underscores, at most 48 characters.
pub fn validate_identifier(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 48;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{kind} name {name:?} is not a valid CQL identifier (a letter, then letters, digits or _; at most 48)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(list: &str, id: &str, data: &str) -> TaskRecord {
        TaskRecord {
            task_list: list.into(),
            id: id.into(),
            type_name: "T".into(),
            data: Some(data.into()),
        }
    }

    #[test]
    fn validation_names_the_bad_part() {
        assert!(rec("l", "1", "{}").validate().is_ok());
        let e = rec("", "1", "{}").validate().unwrap_err();
        assert!(e.message().contains("task_list"), "{e}");
        let e = rec("l", "", "{}").validate().unwrap_err();
        assert!(
            e.message().contains("id") && e.message().contains("\"l\""),
            "{e}"
        );
        let e = rec("l", "9", "[1]").validate().unwrap_err();
        assert!(
            matches!(e, Error::BadData(_)) && e.message().contains("\"9\""),
            "{e}"
        );
    }

    #[test]
    fn identifiers() {
        assert!(validate_identifier("table", "tasks").is_ok());
        assert!(validate_identifier("table", "Tasks_2").is_ok());
        for bad in ["", "2tasks", "tasks;drop", "t\"x", "a b", &"x".repeat(49)] {
            let e = validate_identifier("keyspace", bad).unwrap_err();
            assert!(e.message().starts_with("keyspace name"), "{e}");
        }
    }
}
