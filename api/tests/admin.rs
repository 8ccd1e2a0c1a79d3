//! The admin endpoints: creating and reading re-clustering jobs (rows of `clustering_jobs`),
//! and the bearer check: 401 without a token, 403 with a wrong one, 403 when none is configured.

mod common;

use battles_api::ApiSettings;
use common::spec;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const BODY: &str = r#"{"startDate":"2025-11-24","endDate":"2025-11-24","priority":"high"}"#;

async fn post(api: &TestApi, token: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = api
        .http
        .post(format!("{}/api/battles/recluster", api.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn read_job(api: &TestApi, token: Option<&str>, id: &str) -> reqwest::Response {
    let mut request = api
        .http
        .get(format!("{}/api/battles/recluster/jobs/{id}", api.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_job_is_created_pending_and_read_back() {
    let api = TestApi::seeded().await;
    let response = post(&api, Some(ADMIN_TOKEN), BODY).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted: Value = response.json().await.unwrap();
    assert_shape(
        &serde_json::from_str(spec::RECLUSTER_ACCEPTED).unwrap(),
        &accepted,
        "",
    );
    assert_eq!(accepted["status"], "pending");
    assert_eq!(accepted["startDate"], "2025-11-24");
    assert_eq!(accepted["priority"], "high");
    let id = accepted["jobId"].as_str().unwrap().to_owned();
    let client = api.db.connect().await.unwrap();
    let row = client
        .query_one(
            "SELECT job_type, status, priority, start_date::text FROM clustering_jobs WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let stored: (String, String, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        stored,
        (
            "reclustering".into(),
            "pending".into(),
            "high".into(),
            "2025-11-24".into()
        )
    );
    let job: Value = read_job(&api, Some(ADMIN_TOKEN), &id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["jobId"], id.as_str());
    assert_eq!(job["status"], "pending");
    assert_eq!(job["startedAt"], Value::Null);
    let default_priority = post(
        &api,
        Some(ADMIN_TOKEN),
        r#"{"startDate":"2025-11-20","endDate":"2025-11-21"}"#,
    )
    .await;
    let body: Value = default_priority.json().await.unwrap();
    assert_eq!(body["priority"], "normal");
    api.stop().await;
}

#[tokio::test]
async fn a_running_job_shows_its_progress() {
    let api = TestApi::seeded().await;
    let response = read_job(&api, Some(ADMIN_TOKEN), RUNNING_JOB).await;
    assert_eq!(response.status(), StatusCode::OK);
    let job: Value = response.json().await.unwrap();
    assert_shape(
        &serde_json::from_str(spec::RECLUSTER_JOB).unwrap(),
        &job,
        "",
    );
    assert_eq!(
        job,
        json!({
            "jobId": RUNNING_JOB, "status": "running", "startDate": "2025-11-24", "endDate": "2025-11-24",
            "progress": {"killmailsProcessed": 1250, "battlesCreated": 5, "battlesUpdated": 12, "battlesDeleted": 2},
            "startedAt": "2025-11-25T10:00:00Z"
        })
    );
    let missing = read_job(
        &api,
        Some(ADMIN_TOKEN),
        "00000000-0000-0000-0000-000000000009",
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = read_job(&api, Some(ADMIN_TOKEN), "nine").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    api.stop().await;
}

#[tokio::test]
async fn admin_endpoints_need_the_right_token() {
    let api = TestApi::seeded().await;
    let without = post(&api, None, BODY).await;
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(without.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        post(&api, Some("wrong"), BODY).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        read_job(&api, None, RUNNING_JOB).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        read_job(&api, Some("wrong"), RUNNING_JOB).await.status(),
        StatusCode::FORBIDDEN
    );
    let basic = api
        .http
        .post(format!("{}/api/battles/recluster", api.base))
        .header("authorization", format!("Basic {ADMIN_TOKEN}"))
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let client = api.db.connect().await.unwrap();
    let jobs: i64 = client
        .query_one("SELECT count(*) FROM clustering_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 1, "refused requests create nothing");
    api.stop().await;
}

#[tokio::test]
async fn without_a_configured_token_admin_endpoints_are_closed() {
    let api = TestApi::start(FIXTURE, ApiSettings::default()).await;
    let response = post(&api, Some("anything"), BODY).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert_eq!(
        read_job(&api, Some(""), RUNNING_JOB).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        read_job(&api, Some("x"), RUNNING_JOB).await.status(),
        StatusCode::FORBIDDEN
    );
    api.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field() {
    let api = TestApi::seeded().await;
    let cases = [
        (
            r#"{"startDate":"2025-11-24","endDate":"2025-11-23"}"#,
            Some("endDate"),
        ),
        (
            r#"{"startDate":"24/11/2025","endDate":"2025-11-24"}"#,
            Some("startDate"),
        ),
        (
            r#"{"startDate":"2025-11-24","endDate":"2025-11-24","priority":"now"}"#,
            Some("priority"),
        ),
        (r#"{"startDate":"2025-11-24","endDate":7}"#, Some("endDate")),
        (r#"{"startDate":"2025-11-24"}"#, None),
        (
            r#"{"startDate":"2025-11-24","endDate":"2025-11-24","extra":1}"#,
            Some("extra"),
        ),
        ("[]", None),
        ("", None),
    ];
    for (body, parameter) in cases {
        let response = post(&api, Some(ADMIN_TOKEN), body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        match parameter {
            Some(p) => assert_eq!(answer["parameter"], p, "{body}: {answer}"),
            None => assert_eq!(answer["error"], "invalid_body", "{body}: {answer}"),
        }
    }
    let huge = format!(
        r#"{{"startDate":"2025-11-24","endDate":"2025-11-24","priority":"{}"}}"#,
        "x".repeat(100_000)
    );
    let response = post(&api, Some(ADMIN_TOKEN), &huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "body_too_large", "{answer}");
    api.stop().await;
}
