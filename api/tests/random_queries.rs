//! Property: no query string, path id or header a client can send makes the API answer a 5xx.
//! Random strings are built from the parameter names and values that matter (valid ones,
//! near misses, overflow, junk, percent-escapes) on every GET endpoint.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const NAMES: &[&str] = &[
    "startDate",
    "endDate",
    "systemId",
    "regionId",
    "allianceId",
    "minIsk",
    "minPilots",
    "status",
    "sort",
    "limit",
    "offset",
    "team",
    "x",
    "",
    "limit[]",
    "%00",
    "sort%20",
];

const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "50",
    "100",
    "101",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e3",
    "0x10",
    "2025-11-25",
    "2025-11-25T09:00:00Z",
    "2025-02-30",
    "9999-12-31",
    "-infinity",
    "open",
    "closed",
    "historical",
    "-started_at",
    "isk_destroyed",
    "-pilots",
    "kills",
    "-deaths",
    "time",
    "-time",
    "team_a",
    "team_b",
    "%",
    "%ff",
    "%00",
    "'; DROP TABLE battles; --",
    "30000142",
    "99001234",
    "\u{1F4A5}",
    "+",
    "--kills",
    "a=b",
    "null",
];

const PATHS: &[&str] = &[
    "/api/battles",
    "/api/battles/11111111-1111-1111-1111-111111111111",
    "/api/battles/11111111-1111-1111-1111-111111111111/participants",
    "/api/battles/11111111-1111-1111-1111-111111111111/killmails",
    "/api/battles/eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee/participants",
    "/api/battles/{id}",
    "/api/battles/{id}/participants",
    "/api/battles/{id}/killmails",
    "/api/killmails/{id}/battle",
    "/api/battles/recluster/jobs/{id}",
    "/api/battles/health",
    "/api/battles/stats",
];

fn pair() -> impl Strategy<Value = String> {
    (
        prop::sample::select(NAMES),
        prop_oneof![
            prop::sample::select(VALUES).prop_map(str::to_owned),
            "[ -~]{0,12}"
        ],
    )
        .prop_map(|(name, value)| format!("{name}={}", escape(&value)))
}

/// Keeps the query string one string: escapes what would end it or break the request line.
fn escape(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '#' => "%23".to_owned(),
            ' ' => "+".to_owned(),
            c if c.is_ascii() => c.to_string(),
            c => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
        })
        .collect()
}

fn request() -> impl Strategy<Value = String> {
    (
        prop::sample::select(PATHS),
        prop_oneof![
            prop::sample::select(VALUES).prop_map(str::to_owned),
            "[0-9a-f-]{0,40}",
            any::<i64>().prop_map(|n| n.to_string()),
        ],
        prop::collection::vec(pair(), 0..6),
    )
        .prop_map(|(path, id, pairs)| {
            let id = escape(&id).replace(['/', '?', '%'], "_");
            format!("{}?{}", path.replace("{id}", &id), pairs.join("&"))
        })
}

#[test]
fn random_query_strings_never_give_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime.block_on(TestApi::seeded());
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    let result = runner.run(&request(), |path| {
        let status = runtime.block_on(async { api.get(&path).await.status() });
        prop_assert!(!status.is_server_error(), "GET {path} answered {status}");
        Ok(())
    });
    runtime.block_on(api.stop());
    result.unwrap();
}
