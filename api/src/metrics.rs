//! Prometheus metrics: one process-wide recorder (installed on first use), a middleware that
//! counts and times every request by route, and `GET /metrics`, which also reports the battle
//! counts the database maintains.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiResult;
use crate::state::ApiState;

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The process's Prometheus handle, installing the global recorder on first call.
pub fn prometheus_handle() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("api_request_duration_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Counts (`api_requests_total`) and times (`api_request_duration_seconds`) each request, by
/// method, matched route and status.
pub async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let seconds = started.elapsed().as_secs_f64();
    metrics::counter!("api_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("api_request_duration_seconds", "route" => route).record(seconds);
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render(State(state): State<ApiState>) -> ApiResult<Response> {
    let client = state.pool().get().await?;
    let row = client
        .query_one(
            "SELECT coalesce(sum(battles), 0)::bigint, \
                    coalesce(sum(battles) FILTER (WHERE status = 'open'), 0)::bigint \
             FROM battle_counts",
            &[],
        )
        .await?;
    metrics::gauge!("battle_battles").set(row.get::<_, i64>(0) as f64);
    metrics::gauge!("battle_active_battles").set(row.get::<_, i64>(1) as f64);
    state.metrics().run_upkeep();
    let body = state.metrics().render();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
