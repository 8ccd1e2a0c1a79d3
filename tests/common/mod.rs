//! Helpers shared by the end-to-end tests of backfill and of the stream: a runtime, generated
//! input, and the battle tables as comparable rows.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use battles::generate::output::{write_to_dir, KILLMAILS_FILE};
use battles::generate::GeneratorConfig;
use battles_sink::TestDatabase;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Generated days (about 1,500 killmails each) as a JSON Lines file.
pub fn generated(dir: &Path, seed: u64, days: u32) -> PathBuf {
    write_to_dir(
        GeneratorConfig {
            seed,
            days,
            scale: 1.0,
            ..GeneratorConfig::default()
        },
        dir,
        false,
    )
    .unwrap();
    dir.join(KILLMAILS_FILE)
}

/// GET `path` on `addr` over plain HTTP/1.1; the status and the JSON body.
pub fn get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The lines of a file.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines` to `path`, one per line; returns the path.
pub fn write_lines(path: &Path, lines: &[String]) -> PathBuf {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    path.to_owned()
}

/// Parses killmail lines that are all valid.
pub fn parse_all(lines: &[String]) -> Vec<battles_dataflow::Killmail> {
    let ctx = battles::ingest::IngestContext::default();
    lines
        .iter()
        .map(|l| {
            battles::ingest::parse_record(l.as_bytes(), &ctx)
                .unwrap()
                .killmail
        })
        .collect()
}

/// Which `battles` columns a comparison leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Compare `status` too (runs that set it the same way).
    Compared,
    /// Leave it out: a stream sets open/closed from its watermark, a backfill `historical`.
    Ignored,
}

/// The rows of the battle tables, comparable between databases (random row ids and write times
/// left out).
pub async fn dump(db: &TestDatabase, status: Status) -> BTreeMap<&'static str, Vec<String>> {
    let client = db.connect().await.unwrap();
    let mut out = BTreeMap::new();
    let battles_drop = match status {
        Status::Compared => "",
        Status::Ignored => " - 'status'",
    };
    for (table, order, drop) in [
        ("battles", "id", battles_drop),
        ("battle_participants", "battle_id, character_id", " - 'id'"),
        ("battle_killmails", "battle_id, killmail_id", " - 'id'"),
        ("battle_statistics", "battle_id", " - 'id'"),
        ("battle_third_parties", "battle_id, character_id", " - 'id'"),
        ("killmails", "killmail_id", " - 'id'"),
    ] {
        let sql = format!(
            "SELECT (to_jsonb(t) - 'created_at' - 'updated_at' - 'received_at'{drop})::text
             FROM {table} t ORDER BY {order}"
        );
        let rows = client.query(&sql, &[]).await.unwrap();
        out.insert(table, rows.iter().map(|r| r.get::<_, String>(0)).collect());
    }
    out
}

pub fn assert_same_tables(
    a: &BTreeMap<&'static str, Vec<String>>,
    b: &BTreeMap<&'static str, Vec<String>>,
    what: &str,
) {
    for (table, rows) in a {
        let other = &b[table];
        assert_eq!(
            rows.len(),
            other.len(),
            "{what}: {table} has {} rows against {}",
            other.len(),
            rows.len()
        );
        if let Some(i) = (0..rows.len()).find(|&i| rows[i] != other[i]) {
            panic!(
                "{what}: {table} differs at row {i}:\n  {}\n  {}",
                rows[i], other[i]
            );
        }
    }
}

/// A free TCP port on the loopback interface (for an engine's processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
