//! A stored task (the four columns) and its key, and the checks every store applies to them.

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
    /// When the store wrote the task's data, in microseconds since the Unix epoch: the
    /// server's write time (`WRITETIME(data)`) on Cassandra, the insert time on the memory
    /// store. Set on records read back; ignored on writes, and `None` for a null `data`.
    pub saved_at: Option<i64>,
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

/// The most bytes Cassandra keeps in a key: the partition key (the task list) and the
/// clustering key (the id and type together) each carry a 16-bit length, and a longer one is
/// refused by the server ("Key length of ... is longer than maximum of 65535").
pub const MAX_KEY_BYTES: usize = 65_535;

/// The checks `TaskKey::new` makes, on borrowed text.
pub fn check_key(task_list: &str, id: &str) -> Result<()> {
    check_list(task_list)?;
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "task id must not be empty (task list {})",
            shown(task_list)
        )));
    }
    check_length("id", id)
}

pub fn check_list(task_list: &str) -> Result<()> {
    if task_list.is_empty() {
        return Err(Error::InvalidArgument(
            "task_list must not be empty".to_string(),
        ));
    }
    check_length("task_list", task_list)
}

/// A task list or id (`name`) no store could hold: refused before any request, on every
/// store alike. The message gives the length and only the start of the text, which may be
/// tens of kilobytes.
pub fn check_length(name: &str, text: &str) -> Result<()> {
    if text.len() <= MAX_KEY_BYTES {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "task {name} is {} bytes long; Cassandra holds at most {MAX_KEY_BYTES} (it starts {})",
        text.len(),
        shown(text)
    )))
}

/// How many characters of a key messages show.
const SHOWN_CHARS: usize = 20;

/// Text for a message: quoted, and cut after `SHOWN_CHARS` characters (marked with `…`).
pub fn shown(text: &str) -> String {
    let start = truncate(text, SHOWN_CHARS);
    if start.len() < text.len() {
        format!("\"{}…\"", start.escape_debug())
    } else {
        format!("{text:?}")
    }
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
                "task {} in list {} has no type",
                shown(&self.id),
                shown(&self.task_list)
            )));
        }
        // The id and type make up the clustering key, whose limit is on their sum.
        let together = self.id.len() + self.type_name.len();
        if together > MAX_KEY_BYTES {
            return Err(Error::InvalidArgument(format!(
                "task id and type are {together} bytes together; Cassandra holds at most {MAX_KEY_BYTES} (id starts {}, type {})",
                shown(&self.id),
                shown(&self.type_name)
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

/// CQL's reserved keywords: the words marked reserved in Appendix A of the Cassandra CQL
/// documentation, plus IS and MATERIALIZED, which Cassandra 5.0's own list
/// (cql3/reserved_keywords.txt) also reserves. Unquoted, none can name a keyspace or table.
/// The non-reserved keywords (TYPE, KEY, USER, TTL, ...) can, and are not here.
const RESERVED_KEYWORDS: [&str; 58] = [
    "ADD",
    "ALLOW",
    "ALTER",
    "AND",
    "APPLY",
    "ASC",
    "AUTHORIZE",
    "BATCH",
    "BEGIN",
    "BY",
    "COLUMNFAMILY",
    "CREATE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DROP",
    "ENTRIES",
    "EXECUTE",
    "FROM",
    "FULL",
    "GRANT",
    "IF",
    "IN",
    "INDEX",
    "INFINITY",
    "INSERT",
    "INTO",
    "IS",
    "KEYSPACE",
    "LIMIT",
    "MATERIALIZED",
    "MODIFY",
    "NAN",
    "NORECURSIVE",
    "NOT",
    "NULL",
    "OF",
    "ON",
    "OR",
    "ORDER",
    "PRIMARY",
    "RENAME",
    "REPLACE",
    "REVOKE",
    "SCHEMA",
    "SELECT",
    "SET",
    "TABLE",
    "TO",
    "TOKEN",
    "TRUNCATE",
    "UNLOGGED",
    "UPDATE",
    "USE",
    "USING",
    "VIEW",
    "WHERE",
    "WITH",
];

/// Keyspace and table names go into query text, so only plain CQL identifiers are accepted:
/// a letter, then letters, digits or underscores, at most 48 characters, and not a reserved
/// keyword (the statements would fail with a syntax error naming neither).
pub fn validate_identifier(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 48;
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "{kind} name {name:?} is not a valid CQL identifier (a letter, then letters, digits or _; at most 48)"
        )));
    }
    // Keywords are case-insensitive, as unquoted identifiers are.
    if RESERVED_KEYWORDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(name))
    {
        return Err(Error::InvalidArgument(format!(
            "{kind} name {name:?} is a reserved CQL keyword; choose another name"
        )));
    }
    Ok(())
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
            saved_at: None,
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
    fn key_lengths() {
        let at_limit = "é".repeat(MAX_KEY_BYTES / 2) + "x";
        assert_eq!(at_limit.len(), MAX_KEY_BYTES);
        assert!(check_key(&at_limit, "1").is_ok());
        assert!(check_key("l", &at_limit).is_ok());

        let over = "x".repeat(70_000);
        let e = check_list(&over).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert_eq!(
            e.message(),
            "task task_list is 70000 bytes long; Cassandra holds at most 65535 (it starts \"xxxxxxxxxxxxxxxxxxxx…\")"
        );
        let e = check_key("l", &over).unwrap_err();
        assert!(
            e.message().starts_with("task id is 70000 bytes long"),
            "{e}"
        );
        assert!(e.message().len() < 150, "{e}");
        let e = TaskKey::new(over.clone(), "1").unwrap_err();
        assert!(e.message().starts_with("task task_list is 70000"), "{e}");

        // The id and the type share the clustering key's limit.
        let mut r = rec("l", &"i".repeat(MAX_KEY_BYTES - 1), "{}");
        assert!(r.validate().is_ok());
        r.type_name = "TT".into();
        let e = r.validate().unwrap_err();
        assert!(
            e.message()
                .starts_with("task id and type are 65536 bytes together; Cassandra holds at most 65535 (id starts \"iiii"),
            "{e}"
        );
        assert!(e.message().ends_with("type \"TT\")"), "{e}");
        r.id = "i".into();
        r.type_name = "T".repeat(70_000);
        assert!(r.validate_columns().unwrap_err().message().len() < 200);
    }

    #[test]
    fn shown_cuts_long_text() {
        assert_eq!(shown("short"), "\"short\"");
        assert_eq!(shown(&"ü".repeat(25)), format!("\"{}…\"", "ü".repeat(20)));
        assert_eq!(shown("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn identifiers() {
        assert!(validate_identifier("table", "tasks").is_ok());
        assert!(validate_identifier("table", "Tasks_2").is_ok());
        for bad in ["", "2tasks", "tasks;drop", "t\"x", "a b", &"x".repeat(49)] {
            let e = validate_identifier("keyspace", bad).unwrap_err();
            assert!(e.message().starts_with("keyspace name"), "{e}");
        }
        for reserved in ["select", "SELECT", "Table", "keyspace", "is", "with"] {
            let e = validate_identifier("table", reserved).unwrap_err();
            assert_eq!(
                e.message(),
                format!("table name {reserved:?} is a reserved CQL keyword; choose another name")
            );
        }
        for word in [
            "type",
            "key",
            "keys",
            "user",
            "ttl",
            "text",
            "tasks",
            "selection",
        ] {
            assert!(validate_identifier("table", word).is_ok(), "{word}");
        }
    }
}
