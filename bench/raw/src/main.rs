//! raw-bench: what the gem does, with the scylla driver and nothing else, so bin/bench can
//! print how close the binding comes. Same table, same prepared statements, same consistency.
//!
//!   raw-bench <host:port> <keyspace> <workload> <n> [list]
//!
//! workloads: sequential (save, find, complete one task at a time), threads (n saves from 8
//! concurrent callers), bulk (n saves, 64 in flight), scan (page through `list`, 5000 a page),
//! load (store n tasks into `list`, for scan), claim and claim8 (n stored tasks claimed and
//! completed, by one caller or 8: the gem's CQL for `claim` + `complete`, lightweight
//! transaction included), count (page through the ids of `list`, counting them), bulk100 (n
//! saves spread over 100 lists, 64 in flight), batched and batched100 (the same n saves sent
//! as unlogged batches of one list each, cut as the gem cuts them: at most BATCH_BYTES of
//! column values or BATCH_ROWS rows, 64 batches in flight), batchN and batchNxC (n stored
//! tasks claimed N at a time in one conditional batch and completed, by one caller or C, as
//! `claim_each(batch: N)` does). Prints one JSON line:
//! {"ops":..,"seconds":..}.
//!
//! RAW_RUNTIME=current runs everything on one thread (a current-thread tokio runtime, as the
//! gem does); the default is a two-worker multi-thread runtime. bin/bench runs both and keeps
//! the faster as the reference.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;
use scylla::response::query_result::QueryResult;
use scylla::response::PagingState;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::SerialConsistency;
use tokio::task::JoinSet;

struct Stmts {
    insert: PreparedStatement,
    find: PreparedStatement,
    delete: PreparedStatement,
    scan: PreparedStatement,
    count: PreparedStatement,
    claim_read: PreparedStatement,
    claim_first: Batch,
    claim_delete: PreparedStatement,
    /// claim_each's batches (`batchN`, `batchNx8`): tasks and claim rows of some ids, a first
    /// claim's two statements, a claim row deleted by a condition that always holds.
    stored_in: PreparedStatement,
    claims_in: PreparedStatement,
    first_insert: PreparedStatement,
    take: PreparedStatement,
    delete_seen: PreparedStatement,
}

async fn prepare(session: &Session, table: &str) -> Stmts {
    let prep = |cql: String| async move {
        let mut p = session.prepare(cql).await.expect("prepare");
        p.set_consistency(Consistency::LocalQuorum);
        p.set_is_idempotent(true);
        p.set_request_timeout(Some(Duration::from_secs(12)));
        p.set_page_size(5000);
        p
    };
    Stmts {
        insert: prep(format!(
            "INSERT INTO {table} (task_list, id, data, type) VALUES (?, ?, ?, ?)"
        ))
        .await,
        // The gem reads each task's write time too (`saved_at`).
        find: prep(format!(
            "SELECT task_list, id, data, type, WRITETIME(data) FROM {table} \
             WHERE task_list = ? AND id = ? LIMIT 1"
        ))
        .await,
        delete: prep(format!(
            "DELETE FROM {table} WHERE task_list = ? AND id = ?"
        ))
        .await,
        scan: prep(format!(
            "SELECT task_list, id, data, type, WRITETIME(data) FROM {table} WHERE task_list = ?"
        ))
        .await,
        count: prep(format!("SELECT id FROM {table} WHERE task_list = ?")).await,
        claim_read: prep(format!(
            "SELECT owner, attempts FROM {table}_claims WHERE task_list = ? AND id = ?"
        ))
        .await,
        claim_first: {
            let mut b = Batch::default();
            b.append_statement(
                prep(format!(
                    "INSERT INTO {table}_claims (task_list, id, attempts) VALUES (?, ?, 1) \
                     IF NOT EXISTS"
                ))
                .await,
            );
            b.append_statement(
                prep(format!(
                    "UPDATE {table}_claims USING TTL ? SET owner = ? WHERE task_list = ? AND id = ?"
                ))
                .await,
            );
            b.set_consistency(Consistency::LocalQuorum);
            b.set_serial_consistency(Some(SerialConsistency::LocalSerial));
            b
        },
        claim_delete: prep(format!(
            "DELETE FROM {table}_claims WHERE task_list = ? AND id = ?"
        ))
        .await,
        stored_in: prep(format!(
            "SELECT id FROM {table} WHERE task_list = ? AND id IN ?"
        ))
        .await,
        claims_in: prep(format!(
            "SELECT id, owner, attempts FROM {table}_claims WHERE task_list = ? AND id IN ?"
        ))
        .await,
        first_insert: prep(format!(
            "INSERT INTO {table}_claims (task_list, id, attempts) VALUES (?, ?, 1) IF NOT EXISTS"
        ))
        .await,
        take: prep(format!(
            "UPDATE {table}_claims USING TTL ? SET owner = ? WHERE task_list = ? AND id = ?"
        ))
        .await,
        delete_seen: prep(format!(
            "DELETE FROM {table}_claims WHERE task_list = ? AND id = ? IF attempts != -1"
        ))
        .await,
    }
}

fn lwt_batch() -> Batch {
    let mut b = Batch::default();
    b.set_consistency(Consistency::LocalQuorum);
    b.set_serial_consistency(Some(SerialConsistency::LocalSerial));
    b
}

/// What the gem's `claim_each(batch:)` sends for a window of tasks nobody claimed yet: which
/// are stored, their claim rows, one conditional batch claiming them all, which are still
/// stored, a delete per task as each is completed, and one conditional batch deleting their
/// claims.
async fn claim_window(session: &Session, st: &Stmts, list: &str, ids: &[String], owner: &str) {
    let stored = session
        .execute_unpaged(&st.stored_in, (list, ids))
        .await
        .expect("stored");
    std::hint::black_box(stored.into_rows_result().expect("rows").rows_num());
    let seen = session
        .execute_unpaged(&st.claims_in, (list, ids))
        .await
        .expect("claims read");
    std::hint::black_box(seen.into_rows_result().expect("rows").rows_num());
    let mut claim = lwt_batch();
    let mut values: Vec<Vec<scylla::value::CqlValue>> = Vec::new();
    let text = |s: &str| scylla::value::CqlValue::Text(s.to_string());
    for id in ids {
        claim.append_statement(st.first_insert.clone());
        values.push(vec![text(list), text(id)]);
        claim.append_statement(st.take.clone());
        values.push(vec![
            scylla::value::CqlValue::Int(62),
            text(owner),
            text(list),
            text(id),
        ]);
    }
    let res = session.batch(&claim, &values).await.expect("claim batch");
    std::hint::black_box(res.into_rows_result().expect("applied").rows_num());
    let stored = session
        .execute_unpaged(&st.stored_in, (list, ids))
        .await
        .expect("stored");
    std::hint::black_box(stored.into_rows_result().expect("rows").rows_num());
    for id in ids {
        session
            .execute_unpaged(&st.delete, (list, id))
            .await
            .expect("delete");
    }
    let mut forget = lwt_batch();
    let mut keys = Vec::new();
    for id in ids {
        forget.append_statement(st.delete_seen.clone());
        keys.push((list, id));
    }
    session.batch(&forget, &keys).await.expect("forget batch");
}

/// What the gem's `claim` + `complete` send for a task nobody claimed yet: is it stored, its
/// claim row, the transaction, is it still stored, then the two deletes.
async fn claim_and_complete(session: &Session, st: &Stmts, list: &str, id: &str, owner: &str) {
    read_rows(
        session
            .execute_unpaged(&st.find, (list, id))
            .await
            .expect("find"),
    );
    let seen = session
        .execute_unpaged(&st.claim_read, (list, id))
        .await
        .expect("claim read");
    std::hint::black_box(seen.into_rows_result().expect("rows").rows_num());
    let res = session
        .batch(&st.claim_first, ((list, id), (60, owner, list, id)))
        .await
        .expect("claim");
    std::hint::black_box(res.into_rows_result().expect("applied").rows_num());
    read_rows(
        session
            .execute_unpaged(&st.find, (list, id))
            .await
            .expect("find"),
    );
    session
        .execute_unpaged(&st.delete, (list, id))
        .await
        .expect("delete");
    session
        .execute_unpaged(&st.claim_delete, (list, id))
        .await
        .expect("delete claim");
}

/// Decodes every row of a result into the four columns and the write time, as the gem does;
/// returns how many.
fn read_rows(res: QueryResult) -> usize {
    let rows = res.into_rows_result().expect("rows");
    let mut count = 0;
    for row in rows
        .rows::<(String, String, Option<String>, String, Option<i64>)>()
        .expect("typed")
    {
        std::hint::black_box(row.expect("row"));
        count += 1;
    }
    count
}

/// Pages through `statement` for the list; the sum of `rows` over the pages.
async fn pages(
    session: &Session,
    statement: &PreparedStatement,
    list: &str,
    rows: impl Fn(QueryResult) -> usize,
) -> usize {
    let mut count = 0;
    let mut paging = PagingState::start();
    loop {
        let (res, next) = session
            .execute_single_page(statement, (list,), paging)
            .await
            .expect("page");
        count += rows(res);
        match next.into_paging_control_flow() {
            ControlFlow::Break(()) => return count,
            ControlFlow::Continue(p) => paging = p,
        }
    }
}

fn data(i: usize) -> String {
    format!("{{\"n\":{i},\"s\":\"payload {i}\"}}")
}

/// The gem's bound on one batch (ext/task_core/src/cassandra/mod.rs, `BATCH_BYTES` and
/// `BATCH_ROWS`), read from the environment so that other sizes can be tried.
fn batch_bound(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().expect("a number of bytes or rows"))
        .unwrap_or(default)
}

/// The list of row `i` when n rows go to `lists` lists: consecutive rows, as a generating job
/// writes them.
fn list_of(list: &str, lists: usize, n: usize, i: usize) -> String {
    if lists == 1 {
        list.to_string()
    } else {
        format!("{list}-{}", i * lists / n)
    }
}

/// n saves over `lists` lists as unlogged single-list batches, 64 in flight.
async fn batched_saves(
    session: Arc<Session>,
    st: Arc<Stmts>,
    list: String,
    n: usize,
    lists: usize,
) {
    // The gem's bound (task_core's BATCH_BYTES and BATCH_ROWS, 32 bytes counted for each
    // row besides its values), so that these are the same batches as the gem's.
    let max_bytes = batch_bound("BATCH_BYTES", 40 * 1024);
    let max_rows = batch_bound("BATCH_ROWS", 1000);
    let mut running = JoinSet::new();
    let mut rows: Vec<(String, String, String, &'static str)> = Vec::new();
    let mut bytes = 0;
    let send = |rows: Vec<(String, String, String, &'static str)>, running: &mut JoinSet<()>| {
        let (session, st) = (session.clone(), st.clone());
        running.spawn(async move {
            let mut batch = Batch::new(BatchType::Unlogged);
            for _ in 0..rows.len() {
                batch.append_statement(st.insert.clone());
            }
            batch.set_consistency(Consistency::LocalQuorum);
            batch.set_is_idempotent(true);
            batch.set_request_timeout(Some(Duration::from_secs(12)));
            session.batch(&batch, &rows).await.expect("batch");
        });
    };
    for i in 0..n {
        let row = (
            list_of(&list, lists, n, i),
            format!("{i:07}"),
            data(i),
            "BenchTask",
        );
        let size = row.0.len() + row.1.len() + row.2.len() + row.3.len() + 32;
        if !rows.is_empty()
            && (rows[0].0 != row.0 || bytes + size > max_bytes || rows.len() == max_rows)
        {
            if running.len() >= 64 {
                running.join_next().await.expect("a task").expect("join");
            }
            send(std::mem::take(&mut rows), &mut running);
            bytes = 0;
        }
        bytes += size;
        rows.push(row);
    }
    if !rows.is_empty() {
        send(rows, &mut running);
    }
    while let Some(done) = running.join_next().await {
        done.expect("join");
    }
}

/// n saves over `lists` lists (consecutive rows to the same list), one request each,
/// `in_flight` at a time.
async fn saves(
    session: Arc<Session>,
    st: Arc<Stmts>,
    list: String,
    n: usize,
    in_flight: usize,
    lists: usize,
) {
    // At most `in_flight` tasks exist at once; each finished one is reaped before the next
    // starts, so memory stays flat however many rows are written.
    let mut running = JoinSet::new();
    for i in 0..n {
        if running.len() >= in_flight {
            running.join_next().await.expect("a task").expect("join");
        }
        let (session, st) = (session.clone(), st.clone());
        let list = list_of(&list, lists, n, i);
        running.spawn(async move {
            let id = format!("{i:07}");
            session
                .execute_unpaged(&st.insert, (&list, &id, data(i), "BenchTask"))
                .await
                .expect("insert");
        });
    }
    while let Some(done) = running.join_next().await {
        done.expect("join");
    }
}

fn main() {
    let runtime = match std::env::var("RAW_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Ok("multi") | Err(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Ok(other) => {
            eprintln!("RAW_RUNTIME must be current or multi, got {other:?}");
            std::process::exit(2);
        }
    };
    runtime.expect("tokio runtime").block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: raw-bench <host:port> <keyspace> <sequential|threads|bulk|bulk100|batched|batched100|scan|load|count|claim|claim8|batchN|batchNx8> <n> [list]");
        std::process::exit(2);
    }
    let (node, keyspace, workload) = (&args[1], &args[2], args[3].as_str());
    let n: usize = args[4].parse().expect("n");
    let list = args
        .get(5)
        .cloned()
        .unwrap_or_else(|| format!("raw-{workload}-{}", std::process::id()));
    let session = Arc::new(
        SessionBuilder::new()
            .known_node(node)
            .build()
            .await
            .expect("connect"),
    );
    let st = Arc::new(prepare(&session, &format!("{keyspace}.tasks")).await);

    let started = Instant::now();
    let ops = match workload {
        "sequential" => {
            for i in 0..n {
                let id = format!("{i:07}");
                session
                    .execute_unpaged(&st.insert, (&list, &id, data(i), "BenchTask"))
                    .await
                    .expect("insert");
                let found = session
                    .execute_unpaged(&st.find, (&list, &id))
                    .await
                    .expect("find");
                read_rows(found);
                session
                    .execute_unpaged(&st.delete, (&list, &id))
                    .await
                    .expect("delete");
            }
            n
        }
        // 8 callers, each saving one task after another: what 8 Ruby threads do.
        "threads" => {
            let per = n / 8;
            let mut callers = Vec::new();
            for c in 0..8 {
                let (session, st, list) = (session.clone(), st.clone(), list.clone());
                callers.push(tokio::spawn(async move {
                    for i in 0..per {
                        let id = format!("{c}-{i:07}");
                        session
                            .execute_unpaged(&st.insert, (&list, &id, data(i), "BenchTask"))
                            .await
                            .expect("insert");
                    }
                }));
            }
            for c in callers {
                c.await.expect("join");
            }
            per * 8
        }
        "claim" | "claim8" => {
            saves(session.clone(), st.clone(), list.clone(), n, 64, 1).await;
            let callers = if workload == "claim8" { 8 } else { 1 };
            let started = Instant::now();
            let mut running = Vec::new();
            for c in 0..callers {
                let (session, st, list) = (session.clone(), st.clone(), list.clone());
                running.push(tokio::spawn(async move {
                    let owner = format!("raw-bench:{}:{c}", std::process::id());
                    for i in (c..n).step_by(callers) {
                        claim_and_complete(&session, &st, &list, &format!("{i:07}"), &owner).await;
                    }
                }));
            }
            for r in running {
                r.await.expect("join");
            }
            println!(
                "{{\"ops\":{n},\"seconds\":{}}}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        // claim_each(batch: N) from one caller (batchN) or 8 (batchNx8), each over windows
        // of N ids of its own.
        w if w.starts_with("batch") && !w.starts_with("batched") => {
            let (size, callers) = match w.trim_start_matches("batch").split_once('x') {
                Some((b, c)) => (b.parse().expect("batch"), c.parse().expect("callers")),
                None => (
                    w.trim_start_matches("batch").parse().expect("batch"),
                    1usize,
                ),
            };
            saves(session.clone(), st.clone(), list.clone(), n, 64, 1).await;
            let ids: Vec<String> = (0..n).map(|i| format!("{i:07}")).collect();
            let windows: Arc<Vec<Vec<String>>> =
                Arc::new(ids.chunks(size).map(<[String]>::to_vec).collect());
            let started = Instant::now();
            let mut running = Vec::new();
            for c in 0..callers {
                let (session, st, list, windows) =
                    (session.clone(), st.clone(), list.clone(), windows.clone());
                running.push(tokio::spawn(async move {
                    let owner = format!("raw-bench:{}:{c}", std::process::id());
                    for w in (c..windows.len()).step_by(callers) {
                        claim_window(&session, &st, &list, &windows[w], &owner).await;
                    }
                }));
            }
            for r in running {
                r.await.expect("join");
            }
            println!(
                "{{\"ops\":{n},\"seconds\":{}}}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        "bulk" | "load" => {
            saves(session.clone(), st.clone(), list.clone(), n, 64, 1).await;
            n
        }
        "bulk100" => {
            saves(session.clone(), st.clone(), list.clone(), n, 64, 100).await;
            n
        }
        "batched" | "batched100" => {
            let lists = if workload == "batched" { 1 } else { 100 };
            batched_saves(session.clone(), st.clone(), list.clone(), n, lists).await;
            n
        }
        // As the gem counts: each page's row count, the ids left undecoded.
        "count" => {
            pages(&session, &st.count, &list, |res| {
                res.into_rows_result().expect("rows").rows_num()
            })
            .await
        }
        "scan" => pages(&session, &st.scan, &list, read_rows).await,
        other => {
            eprintln!("unknown workload {other}");
            std::process::exit(2);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !matches!(workload, "load" | "scan" | "count") {
        let lists = if workload.ends_with("100") { 100 } else { 1 };
        for l in 0..lists {
            session
                .query_unpaged(
                    format!("DELETE FROM {keyspace}.tasks WHERE task_list = ?"),
                    (list_of(&list, lists, lists, l),),
                )
                .await
                .expect("cleanup");
        }
    }
    println!("{{\"ops\":{ops},\"seconds\":{seconds}}}");
}
