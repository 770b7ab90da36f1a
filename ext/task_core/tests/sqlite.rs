//! The SQLite store on real files: round trips, order, pages, times to live, claims, threads
//! and processes racing, files refused, the lock-wait deadline, interrupts, and the file's
//! integrity after a process is killed mid-write.
//!
//! Tests that race processes run this test binary again as the workers: the child runs the
//! same test function, told by an environment variable to be a worker.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use task_core::{
    CallInterrupt, ClaimOutcome, ClaimTerms, Error, SqliteConfig, SqliteCursor, SqliteStore,
    TaskKey, TaskRecord,
};

/// A directory of its own for each test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "task_core_sqlite_{}_{}_{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(path)).expect("open")
}

fn rec(list: &str, id: &str, ty: &str) -> TaskRecord {
    TaskRecord {
        task_list: list.into(),
        id: id.into(),
        type_name: ty.into(),
        data: Some(format!("{{\"id\":\"{id}\",\"n\":1.50,\"s\":\"\\u00e9\"}}")),
        saved_at: None,
    }
}

fn key(list: &str, id: &str) -> TaskKey {
    TaskKey::new(list, id).unwrap()
}

fn micros_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_micros()).unwrap()
}

fn terms(owner: &str, lease: Duration) -> ClaimTerms {
    ClaimTerms {
        owner: owner.into(),
        lease,
    }
}

/// Waits (polling) until `cond` holds; fails after a generous ceiling.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ok_integrity(s: &SqliteStore) {
    assert_eq!(s.integrity_check().unwrap(), Ok(()));
}

#[test]
fn round_trips_upserts_and_deletes() {
    let dir = TempDir::new("round_trip");
    let s = open(&dir.file("t.db"));
    let r = rec("l", "b", "T");
    let before = micros_now();
    s.store(&r).unwrap();
    s.store(&rec("l", "b", "A")).unwrap();
    let found = s.find(&key("l", "b")).unwrap().unwrap();
    // The first type, and the data bytes exactly as given.
    assert_eq!(found.type_name, "A");
    assert_eq!(found.data, r.data);
    assert!(found
        .saved_at
        .is_some_and(|t| t >= before && t <= micros_now()));
    assert_eq!(s.count("l").unwrap(), 2);
    assert!(s.find(&key("l", "a")).unwrap().is_none());
    assert!(s.find(&key("other", "b")).unwrap().is_none());

    // An upsert replaces the data.
    let mut again = rec("l", "b", "A");
    again.data = Some("{\"v\":2}".into());
    s.store(&again).unwrap();
    assert_eq!(
        s.find(&key("l", "b")).unwrap().unwrap().data.as_deref(),
        Some("{\"v\":2}")
    );

    // A null data row, written raw, reads back null with no saved_at.
    let mut null = rec("l", "n", "T");
    null.data = None;
    assert!(s.store(&null).is_err());
    s.store_raw(&null).unwrap();
    let back = s.find(&key("l", "n")).unwrap().unwrap();
    assert_eq!((back.data, back.saved_at), (None, None));

    // Bad input: the same errors as the other stores, nothing written.
    let mut bad = rec("l", "x", "T");
    bad.data = Some("[1]".into());
    assert!(matches!(
        s.store(&bad).unwrap_err().kind(),
        Error::BadData(_)
    ));
    assert!(matches!(
        s.count("").unwrap_err().kind(),
        Error::InvalidArgument(_)
    ));

    s.delete(&key("l", "b")).unwrap();
    s.delete(&key("l", "b")).unwrap();
    assert!(s.find(&key("l", "b")).unwrap().is_none());
    assert_eq!(s.count("l").unwrap(), 1);
    s.delete_list("l").unwrap();
    assert_eq!(s.count("l").unwrap(), 0);

    s.store(&rec("k", "1", "T")).unwrap();
    // Idle connections closed (as before a fork): the next call opens one.
    s.close_idle();
    assert_eq!(s.count("k").unwrap(), 1);
    // Reopened: what was written is there.
    drop(s);
    let s = open(&dir.file("t.db"));
    assert!(s.find(&key("k", "1")).unwrap().is_some());
    ok_integrity(&s);
    let report = s.describe().unwrap();
    assert_eq!(
        (report.journal_mode.as_str(), report.synchronous.as_str()),
        ("wal", "FULL")
    );
    assert_eq!(report.schema_version, task_core::sqlite::SCHEMA_VERSION);
    assert!(report.sqlite_version.starts_with("3."));
}

#[test]
fn bulk_writes_and_deletes_answer_per_record() {
    let dir = TempDir::new("bulk");
    let s = open(&dir.file("t.db"));
    let records: Vec<TaskRecord> = (0..2500)
        .map(|i| rec("l", &format!("{i:05}"), "T"))
        .collect();
    let results = s.put_many(&records);
    assert_eq!(results.len(), records.len());
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(s.count("l").unwrap(), 2500);
    let keys: Vec<TaskKey> = (0..1000).map(|i| key("l", &format!("{i:05}"))).collect();
    let deleted = s.delete_many(&keys);
    assert_eq!(deleted.len(), 1000);
    assert!(deleted.iter().all(Result::is_ok));
    assert_eq!(s.count("l").unwrap(), 1500);
    assert!(s.put_many(&[]).is_empty());
}

#[test]
fn scans_in_utf8_byte_order_a_page_at_a_time() {
    let dir = TempDir::new("order");
    let mut cfg = SqliteConfig::new(dir.file("t.db"));
    cfg.page_size = 3;
    let s = SqliteStore::open(cfg).unwrap();
    let ids = [
        "b",
        "a",
        "Z",
        "é",
        "~",
        "a1",
        "ab",
        "\u{10000}",
        "0",
        "日本",
    ];
    for id in ids {
        s.store(&rec("l", id, "T")).unwrap();
    }
    s.store(&rec("l", "a", "B")).unwrap();
    s.store(&rec("other", "x", "T")).unwrap();
    let mut want: Vec<(String, String)> = ids.iter().map(|i| (i.to_string(), "T".into())).collect();
    want.push(("a".into(), "B".into()));
    // Rust compares strings by their UTF-8 bytes, as the other stores order them.
    want.sort();
    let mut seen = Vec::new();
    let mut after: Option<SqliteCursor> = None;
    loop {
        let page = s.page("l", after.as_ref()).unwrap();
        assert!(page.records.len() <= 3);
        seen.extend(page.records.into_iter().map(|r| (r.id, r.type_name)));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, want);
    // Resuming after an id skips every type under it.
    let page = s
        .page("l", Some(&SqliteCursor::AfterId("a".into())))
        .unwrap();
    assert_eq!(page.records[0].id, "a1");
    // List names, a page at a time.
    for l in ["c", "a", "b", "d"] {
        s.store(&rec(l, "1", "T")).unwrap();
    }
    let mut lists = Vec::new();
    let mut after = None;
    loop {
        let (names, next) = s.lists_page(after.as_deref()).unwrap();
        lists.extend(names);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(lists, ["a", "b", "c", "d", "l", "other"]);
}

#[test]
fn expired_tasks_are_invisible_then_purged() {
    let dir = TempDir::new("ttl");
    let path = dir.file("t.db");
    let s = open(&path);
    s.put_ttl(&rec("l", "short", "T"), Some(Duration::from_millis(30)))
        .unwrap();
    s.put_ttl(&rec("l", "long", "T"), Some(Duration::from_secs(3600)))
        .unwrap();
    // Claimed before it lapses: the claim goes with the task.
    assert_eq!(
        s.claim(&key("l", "short"), &terms("a", Duration::from_secs(60)))
            .unwrap(),
        ClaimOutcome::Won { attempts: 1 }
    );
    s.store(&rec("e", "x", "T")).unwrap();
    wait_until("the short task lapsed", || {
        s.find(&key("l", "short")).unwrap().is_none()
    });
    assert_eq!(s.count("l").unwrap(), 1);
    let page = s.page("l", None).unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].id, "long");
    // A store with a default time to live gives it to tasks saved without one.
    let mut cfg = SqliteConfig::new(&path);
    cfg.default_ttl = Some(Duration::from_millis(30));
    let short = SqliteStore::open(cfg).unwrap();
    short.store(&rec("d", "x", "T")).unwrap();
    wait_until("the default time to live lapsed", || {
        short.count("d").unwrap() == 0
    });
    let (lists, _) = s.lists_page(None).unwrap();
    assert_eq!(lists, ["e", "l"]);
    // Expired rows stay in the file until a write purges them (a store's first write does):
    // "short" went with the first write of `short`, "d" is still there.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let rows = |raw: &rusqlite::Connection, list: &str| -> i64 {
        raw.query_row(
            "SELECT count(*) FROM tasks WHERE task_list = ?1",
            [list],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((rows(&raw, "l"), rows(&raw, "d")), (1, 1));
    let claims: i64 = raw
        .query_row("SELECT count(*) FROM claims", [], |r| r.get(0))
        .unwrap();
    assert_eq!(claims, 0, "no claim row outlives its task");
    open(&path).store(&rec("e", "y", "T")).unwrap();
    assert_eq!((rows(&raw, "l"), rows(&raw, "d")), (1, 0));
}

#[test]
fn claims_win_hold_die_and_go() {
    let dir = TempDir::new("claims");
    let mut cfg = SqliteConfig::new(dir.file("t.db"));
    cfg.max_attempts = Some(2);
    let s = SqliteStore::open(cfg).unwrap();
    let k = key("l", "1");
    let long = Duration::from_secs(60);
    assert_eq!(s.claim(&k, &terms("a", long)).unwrap(), ClaimOutcome::Gone);
    s.store(&rec("l", "1", "T")).unwrap();
    assert_eq!(
        s.claim(&k, &terms("a", long)).unwrap(),
        ClaimOutcome::Won { attempts: 1 }
    );
    assert_eq!(s.claim(&k, &terms("b", long)).unwrap(), ClaimOutcome::Held);
    // The same owner again: renewed, no attempt counted.
    assert_eq!(
        s.claim(&k, &terms("a", long)).unwrap(),
        ClaimOutcome::Won { attempts: 1 }
    );
    assert!(s.renew(&k, &terms("a", long)).unwrap());
    assert!(!s.renew(&k, &terms("b", long)).unwrap());
    let info = s.claim_info(&k).unwrap().unwrap();
    assert_eq!(info.owner.as_deref(), Some("a"));
    assert!(
        info.expires_in.is_some_and(|e| (60..=62).contains(&e)),
        "{info:?}"
    );
    // Released with an error (text kept as given).
    assert!(!s.release(&k, "b", Some("E: no")).unwrap());
    assert!(s.release(&k, "a", Some("RuntimeError: boom é")).unwrap());
    assert!(!s.release(&k, "a", None).unwrap());
    let info = s.claim_info(&k).unwrap().unwrap();
    assert_eq!(info.owner, None);
    assert_eq!(info.expires_in, None);
    assert_eq!(info.last_error.as_deref(), Some("RuntimeError: boom é"));
    // A lease that lapses lets another owner win (the second and last attempt).
    // (A lease lasts at least what was asked and ends within ⌈lease⌉ + 2 seconds, as on every
    // store: here between 2 and 3 seconds.)
    assert_eq!(
        s.claim(&k, &terms("b", Duration::from_millis(20))).unwrap(),
        ClaimOutcome::Won { attempts: 2 }
    );
    let left = s.claim_info(&k).unwrap().unwrap().expires_in;
    assert!(left.is_some_and(|l| (2..=3).contains(&l)), "{left:?}");
    wait_until("the lease lapsed", || {
        s.claim_info(&k).unwrap().unwrap().owner.is_none()
    });
    assert!(!s.renew(&k, &terms("b", long)).unwrap());
    assert_eq!(
        s.claim(&k, &terms("c", long)).unwrap(),
        ClaimOutcome::Dead { attempts: 2 }
    );
    // A retry clears attempts and error.
    s.retry(&k).unwrap();
    let info = s.claim_infos("l").unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].attempts, info[0].last_error.as_ref()), (0, None));
    assert_eq!(
        s.claim(&k, &terms("c", long)).unwrap(),
        ClaimOutcome::Won { attempts: 1 }
    );
    // Completed (deleted): its claim goes with it.
    s.delete(&k).unwrap();
    assert_eq!(s.claim_info(&k).unwrap(), None);
    assert_eq!(s.claim(&k, &terms("c", long)).unwrap(), ClaimOutcome::Gone);
    assert!(s.claim_infos("l").unwrap().is_empty());
}

/// Claims and completes every task it can see until none is left; the ids it won, in order.
fn claim_all(s: &SqliteStore, list: &str, owner: &str) -> Vec<String> {
    let mut won = Vec::new();
    loop {
        let page = s.page(list, None).unwrap();
        if page.records.is_empty() {
            return won;
        }
        for r in page.records {
            let k = key(list, &r.id);
            if let ClaimOutcome::Won { .. } =
                s.claim(&k, &terms(owner, Duration::from_secs(60))).unwrap()
            {
                won.push(r.id.clone());
                s.delete(&k).unwrap();
            }
        }
    }
}

fn fill(s: &SqliteStore, list: &str, n: usize) {
    let records: Vec<TaskRecord> = (0..n).map(|i| rec(list, &format!("{i:05}"), "T")).collect();
    assert!(s.put_many(&records).iter().all(Result::is_ok));
}

fn racing_threads(s: &Arc<SqliteStore>, list: &str, threads: usize, tag: &str) -> Vec<String> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let s = Arc::clone(s);
            let (list, owner) = (list.to_string(), format!("{tag}-{t}"));
            std::thread::spawn(move || claim_all(&s, &list, &owner))
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn assert_each_once(won: &[String], n: usize) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in won {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "won more than once: {twice:?}");
    assert_eq!(counts.len(), n, "tasks won");
}

#[test]
fn threads_racing_claims_win_each_task_once() {
    let dir = TempDir::new("threads");
    let s = Arc::new(open(&dir.file("t.db")));
    fill(&s, "l", 300);
    let won = racing_threads(&s, "l", 6, "t");
    assert_each_once(&won, 300);
    assert_eq!(s.count("l").unwrap(), 0);
    ok_integrity(&s);
}

const WORKER_ENV: &str = "TASK_SQLITE_TEST_WORKER";

/// A claiming worker. Run by `processes_racing_claims_win_each_task_once` as a child process
/// (the file in the environment): prints each id it won. Run as a test of its own, it claims
/// a file of its own alone and must win every task.
#[test]
fn claim_worker() {
    if let Ok(path) = std::env::var(WORKER_ENV) {
        let s = Arc::new(open(Path::new(&path)));
        let won = racing_threads(&s, "race", 8, &format!("p{}", std::process::id()));
        // Each on a line of its own: the harness has printed "test claim_worker ... " already.
        let out: String = won.iter().map(|id| format!("\nWON {id}")).collect();
        print!("{out}");
        return;
    }
    let dir = TempDir::new("worker_alone");
    let s = Arc::new(open(&dir.file("t.db")));
    fill(&s, "race", 50);
    let won = racing_threads(&s, "race", 4, "alone");
    assert_each_once(&won, 50);
}

fn child(test: &str, env: (&str, &Path)) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The race: 4 processes (this one and 3 children) x 8 threads over 2,000 tasks.
#[test]
fn processes_racing_claims_win_each_task_once() {
    let dir = TempDir::new("processes");
    let path = dir.file("t.db");
    let s = Arc::new(open(&path));
    let n = 2000;
    fill(&s, "race", n);
    let children: Vec<_> = (0..3)
        .map(|_| child("claim_worker", (WORKER_ENV, &path)))
        .collect();
    let mut won = racing_threads(&s, "race", 8, "parent");
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        won.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("WON "))
                .map(str::to_string),
        );
    }
    assert_each_once(&won, n);
    assert_eq!(s.count("race").unwrap(), 0);
    ok_integrity(&s);
}

const WRITER_ENV: &str = "TASK_SQLITE_TEST_WRITER";
const BATCH: usize = 1500;

/// A bulk writer. Run as a child by `a_killed_writer_leaves_the_file_sound_and_complete`
/// (which kills it): writes batches of 1,500 tasks (two transactions: 1,000 and 500) and a
/// claim, and prints the number of each batch once its calls have returned. Run alone, it
/// writes three batches and checks them.
#[test]
fn bulk_writer() {
    let write = |s: &SqliteStore, batch: usize| {
        let records: Vec<TaskRecord> = (0..BATCH)
            .map(|i| rec("bulk", &format!("{batch:05}-{i:04}"), "T"))
            .collect();
        assert!(s.put_many(&records).iter().all(Result::is_ok));
        let k = key("bulk", &format!("{batch:05}-0000"));
        // A claim too, so the kill may land in one.
        let _ = s.claim(&k, &terms("w", Duration::from_secs(60))).unwrap();
    };
    if let Ok(path) = std::env::var(WRITER_ENV) {
        let s = open(Path::new(&path));
        for batch in 0.. {
            write(&s, batch);
            println!("DONE {batch}");
        }
    }
    let dir = TempDir::new("writer_alone");
    let s = open(&dir.file("t.db"));
    for batch in 0..3 {
        write(&s, batch);
    }
    assert_eq!(s.count("bulk").unwrap(), 3 * BATCH as u64);
}

#[test]
fn a_killed_writer_leaves_the_file_sound_and_complete() {
    let dir = TempDir::new("killed");
    let path = dir.file("t.db");
    open(&path);
    let mut c = child("bulk_writer", (WRITER_ENV, &path));
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    let mut done = Vec::new();
    while done.len() < 3 {
        let line = lines.next().expect("the writer ended early").unwrap();
        if let Some(n) = line.strip_prefix("DONE ") {
            done.push(n.parse::<usize>().unwrap());
        }
    }
    c.kill().unwrap(); // SIGKILL, most likely in the middle of the next batch
    c.wait().unwrap();
    let s = open(&path);
    ok_integrity(&s);
    let ids: HashSet<String> = {
        let mut ids = HashSet::new();
        let mut after = None;
        loop {
            let page = s.page("bulk", after.as_ref()).unwrap();
            ids.extend(page.records.into_iter().map(|r| r.id));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        ids
    };
    for batch in done {
        for i in 0..BATCH {
            assert!(
                ids.contains(&format!("{batch:05}-{i:04}")),
                "lost batch {batch}"
            );
        }
        let info = s
            .claim_info(&key("bulk", &format!("{batch:05}-0000")))
            .unwrap();
        assert!(
            info.is_some_and(|i| i.attempts == 1),
            "lost the claim of batch {batch}"
        );
    }
    // Each transaction is whole: the batch the kill interrupted left none or its first 1,000.
    assert!(
        [0, 1000].contains(&(ids.len() % BATCH)),
        "{} rows",
        ids.len()
    );
}

#[test]
fn a_file_that_is_not_a_task_database_is_refused_and_left_alone() {
    let dir = TempDir::new("foreign");
    let text = dir.file("notes.txt");
    std::fs::write(
        &text,
        "not a database, just some text that is long enough\n",
    )
    .unwrap();
    let tiny = dir.file("tiny");
    std::fs::write(&tiny, "SQL").unwrap();
    let other = dir.file("other.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('x');")
            .unwrap();
    }
    let other_app = dir.file("other_app.db");
    {
        let c = rusqlite::Connection::open(&other_app).unwrap();
        c.execute_batch("PRAGMA application_id = 42;").unwrap();
    }
    for path in [&text, &tiny, &other, &other_app] {
        let before = std::fs::read(path).unwrap();
        let err = SqliteStore::open(SqliteConfig::new(path)).unwrap_err();
        assert!(matches!(err.kind(), Error::InvalidArgument(_)), "{err}");
        assert!(err.message().contains(&path.display().to_string()), "{err}");
        assert!(err.message().contains("is not a task database"), "{err}");
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "{} changed",
            path.display()
        );
    }
    // No journal or WAL files were made beside them.
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["notes.txt", "other.db", "other_app.db", "tiny"]);
    // A directory is refused too.
    let err = SqliteStore::open(SqliteConfig::new(&dir.0)).unwrap_err();
    assert!(err.message().contains("is a directory"), "{err}");
}

#[test]
fn a_newer_schema_version_is_refused_and_left_alone() {
    let dir = TempDir::new("newer");
    let path = dir.file("t.db");
    open(&path).store(&rec("l", "1", "T")).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99; PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open(SqliteConfig::new(&path)).unwrap_err();
    assert!(err.message().contains("schema version 99"), "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_writer_waits_for_the_lock_until_its_deadline() {
    let dir = TempDir::new("deadline");
    let path = dir.file("t.db");
    let mut cfg = SqliteConfig::new(&path);
    cfg.retry_deadline = Duration::from_millis(150);
    let s = SqliteStore::open(cfg).unwrap();
    s.store(&rec("l", "1", "T")).unwrap();
    let mut holder = rusqlite::Connection::open(&path).unwrap();
    let tx = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let err = s.store(&rec("l", "2", "T")).unwrap_err();
    assert!(matches!(err.kind(), Error::Timeout(_)), "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(err.message().contains("nothing of it was applied"), "{err}");
    let err = s
        .claim(&key("l", "1"), &terms("a", Duration::from_secs(9)))
        .unwrap_err();
    assert!(matches!(err.kind(), Error::Timeout(_)), "{err}");
    // Readers are not blocked by the writer.
    assert!(s.find(&key("l", "1")).unwrap().is_some());
    assert_eq!(s.count("l").unwrap(), 1);
    tx.rollback().unwrap();
    s.store(&rec("l", "2", "T")).unwrap();
    assert_eq!(s.count("l").unwrap(), 2);
    // Nor is a writer blocked by a reader holding a snapshot open.
    let reader = holder.transaction().unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    s.store(&rec("l", "3", "T")).unwrap();
    assert_eq!(s.count("l").unwrap(), 3);
    let still: i64 = reader
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!((seen, still), (2, 2));
}

#[test]
fn an_interrupt_ends_a_call_waiting_for_the_lock() {
    let dir = TempDir::new("interrupt");
    let path = dir.file("t.db");
    let mut cfg = SqliteConfig::new(&path);
    cfg.retry_deadline = Duration::from_secs(600);
    let s = Arc::new(SqliteStore::open(cfg).unwrap());
    let mut holder = rusqlite::Connection::open(&path).unwrap();
    let tx = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let interrupt = CallInterrupt::new();
    let (started_tx, started) = std::sync::mpsc::channel();
    let call = {
        let (s, interrupt) = (Arc::clone(&s), interrupt.clone());
        std::thread::spawn(move || {
            s.interruptible(&interrupt, |s| {
                started_tx.send(()).unwrap();
                s.store(&rec("l", "1", "T"))
            })
        })
    };
    started.recv().unwrap();
    interrupt.interrupt();
    wait_until("the interrupted call returned", || call.is_finished());
    let err = call.join().unwrap().unwrap_err();
    assert!(err.message().contains("interrupted"), "{err}");
    tx.rollback().unwrap();
    // Nothing was applied, and the store is usable (without the interrupt) at once.
    assert_eq!(s.count("l").unwrap(), 0);
    s.store(&rec("l", "1", "T")).unwrap();
    // A call made under an interrupt already fired does not start.
    let err = s
        .interruptible(&interrupt, |s| s.find(&key("l", "1")))
        .unwrap_err();
    assert!(err.message().contains("interrupted"), "{err}");
    assert!(s.find(&key("l", "1")).unwrap().is_some());
}

#[test]
fn stores_opening_one_new_file_at_once_make_it_once() {
    // Many stores opening one new file at once: made once, all usable.
    let dir = TempDir::new("new_file");
    let path = Arc::new(dir.file("t.db"));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let path = Arc::clone(&path);
            std::thread::spawn(move || {
                let s = open(&path);
                s.store(&rec("l", &i.to_string(), "T")).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = open(&path);
    assert_eq!(s.count("l").unwrap(), 6);
    ok_integrity(&s);
}
