//! `battles migrate` end to end: against a fresh, empty database it applies every migration;
//! run again it applies none; a database that does not exist yet is created.

use std::process::Command;

use battles::postgres::{self, TestDatabase};

fn migrate(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["migrate", "--database-url", url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn migrate_applies_then_has_nothing_to_do() {
    let server = postgres::discover(None).await.unwrap();
    let db = TestDatabase::create_empty_on(server.clone()).await.unwrap();

    let (ok, out) = migrate(&db.url);
    assert!(ok, "{out}");
    assert!(out.contains("applied V1__battles_schema"), "{out}");
    assert!(out.contains("applied V2__service_tables"), "{out}");
    let (ok, out) = migrate(&db.url);
    assert!(ok, "{out}");
    assert!(!out.contains("applied V"), "{out}");
    let client = db.connect().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 2);
    drop(client);
    db.drop_database().await.unwrap();

    // A database that does not exist is created first.
    let name = format!("battles_test_cli_{}", std::process::id());
    let (ok, out) = migrate(&server.url_for(&name));
    assert!(ok, "{out}");
    assert!(out.contains(&format!("created database {name}")), "{out}");
    let admin =
        battles_sink::migrate::connect(&battles_sink::migrate::maintenance_config(&server.config))
            .await
            .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
}

#[test]
fn an_unreachable_database_url_is_one_clear_error() {
    let (ok, out) = migrate("postgres://postgres@127.0.0.1:1/battles_db");
    assert!(!ok);
    assert!(out.contains("does not answer"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}
