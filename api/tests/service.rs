//! Health, stats, metrics, the OpenAPI document, request ids, CORS, and the list totals: the
//! maintained counts through inserts, upserts, status changes, soft and hard deletes, and the
//! capped count that turns into an estimate.

mod common;

use std::time::Duration;

use battles_api::ApiSettings;
use common::spec;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_and_stats_report_real_figures() {
    let api = TestApi::seeded().await;
    let client = api.db.connect().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO source_offsets (source_key, position, updated_at) VALUES ('file:/x', 10, '2025-11-25T10:00:00Z');
             INSERT INTO killmails (killmail_id, killmail_time, solar_system_id, region_id, record)
               SELECT g, now(), 30000142, 10000002, '\\x7b7d'::bytea FROM generate_series(1, 30) g;
             INSERT INTO battle_events_outbox (event_id, event_type, battle_id, payload)
               SELECT gen_random_uuid(), CASE WHEN g <= 3 THEN 'battle.created' ELSE 'battle.updated' END,
                      '11111111-1111-1111-1111-111111111111', '{}' FROM generate_series(1, 7) g;",
        )
        .await
        .unwrap();
    let health = api.json("/api/battles/health", StatusCode::OK).await;
    assert_shape(&serde_json::from_str(spec::HEALTH).unwrap(), &health, "");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["lastProcessed"], "2025-11-25T10:00:00Z");
    assert_eq!(health["activeBattles"], 1);
    assert!((health["processingRate"].as_f64().unwrap() - 30.0 / 300.0).abs() < 1e-9);
    let stats = api.json("/api/battles/stats", StatusCode::OK).await;
    assert_shape(&serde_json::from_str(spec::STATS).unwrap(), &stats, "");
    assert_eq!(stats["totalBattles"], 4);
    assert_eq!(stats["activeBattles"], 1);
    assert_eq!(stats["last24Hours"]["battlesCreated"], 3);
    assert_eq!(stats["last24Hours"]["battlesUpdated"], 4);
    assert_eq!(stats["last24Hours"]["killmailsProcessed"], 30);
    assert_eq!(
        stats["last24Hours"]["avgClusteringTime"],
        Value::Null,
        "not measured by serve"
    );
    api.stop().await;
}

#[tokio::test]
async fn health_is_503_with_the_reason_when_the_database_is_gone() {
    let api = TestApi::seeded().await;
    let maintenance =
        battles_sink::migrate::connect(&battles_sink::migrate::maintenance_config(api.db.config()))
            .await
            .unwrap();
    // Refuse new sessions and end the API's: the database is away.
    maintenance
        .batch_execute(&format!(
            "ALTER DATABASE \"{0}\" WITH ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = '{0}' AND pid <> pg_backend_pid();",
            api.db.name
        ))
        .await
        .unwrap();
    let response = api.get("/api/battles/health").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert!(
        body["reason"].as_str().unwrap().starts_with("database"),
        "{body}"
    );
    let list = api.get("/api/battles").await;
    assert!(list.status().is_server_error(), "{}", list.status());
    let body: Value = list.json().await.unwrap();
    assert_eq!(body["message"], "internal error", "no detail leaks: {body}");
    maintenance
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
            api.db.name
        ))
        .await
        .unwrap();
    api.stop().await;
}

#[tokio::test]
async fn maintained_counts_follow_every_kind_of_write() {
    let api = TestApi::seeded().await;
    let client = api.db.connect().await.unwrap();
    let total = |q: &'static str| {
        let api = &api;
        async move {
            api.json(&format!("/api/battles{q}"), StatusCode::OK).await["pagination"]["total"]
                .clone()
        }
    };
    assert_eq!(total("").await, 4);
    let insert =
        "INSERT INTO battles (id, started_at, ended_at, primary_system_id, primary_system_name,
          primary_region_id, primary_region_name, status)
        SELECT gen_random_uuid(), now(), now(), 30000142, 'Jita', 10000002, 'The Forge', 'open'
        FROM generate_series(1, 60)";
    client.batch_execute(insert).await.unwrap();
    assert_eq!(total("").await, 64);
    assert_eq!(total("?status=open").await, 61);
    client.batch_execute("UPDATE battles SET status = 'closed' WHERE status = 'open' AND primary_system_name = 'Jita' AND total_pilots = 0 AND id IN (SELECT id FROM battles WHERE status = 'open' AND total_pilots = 0 LIMIT 10)").await.unwrap();
    assert_eq!(total("?status=open").await, 51);
    assert_eq!(total("?status=closed").await, 12);
    // The sink's upsert: ON CONFLICT DO UPDATE fires the update trigger, a new id the insert one.
    client
        .batch_execute(&format!(
            "INSERT INTO battles (id, started_at, ended_at, primary_system_id, primary_system_name,
               primary_region_id, primary_region_name, status)
             VALUES ('{AMARR}', now(), now(), 1, 'x', 1, 'y', 'closed'),
                    ('00000000-0000-0000-0000-0000000000aa', now(), now(), 1, 'x', 1, 'y', 'closed')
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status"
        ))
        .await
        .unwrap();
    assert_eq!(total("").await, 65);
    assert_eq!(total("?status=open").await, 50);
    client
        .batch_execute(&format!(
            "UPDATE battles SET deleted_at = now() WHERE id = '{JITA}'"
        ))
        .await
        .unwrap();
    assert_eq!(total("?status=closed").await, 13);
    client
        .batch_execute("DELETE FROM battles WHERE status = 'open'")
        .await
        .unwrap();
    assert_eq!(total("").await, 14);
    assert_eq!(total("?status=open").await, 0);
    let recount: i64 = client
        .query_one("SELECT count(*) FROM battles WHERE deleted_at IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total("").await, recount);
    client
        .batch_execute("TRUNCATE battles CASCADE")
        .await
        .unwrap();
    assert_eq!(total("").await, 0);
    api.stop().await;
}

#[tokio::test]
async fn filtered_totals_are_exact_up_to_the_limit_then_estimated() {
    let many = format!(
        "{FIXTURE}
        INSERT INTO battles (id, started_at, ended_at, primary_system_id, primary_system_name,
          primary_region_id, primary_region_name, total_pilots, status)
        SELECT gen_random_uuid(), '2025-01-01'::timestamptz + g * interval '1 minute',
          '2025-01-01'::timestamptz + g * interval '1 minute', 30000142, 'Jita', 10000002, 'The Forge', 7, 'closed'
        FROM generate_series(1, 300) g;
        ANALYZE battles;"
    );
    let capped = TestApi::start(
        &many,
        ApiSettings {
            exact_count_limit: 100,
            ..settings()
        },
    )
    .await;
    let response = capped.get("/api/battles?minPilots=7").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-total-estimated"], "true");
    let body: Value = response.json().await.unwrap();
    let total = body["pagination"]["total"].as_i64().unwrap();
    assert!((101..=600).contains(&total), "estimate {total}");
    assert_eq!(body["pagination"]["hasMore"], true);
    let selective = capped.get("/api/battles?minPilots=7&systemId=30000142&limit=1&startDate=2025-01-01T00:30:00Z&endDate=2025-01-01T01:00:00Z").await;
    assert!(selective.headers().get("x-total-estimated").is_none());
    let body: Value = selective.json().await.unwrap();
    assert_eq!(body["pagination"]["total"], 31);
    capped.stop().await;
    let exact = TestApi::start(&many, settings()).await;
    let response = exact.get("/api/battles?minPilots=7").await;
    assert!(response.headers().get("x-total-estimated").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pagination"]["total"], 300);
    let unfiltered: Value = exact.get("/api/battles").await.json().await.unwrap();
    assert_eq!(unfiltered["pagination"]["total"], 304);
    exact.stop().await;
}

#[tokio::test]
async fn metrics_openapi_request_ids_and_cors() {
    let settings = ApiSettings {
        cors_origins: vec!["https://app.example".into()],
        ..settings()
    };
    let api = TestApi::start(FIXTURE, settings).await;
    api.json("/api/battles", StatusCode::OK).await;
    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("api_requests_total{method=\"GET\",route=\"/api/battles\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("api_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("battle_active_battles 1"), "{text}");

    let doc = api.json("/api/battles/openapi.json", StatusCode::OK).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/battles",
        "/api/battles/{id}",
        "/api/battles/{id}/participants",
        "/api/battles/{id}/killmails",
        "/api/battles/health",
        "/api/battles/stats",
        "/api/battles/recluster",
        "/api/battles/recluster/jobs/{id}",
        "/api/killmails/{id}/battle",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["BattleDetail"].is_object());

    let response = api.get("/api/battles/health").await;
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let echoed = api
        .http
        .get(format!("{}/api/battles", api.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");

    let allowed = api
        .http
        .get(format!("{}/api/battles", api.base))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = api
        .http
        .get(format!("{}/api/battles", api.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    api.stop().await;
}

#[tokio::test]
async fn slow_requests_and_statements_answer_503() {
    let hurried = ApiSettings {
        request_timeout: std::time::Duration::from_nanos(1),
        ..settings()
    };
    let api = TestApi::start(FIXTURE, hurried).await;
    let answer = api
        .json("/api/battles", StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert_eq!(answer["error"], "unavailable", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("time limit"),
        "{answer}"
    );
    api.stop().await;
    // Every session of the API runs with statement_timeout; a statement past it is a 503.
    let api = TestApi::seeded().await;
    let slow = battles_api::pool(
        api.db.config().clone(),
        1,
        std::time::Duration::from_millis(1),
    )
    .unwrap();
    let session = slow.get().await.unwrap();
    let err = session
        .query_one("SELECT pg_sleep(0.05)", &[])
        .await
        .unwrap_err();
    let api_error = battles_api::ApiError::from(err);
    assert_eq!(
        api_error.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{api_error}"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_filtered_total_is_reused_for_its_time_while_rows_stay_fresh() {
    let ttl = Duration::from_millis(1_500);
    let api = TestApi::start(
        FIXTURE,
        ApiSettings {
            total_cache_ttl: ttl,
            ..settings()
        },
    )
    .await;
    let client = api.db.connect().await.unwrap();
    let visible = |pilots: i32| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT count(*) FROM battles WHERE deleted_at IS NULL AND total_pilots >= $1",
                    &[&pilots],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let page = |body: &Value| {
        (
            body["pagination"]["total"].as_i64().unwrap(),
            body["battles"][0]["id"].clone(),
        )
    };
    let path = "/api/battles?minPilots=2&limit=1";
    let before = visible(2).await;
    assert!(before >= 2, "the fixture has several battles of 2+ pilots");
    let (total, _) = page(&api.json(path, StatusCode::OK).await);
    assert_eq!(total, before);

    // One more match, newest of all: the page shows it at once, the total a moment later.
    let newest: uuid::Uuid = client
        .query_one(
            "INSERT INTO battles (id, started_at, ended_at, primary_system_id, primary_system_name,
               primary_region_id, primary_region_name, total_pilots, status)
             VALUES (gen_random_uuid(), '2030-01-01', '2030-01-01', 30000142, 'Jita', 10000002,
               'The Forge', 2, 'closed')
             RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible(2).await, before + 1);
    let (total, first) = page(&api.json(path, StatusCode::OK).await);
    assert_eq!(first, newest.to_string(), "rows are read fresh");
    assert_eq!(total, before, "the total of a moment ago is reused");
    let other = "/api/battles?minPilots=2&limit=1&startDate=2000-01-01";
    let (other_total, _) = page(&api.json(other, StatusCode::OK).await);
    assert_eq!(
        other_total,
        before + 1,
        "another filter is counted on its own"
    );
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let (total, _) = page(&api.json(path, StatusCode::OK).await);
    assert_eq!(total, before + 1, "counted again once its time is over");
    api.stop().await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_the_json_error_shape() {
    let api = TestApi::seeded().await;
    let response = api
        .http
        .delete(format!("{}/api/battles", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "method_not_allowed", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("DELETE"),
        "{answer}"
    );
    api.stop().await;
}
