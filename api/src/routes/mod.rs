//! The routes and the layers around them: request ids (`x-request-id`, made when absent and
//! echoed back), a tracing span per request carrying that id, Prometheus metrics, optional
//! CORS, a time limit (503) and a body size limit (413). Unknown paths answer a JSON 404 under
//! `/api/`, an HTML one elsewhere.

pub mod battle_ref;
pub mod detail;
pub mod health;
pub mod killmails;
pub mod list;
pub mod lookup;
pub mod participants;
pub mod recluster;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::settings::ApiSettings;
use crate::state::ApiState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The OpenAPI document, generated from the handlers and shapes.
#[derive(OpenApi)]
#[openapi(
    info(title = "Battles API", description = "EVE Online battle reports clustered from killmails"),
    paths(
        health::health,
        health::stats,
        list::list_battles,
        detail::battle_detail,
        participants::battle_participants,
        killmails::battle_killmails,
        recluster::create_job,
        recluster::read_job,
        lookup::killmail_battle,
    ),
    modifiers(&BearerSecurity)
)]
pub struct ApiDoc;

/// Declares the admin endpoints' bearer scheme.
struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Unknown paths: a JSON 404 under the API's prefixes, an HTML one elsewhere (the pages).
async fn no_route(uri: Uri) -> Response {
    let path = uri.path();
    let error = ApiError::NoRoute(path.to_owned());
    match path.starts_with("/api/") || path == "/api" || path == "/metrics" {
        true => error.into_response(),
        false => crate::pages::PageError::from(error).into_response(),
    }
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}

/// The answers that tower's limit and timeout layers give without a body of ours (413, 503)
/// become [`ApiError`]s, so every error has the one JSON shape.
async fn json_error_bodies(limit: usize, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let ours = content_type.is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    match response.status() {
        _ if ours => response,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { limit }.into_response(),
        StatusCode::SERVICE_UNAVAILABLE if content_type.is_none() => {
            ApiError::TimedOut.into_response()
        }
        _ => response,
    }
}

/// Every endpoint and web page with its layers; `battles serve` and `battles run` both serve
/// this.
pub fn router(state: ApiState) -> Router {
    let settings = state.settings().clone();
    let routes = Router::new()
        .route("/api/battles", get(list::list_battles))
        .route("/api/battles/health", get(health::health))
        .route("/api/battles/stats", get(health::stats))
        .route("/api/battles/openapi.json", get(openapi_json))
        .route("/api/battles/recluster", post(recluster::create_job))
        .route("/api/battles/recluster/jobs/{id}", get(recluster::read_job))
        .route("/api/battles/{id}", get(detail::battle_detail))
        .route(
            "/api/battles/{id}/participants",
            get(participants::battle_participants),
        )
        .route(
            "/api/battles/{id}/killmails",
            get(killmails::battle_killmails),
        )
        .route("/api/killmails/{id}/battle", get(lookup::killmail_battle))
        .route("/metrics", get(crate::metrics::render))
        .merge(crate::pages::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    with_layers(routes, &settings)
}

fn with_layers(routes: Router, settings: &ApiSettings) -> Router {
    let routes = match cors(&settings.cors_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    let limit = settings.max_body_bytes;
    routes
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(axum::middleware::from_fn(move |request, next| {
            json_error_bodies(limit, request, next)
        }))
        .layer(axum::middleware::from_fn(crate::metrics::record_request))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The span of one request: method, path and request id.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

/// CORS for `origins` (`*` for any); `None` when no origin is allowed.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = match origins.iter().any(|o| o == "*") {
        true => AllowOrigin::from(Any),
        false => AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(Any)
            .expose_headers([
                REQUEST_ID,
                HeaderName::from_static(list::TOTAL_ESTIMATED_HEADER),
            ]),
    )
}
