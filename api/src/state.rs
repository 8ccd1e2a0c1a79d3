//! [`ApiState`]: what every handler shares: the PostgreSQL pool, the settings, the names
//! resolver, the Prometheus handle and, under `battles run`, a view of the consumer.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_postgres::NoTls;

use crate::names::NameResolver;
use crate::settings::ApiSettings;
use crate::totals::TotalsCache;

/// Filters whose totals are kept at once (a few hundred bytes each).
const TOTALS_CACHE_CAPACITY: usize = 10_000;

/// What the process consuming killmails (`battles run`) tells the API about itself.
pub trait ConsumerStatus: Send + Sync {
    /// `Err(reason)` when the consumer is not keeping up (stopped, failing, lagging).
    fn health(&self) -> Result<(), String>;
    /// Mean clustering time per killmail over the last 24 hours, in milliseconds.
    fn avg_clustering_ms(&self) -> Option<f64>;
}

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    settings: ApiSettings,
    names: Option<NameResolver>,
    metrics: PrometheusHandle,
    consumer: Option<Arc<dyn ConsumerStatus>>,
    totals: Arc<TotalsCache>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the PostgreSQL pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
    #[error("cannot build the ESI client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot install the Prometheus recorder: {0}")]
    Metrics(String),
}

impl ApiState {
    /// A state over `pool`; the Prometheus recorder is installed once per process.
    pub fn new(pool: Pool, settings: ApiSettings) -> Result<ApiState, StateError> {
        let metrics = crate::metrics::prometheus_handle().map_err(StateError::Metrics)?;
        let names = match settings.names.enabled {
            true => Some(NameResolver::new(&settings.names)?),
            false => None,
        };
        let totals = Arc::new(TotalsCache::new(
            settings.total_cache_ttl,
            TOTALS_CACHE_CAPACITY,
        ));
        Ok(ApiState {
            inner: Arc::new(Inner {
                pool,
                settings,
                names,
                metrics,
                consumer: None,
                totals,
            }),
        })
    }

    /// The same state, reporting `consumer` in health and stats (for `battles run`).
    pub fn with_consumer(self, consumer: Arc<dyn ConsumerStatus>) -> ApiState {
        let inner = &self.inner;
        ApiState {
            inner: Arc::new(Inner {
                pool: inner.pool.clone(),
                settings: inner.settings.clone(),
                names: inner.names.clone(),
                metrics: inner.metrics.clone(),
                consumer: Some(consumer),
                totals: inner.totals.clone(),
            }),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    pub fn names(&self) -> Option<&NameResolver> {
        self.inner.names.as_ref()
    }

    /// The recent totals of filtered lists.
    pub fn totals(&self) -> &TotalsCache {
        &self.inner.totals
    }

    pub fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }

    pub fn consumer(&self) -> Option<&Arc<dyn ConsumerStatus>> {
        self.inner.consumer.as_ref()
    }
}

/// A pool of `size` sessions to `config`, each with `statement_timeout` set, so no query of the
/// API outlives it.
pub fn pool(
    mut config: tokio_postgres::Config,
    size: usize,
    statement_timeout: Duration,
) -> Result<Pool, StateError> {
    let options = format!("-c statement_timeout={}", statement_timeout.as_millis());
    let options = match config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {options}"),
        _ => options,
    };
    config.options(&options);
    config.application_name("battles-api");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()?)
}
