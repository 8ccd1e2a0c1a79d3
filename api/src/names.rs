//! Names for ids the killmails did not name. ESI killmails carry no names at all; the optional
//! [`NameResolver`] asks ESI's `POST /universe/names/` for them (at most `batch_size` ids per
//! request; a refused batch is split in halves until the bad id is isolated) and caches every
//! answer, found or refused, in `entity_names`, asking again only after `refresh_after`. While
//! ESI is failing it is left alone for a minute. Without the resolver, unnamed stays `null`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Client;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::settings::NameResolverSettings;

/// How long ESI is left alone after a failure.
const PAUSE_AFTER_FAILURE_SECS: i64 = 60;

/// Names known for some ids.
#[derive(Debug, Default)]
pub struct Names(HashMap<i64, String>);

impl Names {
    /// The name to show: the stored one when the killmails carried it, else the resolved one.
    pub fn pick(&self, stored: Option<&str>, id: i64) -> Option<String> {
        match stored.filter(|s| !s.is_empty()) {
            Some(name) => Some(name.to_owned()),
            None => self.0.get(&id).cloned(),
        }
    }
}

/// Ids without a stored name, gathered while reading rows.
#[derive(Debug, Default)]
pub struct Unnamed(Vec<i64>);

impl Unnamed {
    /// Notes `id` when its stored name is missing or empty.
    pub fn note(&mut self, stored: Option<&str>, id: Option<i64>) {
        if let Some(id) = id.filter(|&id| id > 0) {
            if stored.is_none_or(str::is_empty) {
                self.0.push(id);
            }
        }
    }
}

/// Resolves `unnamed` when a resolver is configured; no names (and no query) otherwise.
pub async fn resolve(
    resolver: Option<&NameResolver>,
    client: &Client,
    unnamed: Unnamed,
) -> ApiResult<Names> {
    match resolver {
        Some(resolver) if !unnamed.0.is_empty() => resolver.resolve(client, unnamed.0).await,
        _ => Ok(Names::default()),
    }
}

/// The ESI client and its cache policy.
#[derive(Clone, Debug)]
pub struct NameResolver {
    http: reqwest::Client,
    url: String,
    batch_size: usize,
    refresh_after: Duration,
    paused_until: Arc<AtomicI64>,
}

#[derive(Debug, thiserror::Error)]
pub enum EsiError {
    /// ESI refused the batch (400/404: it holds an id ESI does not know).
    #[error("ESI refused the ids ({0})")]
    Refused(reqwest::StatusCode),
    #[error("ESI request failed: {0}")]
    Failed(#[from] reqwest::Error),
    #[error("ESI answered {0}")]
    Status(reqwest::StatusCode),
}

/// One entry of ESI's answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct EsiName {
    pub id: i64,
    pub name: String,
    pub category: String,
}

/// What ESI said about some ids: names found, and ids refused on their own.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub found: Vec<EsiName>,
    pub refused: Vec<i64>,
}

/// A cached `entity_names` row.
struct Cached {
    id: i64,
    name: Option<String>,
    fresh: bool,
}

impl NameResolver {
    pub fn new(settings: &NameResolverSettings) -> Result<NameResolver, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .user_agent(concat!("battles-api/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(NameResolver {
            http,
            url: format!(
                "{}/universe/names/",
                settings.esi_base_url.trim_end_matches('/')
            ),
            batch_size: settings.batch_size.clamp(1, 1_000),
            refresh_after: settings.refresh_after,
            paused_until: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Names of `ids`: from the cache, asking ESI for those missing or stale.
    pub async fn resolve(&self, client: &Client, mut ids: Vec<i64>) -> ApiResult<Names> {
        ids.sort_unstable();
        ids.dedup();
        let cached = self.read_cache(client, &ids).await?;
        let mut names = HashMap::new();
        let mut known = HashMap::new();
        for row in cached {
            known.insert(row.id, row.fresh);
            if let Some(name) = row.name {
                names.insert(row.id, name);
            }
        }
        let ask: Vec<i64> = ids
            .into_iter()
            .filter(|id| known.get(id) != Some(&true))
            .collect();
        if !ask.is_empty() && !self.paused() {
            match self.ask_esi(&ask).await {
                Ok(resolution) => {
                    self.write_cache(client, &resolution).await?;
                    names.extend(resolution.found.into_iter().map(|n| (n.id, n.name)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, ids = ask.len(), "ESI names lookup failed; pausing it");
                    self.pause();
                }
            }
        }
        Ok(Names(names))
    }

    /// Asks ESI for `ids`, `batch_size` at a time; a refused batch is split in halves until
    /// each refused id stands alone.
    pub async fn ask_esi(&self, ids: &[i64]) -> Result<Resolution, EsiError> {
        let mut resolution = Resolution::default();
        for batch in ids.chunks(self.batch_size) {
            let mut pending = vec![batch];
            while let Some(part) = pending.pop() {
                match self.post_names(part).await {
                    Ok(found) => resolution.found.extend(found),
                    Err(EsiError::Refused(_)) if part.len() == 1 => {
                        resolution.refused.push(part[0])
                    }
                    Err(EsiError::Refused(_)) => {
                        let (left, right) = part.split_at(part.len() / 2);
                        pending.push(right);
                        pending.push(left);
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(resolution)
    }

    async fn post_names(&self, ids: &[i64]) -> Result<Vec<EsiName>, EsiError> {
        let response = self.http.post(&self.url).json(ids).send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::BAD_REQUEST {
            return Err(EsiError::Refused(status));
        }
        if !status.is_success() {
            return Err(EsiError::Status(status));
        }
        Ok(response.json().await?)
    }

    async fn read_cache(&self, client: &Client, ids: &[i64]) -> ApiResult<Vec<Cached>> {
        let statement = client
            .prepare_cached(
                "SELECT id, name, resolved_at > now() - make_interval(secs => $2) \
                 FROM entity_names WHERE id = ANY($1)",
            )
            .await?;
        let rows = client
            .query(&statement, &[&ids, &self.refresh_after.as_secs_f64()])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Cached {
                id: r.get(0),
                name: r.get(1),
                fresh: r.get(2),
            })
            .collect())
    }

    async fn write_cache(&self, client: &Client, resolution: &Resolution) -> ApiResult<()> {
        let mut ids = Vec::new();
        let mut names: Vec<Option<&str>> = Vec::new();
        let mut categories: Vec<Option<&str>> = Vec::new();
        for n in &resolution.found {
            ids.push(n.id);
            names.push(Some(&n.name));
            categories.push(Some(&n.category));
        }
        for &id in &resolution.refused {
            ids.push(id);
            names.push(None);
            categories.push(None);
        }
        if ids.is_empty() {
            return Ok(());
        }
        client
            .execute(
                "INSERT INTO entity_names (id, name, category, resolved_at) \
                 SELECT u.id, u.name, u.category, now() \
                 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, name, category) \
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
                   category = EXCLUDED.category, resolved_at = EXCLUDED.resolved_at",
                &[&ids, &names, &categories],
            )
            .await?;
        Ok(())
    }

    fn paused(&self) -> bool {
        Utc::now().timestamp() < self.paused_until.load(Ordering::Relaxed)
    }

    fn pause(&self) {
        let until = Utc::now().timestamp() + PAUSE_AFTER_FAILURE_SECS;
        self.paused_until.store(until, Ordering::Relaxed);
    }
}
