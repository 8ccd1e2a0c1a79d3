//! The admin endpoints of re-clustering: `POST /api/battles/recluster` records a pending
//! `clustering_jobs` row (the service's job runner, `battles::recluster`, takes it up between
//! stream steps) and answers 202;
//! `GET /api/battles/recluster/jobs/{id}` reads one back. Both need the admin token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::NaiveDate;
use tokio_postgres::Row;

use crate::auth::require_admin;
use crate::error::{ApiError, ApiResult};
use crate::params::uuid_segment;
use crate::settings::Secret;
use crate::shapes::{JobProgress, ReclusterAccepted, ReclusterJob, ReclusterRequest};
use crate::state::ApiState;

/// The queue's priorities (`battles_sink::jobs::Priority` owns them; the API does not link the
/// sink, which carries the engine: a unit test in the service crate checks the two agree).
pub const PRIORITIES: [&str; 3] = ["low", "normal", "high"];

/// A validated re-clustering request.
#[derive(Debug, PartialEq, Eq)]
struct Job {
    start_date: NaiveDate,
    end_date: NaiveDate,
    priority: &'static str,
}

fn parse_job(body: &[u8]) -> ApiResult<Job> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let request: ReclusterRequest =
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            match e.path().to_string().as_str() {
                "." => ApiError::InvalidBody(e.inner().to_string()),
                path => ApiError::invalid(path, e.inner().to_string()),
            }
        })?;
    let start_date = date("startDate", &request.start_date)?;
    let end_date = date("endDate", &request.end_date)?;
    if end_date < start_date {
        return Err(ApiError::invalid("endDate", "is before startDate"));
    }
    let given = request.priority.as_deref().unwrap_or("normal");
    let priority = PRIORITIES
        .into_iter()
        .find(|p| *p == given)
        .ok_or_else(|| {
            ApiError::invalid(
                "priority",
                format!("{given:?} is not one of low, normal, high"),
            )
        })?;
    Ok(Job {
        start_date,
        end_date,
        priority,
    })
}

fn date(parameter: &str, text: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            parameter,
            format!("not an ISO 8601 date (2025-11-24): {text:?}"),
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/battles/recluster",
    tag = "admin",
    request_body = ReclusterRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, body = ReclusterAccepted),
        (status = 400, body = crate::shapes::ErrorBody),
        (status = 401, body = crate::shapes::ErrorBody),
        (status = 403, body = crate::shapes::ErrorBody),
    )
)]
pub async fn create_job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ReclusterAccepted>)> {
    require_admin(
        &headers,
        state.settings().admin_token.as_ref().map(Secret::expose),
    )?;
    let job = parse_job(&body)?;
    let client = state.pool().get().await?;
    let row = client
        .query_one(
            "INSERT INTO clustering_jobs (job_type, start_date, end_date, status, priority) \
             VALUES ('reclustering', $1, $2, 'pending', $3) RETURNING id, status",
            &[&job.start_date, &job.end_date, &job.priority],
        )
        .await?;
    let accepted = ReclusterAccepted {
        job_id: row.get("id"),
        status: row.get("status"),
        start_date: job.start_date,
        end_date: job.end_date,
        priority: job.priority.to_owned(),
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

#[utoipa::path(
    get,
    path = "/api/battles/recluster/jobs/{id}",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReclusterJob),
        (status = 400, body = crate::shapes::ErrorBody),
        (status = 401, body = crate::shapes::ErrorBody),
        (status = 403, body = crate::shapes::ErrorBody),
        (status = 404, body = crate::shapes::ErrorBody),
    )
)]
pub async fn read_job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ReclusterJob>> {
    require_admin(
        &headers,
        state.settings().admin_token.as_ref().map(Secret::expose),
    )?;
    let id = uuid_segment("id", &id)?;
    let client = state.pool().get().await?;
    let row = client
        .query_opt(
            "SELECT id, status, start_date, end_date, killmails_processed, battles_created, \
               battles_updated, battles_deleted, started_at \
             FROM clustering_jobs WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::NotFound {
            resource: "re-clustering job",
            id: id.to_string(),
        })?;
    Ok(Json(job_from(&row)))
}

fn job_from(row: &Row) -> ReclusterJob {
    let count = |column: &str| row.get::<_, Option<i32>>(column).unwrap_or(0);
    ReclusterJob {
        job_id: row.get("id"),
        status: row.get("status"),
        start_date: row.get("start_date"),
        end_date: row.get("end_date"),
        progress: JobProgress {
            killmails_processed: count("killmails_processed"),
            battles_created: count("battles_created"),
            battles_updated: count("battles_updated"),
            battles_deleted: count("battles_deleted"),
        },
        started_at: row.get("started_at"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter_of(body: &str) -> String {
        match parse_job(body.as_bytes()).unwrap_err() {
            ApiError::InvalidParameter { parameter, .. } => parameter,
            ApiError::InvalidBody(_) => ".".to_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_request_defaults_to_normal_priority() {
        let job = parse_job(br#"{"startDate":"2025-11-24","endDate":"2025-11-25"}"#).unwrap();
        assert_eq!(job.priority, "normal");
        assert_eq!(
            job.start_date,
            NaiveDate::from_ymd_opt(2025, 11, 24).unwrap()
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            parameter_of(r#"{"startDate":"2025-11-32","endDate":"2025-11-25"}"#),
            "startDate"
        );
        assert_eq!(
            parameter_of(r#"{"startDate":"2025-11-26","endDate":"2025-11-25"}"#),
            "endDate"
        );
        assert_eq!(
            parameter_of(
                r#"{"startDate":"2025-11-24","endDate":"2025-11-25","priority":"urgent"}"#
            ),
            "priority"
        );
        assert_eq!(
            parameter_of(r#"{"startDate":5,"endDate":"2025-11-25"}"#),
            "startDate"
        );
        assert_eq!(parameter_of(r#"{"endDate":"2025-11-25"}"#), ".");
        assert_eq!(parameter_of("not json"), ".");
    }
}
