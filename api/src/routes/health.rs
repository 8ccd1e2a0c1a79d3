//! `GET /api/battles/health` (200 healthy, 503 with the reason: the database does not answer
//! or, under `battles run`, the consumer is unwell) and `GET /api/battles/stats`, from the
//! maintained counts, the killmail store and the event outbox.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use deadpool_postgres::Client;

use crate::error::ApiResult;
use crate::params::QueryParams;
use crate::shapes::{Health, Last24Hours, Stats};
use crate::state::ApiState;

/// What the database says about the service's progress.
struct Progress {
    last_processed: Option<chrono::DateTime<chrono::Utc>>,
    active_battles: i64,
    processing_rate: f64,
}

#[utoipa::path(
    get,
    path = "/api/battles/health",
    tag = "service",
    responses((status = 200, body = Health), (status = 503, body = Health))
)]
pub async fn health(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<(StatusCode, Json<Health>)> {
    QueryParams::parse(raw.as_deref(), &[])?;
    let progress = match state.pool().get().await {
        Ok(client) => progress(&client)
            .await
            .map_err(|e| format!("database: {e}")),
        Err(e) => Err(format!("database: {e}")),
    };
    let consumer = state.consumer().map_or(Ok(()), |c| c.health());
    Ok(health_answer(
        progress,
        consumer.map_err(|e| format!("consumer: {e}")),
    ))
}

fn health_answer(
    progress: Result<Progress, String>,
    consumer: Result<(), String>,
) -> (StatusCode, Json<Health>) {
    let reason = match (&progress, &consumer) {
        (Err(db), _) => Some(db.clone()),
        (Ok(_), Err(c)) => Some(c.clone()),
        (Ok(_), Ok(())) => None,
    };
    let progress = progress.ok();
    let health = Health {
        status: if reason.is_none() {
            "healthy"
        } else {
            "unhealthy"
        }
        .to_owned(),
        reason: reason.clone(),
        last_processed: progress.as_ref().and_then(|p| p.last_processed),
        active_battles: progress.as_ref().map(|p| p.active_battles),
        processing_rate: progress.as_ref().map(|p| p.processing_rate),
    };
    let status = match reason {
        None => StatusCode::OK,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(health))
}

async fn progress(client: &Client) -> Result<Progress, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT (SELECT max(updated_at) FROM source_offsets), \
               (SELECT coalesce(sum(battles), 0)::bigint FROM battle_counts WHERE status = 'open'), \
               (SELECT count(*) FROM killmails WHERE received_at > now() - interval '5 minutes')",
            &[],
        )
        .await?;
    let recent: i64 = row.get(2);
    Ok(Progress {
        last_processed: row.get(0),
        active_battles: row.get(1),
        processing_rate: recent as f64 / 300.0,
    })
}

#[utoipa::path(
    get,
    path = "/api/battles/stats",
    tag = "service",
    responses((status = 200, body = Stats))
)]
pub async fn stats(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Stats>> {
    QueryParams::parse(raw.as_deref(), &[])?;
    let client = state.pool().get().await?;
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(battles), 0)::bigint FROM battle_counts), \
               (SELECT coalesce(sum(battles), 0)::bigint FROM battle_counts WHERE status = 'open'), \
               (SELECT count(*) FILTER (WHERE event_type = 'battle.created') FROM battle_events_outbox \
                  WHERE created_at > now() - interval '24 hours'), \
               (SELECT count(*) FILTER (WHERE event_type = 'battle.updated') FROM battle_events_outbox \
                  WHERE created_at > now() - interval '24 hours'), \
               (SELECT count(*) FROM killmails WHERE received_at > now() - interval '24 hours')",
            &[],
        )
        .await?;
    Ok(Json(Stats {
        total_battles: row.get(0),
        active_battles: row.get(1),
        last24_hours: Last24Hours {
            battles_created: row.get(2),
            battles_updated: row.get(3),
            killmails_processed: row.get(4),
            avg_clustering_time: state.consumer().and_then(|c| c.avg_clustering_ms()),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress {
            last_processed: None,
            active_battles: 3,
            processing_rate: 0.5,
        }
    }

    #[test]
    fn healthy_only_when_database_and_consumer_are() {
        let (status, Json(h)) = health_answer(Ok(progress()), Ok(()));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h.status, "healthy");
        assert_eq!(h.reason, None);
        assert_eq!(h.active_battles, Some(3));
        let (status, Json(h)) = health_answer(Ok(progress()), Err("consumer: lagging".into()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(h.reason.as_deref(), Some("consumer: lagging"));
        let (status, Json(h)) = health_answer(Err("database: down".into()), Ok(()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(h.status, "unhealthy");
        assert_eq!(h.active_battles, None);
    }
}
