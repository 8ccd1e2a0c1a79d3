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

/// `battles migrate` on `url` with the extra flags `args` and environment `env`: success and
/// stderr. The log settings of the test's own environment are removed first.
fn migrate_logging(url: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(args)
        .args(["migrate", "--database-url", url])
        .env_remove("DATABASE_URL")
        .env_remove("BATTLES_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every line of `err` that is a log line is one JSON object with a level, a target and a
/// message; there is at least one.
fn assert_json_lines(err: &str) {
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "no JSON log lines: {err}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["target"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn piped_logs_are_plain_quiet_by_default_and_json_on_request() {
    let server = postgres::discover(None).await.unwrap();
    let db = TestDatabase::create_empty_on(server).await.unwrap();

    // First run, default filter, piped: no library chatter, no colour codes.
    let (ok, err) = migrate_logging(&db.url, &[], &[]);
    assert!(ok, "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes in piped logs: {err:?}"
    );
    assert!(
        !err.contains("refinery"),
        "the migration library's INFO lines are shown by default: {err}"
    );

    // RUST_LOG is honoured; text stays plain when piped.
    let (ok, err) = migrate_logging(&db.url, &[], &[("RUST_LOG", "info")]);
    assert!(ok, "{err}");
    assert!(err.contains("refinery"), "RUST_LOG=info was ignored: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes in piped logs: {err:?}"
    );

    // JSON, by flag and by environment.
    let (ok, err) = migrate_logging(&db.url, &["--log-format", "json"], &[("RUST_LOG", "info")]);
    assert!(ok, "{err}");
    assert_json_lines(&err);
    let (ok, err) = migrate_logging(
        &db.url,
        &[],
        &[("RUST_LOG", "info"), ("BATTLES_LOG_FORMAT", "json")],
    );
    assert!(ok, "{err}");
    assert_json_lines(&err);
    db.drop_database().await.unwrap();
}
