//! The private-server path for real: with the local server ignored (`force_private`), discovery
//! initializes a data directory, starts PostgreSQL on a free port (as the `postgres` user when
//! running as root), a database is created, migrated, written and queried, and the server stops.

mod common;

use battles_sink::server::{find_binaries, Discovery, PrivateServer, ServerOrigin};
use battles_sink::TestDatabase;
use common::*;

#[tokio::test]
async fn a_private_server_is_started_used_and_stopped() {
    let Some(bin) = find_binaries() else {
        panic!("this test needs the PostgreSQL binaries (initdb, pg_ctl) installed");
    };
    let dir = std::env::temp_dir().join(format!("battles-private-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let discovery = Discovery {
        database_url: None,
        force_private: true,
        private_dir: Some(dir.clone()),
        database: Some("battles_db".into()),
    };
    let server = discovery.discover().await.unwrap();
    let ServerOrigin::Private { data_dir, port } = server.origin.clone() else {
        panic!("expected a private server, got {:?}", server.origin);
    };
    assert_eq!(data_dir, dir);
    assert_ne!(port, 5432);
    assert!(dir.join("PG_VERSION").is_file());
    assert!(server.url.ends_with(&format!(":{port}/battles_db")));

    // Discovering again attaches to the running server instead of starting another.
    let again = discovery.discover().await.unwrap();
    assert_eq!(again.origin, server.origin);

    let db = TestDatabase::create_on(server).await.unwrap();
    let sink = db.sink().await.unwrap();
    sink.apply(create_step(&[vec![km(1, 0, 2001, &[1000], 1_000)]]))
        .await
        .unwrap();
    let client = db.connect().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM battles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    drop(client);
    drop(sink);
    db.drop_database().await.unwrap();

    let handle = PrivateServer::start(&bin, &dir).unwrap();
    assert_eq!(handle.port, port);
    handle.stop().unwrap();
    let cfg =
        battles_sink::migrate::parse_url(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .unwrap();
    assert!(
        battles_sink::migrate::connect(&cfg).await.is_err(),
        "server still answers"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
