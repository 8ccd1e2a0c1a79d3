//! [`ApiSettings`]: everything the API can be told, as a plain struct the caller builds (the
//! `battles` binary fills it from its `Config`; tests write it directly). The API never reads the
//! environment itself.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A value that must never reach a log: `Debug` prints `<redacted>`, the value only comes out
/// through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// ESI's public base URL; `POST {base}/universe/names/` resolves ids to names.
pub const ESI_BASE_URL: &str = "https://esi.evetech.net/latest";

/// How the API behaves. The listen address is not here: the caller binds the listener.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Bearer token of the admin endpoints. `None`: admin endpoints are closed (403).
    pub admin_token: Option<Secret>,
    /// Origins allowed by CORS; `"*"` allows any. Empty: no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Largest accepted request body in bytes (larger answers 413).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// PostgreSQL's `statement_timeout` for the API's sessions: a query never outlives this.
    pub statement_timeout: Duration,
    /// A filtered list whose matches the planner puts at no more than this is counted exactly;
    /// beyond it `total` is the planner's estimate (and `X-Total-Estimated: true` says so).
    pub exact_count_limit: i64,
    /// How long the total of a filtered list is reused for the same filter (zero: never).
    /// Only `pagination.total` can be this old; rows and `hasMore` are always fresh.
    pub total_cache_ttl: Duration,
    /// The optional ESI names resolver.
    pub names: NameResolverSettings,
}

/// The optional resolver of ids the killmails carried no name for.
#[derive(Clone, Debug)]
pub struct NameResolverSettings {
    /// Off by default: without it, unnamed entities answer `null`.
    pub enabled: bool,
    /// ESI base URL, e.g. `https://esi.evetech.net/latest` (tests point it at a fake server).
    pub esi_base_url: String,
    /// Ids per `POST /universe/names/` request (ESI accepts at most 1,000).
    pub batch_size: usize,
    /// A cached name older than this is asked again.
    pub refresh_after: Duration,
    /// Longest one ESI request may take.
    pub request_timeout: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            admin_token: None,
            cors_origins: Vec::new(),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(5),
            exact_count_limit: 2_000,
            total_cache_ttl: Duration::from_secs(5),
            names: NameResolverSettings::default(),
        }
    }
}

impl Default for NameResolverSettings {
    fn default() -> Self {
        NameResolverSettings {
            enabled: false,
            esi_base_url: ESI_BASE_URL.to_owned(),
            batch_size: 1_000,
            refresh_after: Duration::from_secs(30 * 24 * 3600),
            request_timeout: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = ApiSettings {
            admin_token: Some(Secret::new("s3cret-token")),
            ..ApiSettings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(settings.admin_token.unwrap().expose(), "s3cret-token");
    }
}
