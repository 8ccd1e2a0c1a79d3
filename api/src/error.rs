//! [`ApiError`]: every way a request can fail, each mapped to one status and one JSON body
//! `{"error": <code>, "message": <text>, ...}`. Bad input is always a 4xx naming the parameter;
//! only the database or a bug gives a 5xx, and then the body says no more than "internal error"
//! (the detail goes to the log).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query, path or body parameter is unknown, repeated or malformed.
    #[error("invalid parameter {parameter}: {reason}")]
    InvalidParameter { parameter: String, reason: String },
    /// The request body is not the JSON the endpoint takes.
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// No such resource (or it was soft-deleted).
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// The battle ended in a merge; `location` is the same request on the battle that continues it.
    #[error("battle {ended} continues as battle {battle_id}")]
    MergedInto {
        ended: Uuid,
        battle_id: Uuid,
        location: String,
    },
    /// An admin endpoint without an `Authorization: Bearer` header.
    #[error("admin endpoint: send Authorization: Bearer <token>")]
    Unauthorized,
    /// An admin endpoint with a wrong token, or with no token configured.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The route does not exist.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// The route exists, but not for this method.
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: String },
    /// The request body is larger than `limit` bytes.
    #[error("request body over {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The request took longer than the configured time limit.
    #[error("the request took longer than its time limit")]
    TimedOut,
    /// The database or the pool failed.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A stored value does not have the shape the schema promises.
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
}

impl ApiError {
    /// `parameter` is invalid because `reason`.
    pub fn invalid(parameter: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::InvalidParameter {
            parameter: parameter.into(),
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter { .. } | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TimedOut => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MergedInto { .. } => StatusCode::PERMANENT_REDIRECT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(e) if timed_out(e) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) | ApiError::Inconsistent(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::NotFound { .. } | ApiError::NoRoute(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::TimedOut => "unavailable",
            ApiError::MergedInto { .. } => "merged",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Pool(_) => "unavailable",
            ApiError::Database(e) if timed_out(e) => "unavailable",
            ApiError::Database(_) | ApiError::Inconsistent(_) => "internal",
        }
    }

    fn body(&self) -> Value {
        let message = match self {
            ApiError::TimedOut => self.to_string(),
            _ if self.status().is_server_error() => "internal error".to_owned(),
            _ => self.to_string(),
        };
        let mut body = json!({ "error": self.code(), "message": message });
        match self {
            ApiError::InvalidParameter { parameter, reason } => {
                body["parameter"] = json!(parameter);
                body["reason"] = json!(reason);
            }
            ApiError::MergedInto { battle_id, .. } => body["battleId"] = json!(battle_id),
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if let ApiError::MergedInto { location, .. } = &self {
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
        }
        if let ApiError::Unauthorized = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// True when PostgreSQL cancelled the statement (`statement_timeout`): the server is busy, not
/// broken, so the answer is 503.
fn timed_out(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
