//! `Sink::apply` survives PostgreSQL dropping its connections: pooled connections killed
//! between steps, and the connection killed in the middle of a step's transaction, which is
//! then retried whole.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

/// Terminates the backends of `db` other than the caller's; returns how many.
async fn terminate_all(client: &battles_sink::tokio_postgres::Client, db: &str) -> i64 {
    client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn apply_survives_killed_connections() {
    let (db, sink) = fresh().await;
    let admin = db.connect().await.unwrap();

    sink.apply(create_step(&[vec![km(1, 0, 2001, &[1000], 1_000)]]))
        .await
        .unwrap();
    // Between steps: every pooled connection dies.
    assert!(terminate_all(&admin, &db.name).await >= 1);
    let admin = db.connect().await.unwrap();
    let stats = sink
        .apply(create_step(&[vec![km(2, 0, 2003, &[1000], 1_000)]]))
        .await
        .unwrap();
    assert_eq!(stats.battles_created, 1);

    // In the middle of a step: a watcher kills the sink's backend the first time it sees it
    // inside a transaction.
    let battles: Vec<Vec<Km>> = (0..3000)
        .map(|i| {
            let base = 10_000 + i * 100;
            vec![
                km(base, 0, base + 1, &[base + 2, base + 4], 1_000_000),
                km(base + 1, 1, base + 3, &[base + 2], 2_000_000),
            ]
        })
        .collect();
    let step = create_step(&battles);
    let killed = Arc::new(AtomicBool::new(false));
    let watcher = {
        let killed = killed.clone();
        let name = db.name.clone();
        let watch = db.connect().await.unwrap();
        tokio::spawn(async move {
            for _ in 0..20_000 {
                let n: i64 = watch
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE datname = $1 AND pid <> pg_backend_pid()
                           AND xact_start IS NOT NULL AND backend_type = 'client backend'",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    killed.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    let stats = sink.apply(step).await.unwrap();
    watcher.abort();
    assert!(
        killed.load(Ordering::SeqCst),
        "the watcher never saw the transaction"
    );
    assert!(stats.attempts >= 2, "{stats:?}");
    assert_eq!(stats.battles_created, 3000);
    let n: i64 = admin
        .query_one("SELECT count(*) FROM battles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3002);
    let events: i64 = admin
        .query_one("SELECT count(*) FROM battle_events_outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        events, 3002,
        "a retried step wrote its events twice or not at all"
    );
    drop(admin);
    drop(sink);
    db.drop_database().await.unwrap();
}
