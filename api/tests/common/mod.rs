//! Test harness: a fresh migrated database per test (battles_sink's `TestDatabase`), seeded
//! from `fixtures/battles.sql`, and the API served on 127.0.0.1:0 in the test's runtime.

#![allow(dead_code)]

pub mod spec;

use std::time::Duration;

use battles_api::{ApiSettings, ApiState};
use battles_sink::TestDatabase;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

pub const FIXTURE: &str = include_str!("../fixtures/battles.sql");
pub const ADMIN_TOKEN: &str = "test-admin-token";

pub const JITA: &str = "11111111-1111-1111-1111-111111111111";
pub const JORUND: &str = "22222222-2222-2222-2222-222222222222";
pub const AMARR: &str = "33333333-3333-3333-3333-333333333333";
pub const OIVNH: &str = "44444444-4444-4444-4444-444444444444";
pub const DELETED: &str = "55555555-5555-5555-5555-555555555555";
pub const MERGED_INTO_JITA: &str = "eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee";
pub const MERGED_INTO_DELETED: &str = "dddddddd-dddd-dddd-dddd-dddddddddddd";
pub const RUNNING_JOB: &str = "77777777-7777-7777-7777-777777777777";

/// A served API over its own database.
pub struct TestApi {
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApi {
    /// The API over the seeded fixture, with the admin token set.
    pub async fn seeded() -> TestApi {
        Self::start(FIXTURE, settings()).await
    }

    /// The API over a database seeded with `sql`, served with `settings`.
    pub async fn start(sql: &str, settings: ApiSettings) -> TestApi {
        let db = TestDatabase::create().await.expect("test database");
        let client = db.connect().await.expect("connect");
        client.batch_execute(sql).await.expect("seed");
        let pool =
            battles_api::pool(db.config().clone(), 4, settings.statement_timeout).expect("pool");
        let state = ApiState::new(pool, settings).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(battles_api::serve(listener, state, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApi {
            base,
            http,
            db,
            stop: Some(stop),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// GET `path`, expecting `status`; the JSON body.
    pub async fn json(&self, path: &str, status: StatusCode) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), status, "GET {path}");
        response.json().await.expect("JSON body")
    }

    /// GET `path`, expecting a 400 naming `parameter`.
    pub async fn bad_request(&self, path: &str, parameter: &str) {
        let body = self.json(path, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["error"], "invalid_parameter", "GET {path}: {body}");
        assert_eq!(body["parameter"], parameter, "GET {path}: {body}");
        assert!(
            body["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{body}"
        );
    }

    /// The ids of a list answer, in order.
    pub async fn battle_ids(&self, path: &str) -> Vec<String> {
        let body = self.json(path, StatusCode::OK).await;
        ids(&body["battles"], "id")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.db.drop_database().await.expect("drop test database");
    }
}

/// Settings for tests: the admin token set, everything else default.
pub fn settings() -> ApiSettings {
    ApiSettings {
        admin_token: Some(battles_api::Secret::new(ADMIN_TOKEN)),
        ..ApiSettings::default()
    }
}

/// `field` of each element of a JSON array, as text.
pub fn ids(array: &Value, field: &str) -> Vec<String> {
    array
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| match &v[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Asserts `actual` has the shape of `expected` (a spec example): the same keys at every
/// level, and each value of the same JSON type (`null` allowed where the spec shows a string
/// or number the data may lack, and for a participant's missing corporation or alliance). Arrays compare their elements with the example's first one;
/// objects keyed by ids (`shipTypes`) compare their values with the example's first value.
pub fn assert_shape(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) if path.ends_with("shipTypes") => {
            let example = e.values().next().expect("example value");
            for (key, value) in a {
                assert!(key.parse::<i64>().is_ok(), "{path}: key {key} is not an id");
                assert_shape(example, value, &format!("{path}.{key}"));
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            let mut expected_keys: Vec<&String> = e.keys().collect();
            let mut actual_keys: Vec<&String> = a.keys().collect();
            expected_keys.sort();
            actual_keys.sort();
            assert_eq!(actual_keys, expected_keys, "keys at {path}");
            for (key, value) in e {
                assert_shape(value, &a[key], &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(example) = e.first() {
                for (i, value) in a.iter().enumerate() {
                    assert_shape(example, value, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        (Value::String(_) | Value::Number(_), Value::Null) => {}
        (Value::Object(_), Value::Null)
            if path.ends_with(".alliance") || path.ends_with(".corporation") => {}
        (e, a) => panic!("{path}: expected a value like {e}, got {a}"),
    }
}
