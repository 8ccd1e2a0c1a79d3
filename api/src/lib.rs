//! The battle query REST API (axum): every endpoint of the Battle Service spec plus a few more,
//! reading PostgreSQL only (the engine is never imported). The caller binds the listener and
//! builds [`ApiSettings`]; [`serve`] runs until `shutdown` completes, so tests bind port 0.
//!
//! - [`routes::router`]: the endpoints and their layers (reusable by `battles run`), with the
//!   web pages of [`pages`] (`/`, `/battles/{id}`, ...).
//! - [`ApiState`]: the pool, the settings, the optional ESI [`names::NameResolver`].
//! - [`ApiError`]: every failure as one status and one JSON body.

pub mod auth;
pub mod error;
pub mod metrics;
pub mod names;
pub mod pages;
pub mod params;
pub mod report;
pub mod routes;
pub mod settings;
pub mod shapes;
pub mod sql;
pub mod state;
pub mod totals;
pub mod universe;

use std::future::Future;

pub use error::ApiError;
pub use routes::{router, ApiDoc};
pub use settings::{ApiSettings, NameResolverSettings, Secret};
pub use state::{pool, ApiState, ConsumerStatus, StateError};

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
