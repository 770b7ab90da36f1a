//! The Cassandra store against the real node that `bin/cassandra start` runs (or the one
//! `TASK_CASSANDRA_HOSTS` / `TASK_CASSANDRA_PORT` point at). No node: these fail, loudly.

use std::sync::Arc;

use task_core::{CassandraConfig, CassandraStore, Connector, Error, Schema, TaskKey, TaskRecord};

fn config() -> CassandraConfig {
    let hosts = std::env::var("TASK_CASSANDRA_HOSTS").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("TASK_CASSANDRA_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9042);
    let mut c = CassandraConfig {
        keyspace: "task_core_test".into(),
        page_size: 7,
        ..Default::default()
    };
    c.connection.hosts = hosts.split(',').map(|h| h.trim().to_string()).collect();
    c.connection.port = port;
    c.validated().expect("test config")
}

async fn store(connector: &Connector, cfg: &CassandraConfig) -> Arc<CassandraStore> {
    let s = connector.store(cfg);
    s.create_schema(&Schema::default())
        .await
        .expect("a Cassandra node must answer: run bin/cassandra start");
    s
}

fn micros_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

fn unique_list(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

fn rec(list: &str, id: &str, ty: &str, data: &str) -> TaskRecord {
    TaskRecord {
        task_list: list.into(),
        id: id.into(),
        type_name: ty.into(),
        data: Some(data.into()),
        saved_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_find_complete_round_trip() {
    let connector = Connector::new();
    let s = store(&connector, &config()).await;
    let list = unique_list("roundtrip");
    let r = rec(
        &list,
        "a1",
        "FetchFile",
        r#"{"filename":"file1.txt","n":1,"ü":"✓"}"#,
    );
    let before = micros_now();
    s.store(&r).await.unwrap();
    s.store(&r).await.unwrap(); // an upsert: still one row
    let after = micros_now();
    let key = TaskKey::new(list.as_str(), "a1").unwrap();
    let found = s.find(&key).await.unwrap().unwrap();
    // The server's write time comes back with the row (the node shares this machine's clock,
    // and stamps writes from its millisecond clock: a few milliseconds of slack).
    let saved_at = found.saved_at.expect("a write time");
    assert!(
        (before - 5_000..=after + 5_000).contains(&saved_at),
        "{before} <= {saved_at} <= {after}"
    );
    let read_back = TaskRecord {
        saved_at: None,
        ..found
    };
    assert_eq!(read_back, r);
    let page = s.page(&list, None, None).await.unwrap().records;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].saved_at, Some(saved_at));
    assert_eq!(
        TaskRecord {
            saved_at: None,
            ..page[0].clone()
        },
        r
    );
    s.delete(&key).await.unwrap();
    assert_eq!(s.find(&key).await.unwrap(), None);
    s.delete(&key).await.unwrap(); // completing a missing task is fine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_return_the_whole_list_in_id_order() {
    let connector = Connector::new();
    let s = store(&connector, &config()).await;
    let list = unique_list("paging");
    let records: Vec<TaskRecord> = (0..50)
        .rev()
        .map(|i| rec(&list, &format!("{i:04}"), "T", &format!("{{\"i\":{i}}}")))
        .collect();
    let results = s.store_many(records.into(), 8, true).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let mut ids = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = s.page(&list, None, cursor).await.unwrap();
        assert!(
            page.records.len() <= 7,
            "page size is 7, got {}",
            page.records.len()
        );
        pages += 1;
        ids.extend(page.records.into_iter().map(|r| r.id));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert!(
        pages >= 8,
        "50 rows at 7 a page take at least 8 pages, got {pages}"
    );
    let want: Vec<String> = (0..50).map(|i| format!("{i:04}")).collect();
    assert_eq!(ids, want);
    s.delete_list(&list).await.unwrap();
    assert!(s.page(&list, None, None).await.unwrap().records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_with_one_connection_share_a_session() {
    let connector = Connector::new();
    let a = store(&connector, &config()).await;
    let other_table = CassandraConfig {
        table: "tasks_other".into(),
        ..config()
    };
    let b = store(&connector, &other_table).await;
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(connector.open_sessions(), 1);
    assert!(Arc::ptr_eq(&a, &connector.store(&config())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_named_with_how_to_create_it() {
    let connector = Connector::new();
    let cfg = CassandraConfig {
        table: "no_such_table".into(),
        ..config()
    };
    store(&connector, &config()).await; // keyspace exists; this table does not
    let s = connector.store(&cfg);
    let err = s.find(&TaskKey::new("l", "1").unwrap()).await.unwrap_err();
    match err.kind() {
        Error::QueryRejected(m) => {
            assert!(m.contains("task_core_test.no_such_table"), "{m}");
            assert!(m.contains("create_schema"), "{m}");
        }
        other => panic!("expected QueryRejected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reachable_host_is_a_clear_error() {
    let connector = Connector::new();
    let mut cfg = CassandraConfig {
        retry_deadline: std::time::Duration::from_millis(300),
        ..config()
    };
    cfg.connection.hosts = vec!["127.0.0.1".into()];
    cfg.connection.port = 1; // nothing listens there
    let err = connector
        .store(&cfg)
        .find(&TaskKey::new("l", "1").unwrap())
        .await
        .unwrap_err();
    match err.kind() {
        Error::NoHostAvailable(m) => assert!(m.contains("127.0.0.1:1"), "{m}"),
        other => panic!("expected NoHostAvailable, got {other:?}"),
    }
}
