//! The reference for the fibers workload (bench/fibers.rb): `callers` futures on one runtime,
//! each saving one task after another, as `callers` fibers on one Ruby thread do. The same
//! insert as raw-bench's `threads` workload (which is this with 8 callers).
//!
//!   raw-callers <host:port> <keyspace> <callers> <n>     (RAW_RUNTIME=current|multi)
//!
//! Prints `{"ops":N,"seconds":S}`; the list it wrote is deleted after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;

fn main() {
    let runtime = match std::env::var("RAW_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    };
    runtime.expect("tokio runtime").block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: raw-callers <host:port> <keyspace> <callers> <n>");
        std::process::exit(2);
    }
    let (node, keyspace) = (&args[1], &args[2]);
    let callers: usize = args[3].parse().expect("callers");
    let n: usize = args[4].parse().expect("n");
    let list = format!("raw-callers-{}", std::process::id());
    let session = Arc::new(
        SessionBuilder::new()
            .known_node(node)
            .build()
            .await
            .expect("connect"),
    );
    let mut insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.tasks (task_list, id, data, type) VALUES (?, ?, ?, ?)"
        ))
        .await
        .expect("prepare");
    insert.set_consistency(Consistency::LocalQuorum);
    insert.set_is_idempotent(true);
    insert.set_request_timeout(Some(Duration::from_secs(12)));
    let insert = Arc::new(insert);

    let per = n / callers;
    let started = Instant::now();
    let mut running = Vec::new();
    for c in 0..callers {
        let (session, insert, list) = (session.clone(), insert.clone(), list.clone());
        running.push(tokio::spawn(async move {
            for i in 0..per {
                let id = format!("{c}-{i:07}");
                let data = format!("{{\"n\":{i},\"s\":\"payload {i}\"}}");
                session
                    .execute_unpaged(&insert, (&list, &id, data, "BenchTask"))
                    .await
                    .expect("insert");
            }
        }));
    }
    for r in running {
        r.await.expect("join");
    }
    let seconds = started.elapsed().as_secs_f64();
    session
        .query_unpaged(
            format!("DELETE FROM {keyspace}.tasks WHERE task_list = ?"),
            (&list,),
        )
        .await
        .expect("cleanup");
    println!("{{\"ops\":{},\"seconds\":{seconds}}}", per * callers);
}
