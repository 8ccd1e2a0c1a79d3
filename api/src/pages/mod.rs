//! The battle report web pages: server-rendered HTML (maud) served by the same router as the
//! API, so `battles serve` and `battles run` both serve them. No script, no front-end build,
//! nothing fetched from elsewhere: the stylesheet is embedded in the binary and inlined, charts
//! are SVG drawn here. Every page reads through the API's own query functions (and
//! [`crate::report`] for what the API does not answer), validates its parameters with the API's
//! rules, and fails the API's way in HTML: 400 naming the parameter, 404, 308 for a merged
//! battle.
//!
//! - [`list`]: `/`, the battle list with the API's filters, sorts and paging.
//! - [`report`]: `/battles/{id}`, the report.
//! - [`characters`]: `/battles/{id}/characters`, the battle's pilots.
//! - [`kills`]: `/battles/{id}/kills`, the battle's killmails, linked to zKillboard.
//! - [`search`]: `/search?q=`, a killmail id, system, alliance or battle id to its page.
//! - [`chart`]: the SVG timeline.

pub mod characters;
pub mod chart;
pub mod kills;
pub mod list;
pub mod report;
pub mod search;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::ApiState;

/// The stylesheet, inlined in every page.
const STYLE: &str = include_str!("style.css");

/// The page routes (merged into [`crate::routes::router`]).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(list::list_page))
        .route("/search", get(search::search))
        .route("/battles/{id}", get(report::report_page))
        .route("/battles/{id}/characters", get(characters::characters_page))
        .route("/battles/{id}/kills", get(kills::kills_page))
}

/// A page or the HTML form of an error.
pub type PageResult = Result<Response, PageError>;

/// An [`ApiError`] answered as a page. A merged battle redirects to the page of the battle that
/// continues it.
#[derive(Debug)]
pub struct PageError {
    error: ApiError,
    /// The path after `/battles/{id}` and the query, carried into a merge redirect.
    suffix: String,
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        PageError {
            error,
            suffix: String::new(),
        }
    }
}

impl From<deadpool_postgres::PoolError> for PageError {
    fn from(error: deadpool_postgres::PoolError) -> PageError {
        ApiError::from(error).into()
    }
}

impl PageError {
    /// The error, redirecting a merged battle to `/battles/{new}{suffix}`.
    pub fn with_suffix(error: ApiError, suffix: String) -> PageError {
        PageError { error, suffix }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        if let ApiError::MergedInto { battle_id, .. } = &self.error {
            let location = format!("/battles/{battle_id}{}", self.suffix);
            let mut response = (
                StatusCode::PERMANENT_REDIRECT,
                html_page(
                    "Battle merged",
                    html! {
                        h1 { "This battle merged" }
                        p { "It continues as " a href=(location) { "battle " (battle_id) } "." }
                    },
                ),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        if status.is_server_error() {
            tracing::error!(error = %self.error, "page failed");
        }
        let (title, detail) = match &self.error {
            ApiError::InvalidParameter { parameter, reason } => (
                "Bad request".to_owned(),
                html! {
                    p { "Parameter " code.param { (parameter) } ": " (reason) "." }
                },
            ),
            ApiError::NotFound { resource, id } => (
                "Not found".to_owned(),
                html! { p { "No " (resource) " " code { (id) } "." } },
            ),
            ApiError::NoRoute(path) => (
                "Not found".to_owned(),
                html! { p { "No page at " code { (path) } "." } },
            ),
            _ if status.is_server_error() => (
                match status {
                    StatusCode::SERVICE_UNAVAILABLE => "Busy, try again".to_owned(),
                    _ => "Internal error".to_owned(),
                },
                html! {},
            ),
            other => (status.to_string(), html! { p { (other.to_string()) } }),
        };
        let body = html! {
            section.error {
                h1 { (status.as_u16()) " · " (title) }
                (detail)
                p { a href="/" { "Back to the battles" } }
            }
        };
        (status, html_page(&title, body)).into_response()
    }
}

/// A complete HTML document.
pub fn html_page(title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Battles" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header.top {
                    a.brand href="/" { "⚔ Battles" }
                    form.search action="/search" method="get" role="search" {
                        input type="search" name="q" placeholder="Killmail id, system, alliance or battle id"
                            aria-label="Search";
                        button type="submit" { "Search" }
                    }
                }
                main { (body) }
                footer { "Battle reports clustered from killmails · " a href="/api/battles/openapi.json" { "API" } }
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// The query string without empty parameters (an HTML form sends every field, empty or not;
/// the API's validation refuses empty values), or `None` when nothing is left.
pub fn form_query(raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        if !value.trim().is_empty() {
            out.append_pair(&name, &value);
            any = true;
        }
    }
    any.then(|| out.finish())
}

/// `query` with `name` set to `value` (or removed when `None`), for links that change one
/// parameter and keep the others.
pub fn with_param(query: Option<&str>, name: &str, value: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut set = false;
    for (n, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if n == name {
            if let (Some(value), false) = (value, set) {
                out.append_pair(name, value);
                set = true;
            }
        } else {
            out.append_pair(&n, &v);
        }
    }
    if let (Some(value), false) = (value, set) {
        out.append_pair(name, value);
    }
    out.finish()
}

/// The value of `name` in `query`, if given.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// ISK as players write it: 1.23b, 450.0m, 12.5k.
pub fn isk(value: i64) -> String {
    let v = value as f64;
    let (scaled, unit) = match value.abs() {
        a if a >= 1_000_000_000_000 => (v / 1e12, "t"),
        a if a >= 1_000_000_000 => (v / 1e9, "b"),
        a if a >= 1_000_000 => (v / 1e6, "m"),
        a if a >= 1_000 => (v / 1e3, "k"),
        _ => return value.to_string(),
    };
    format!("{scaled:.2}{unit}")
}

/// A duration in seconds as `2h 05m`, `12m 30s` or `45s`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

/// An instant as `2021-11-28 10:20` (UTC).
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// Destroyed / (destroyed + lost), in percent; `None` when the side neither killed nor lost.
pub fn efficiency(destroyed: i64, lost: i64) -> Option<f64> {
    let total = destroyed as f64 + lost as f64;
    (total > 0.0).then(|| 100.0 * destroyed as f64 / total)
}

/// A name when known, else the id (`#123`), never a made-up name.
pub fn name_or_id(name: Option<&str>, id: i64) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => format!("#{id}"),
    }
}

/// The side's label.
pub fn team_label(team: &str) -> &'static str {
    match team {
        "team_a" => "Team A",
        "team_b" => "Team B",
        _ => "?",
    }
}

/// The CSS class of a side.
pub fn team_class(team: &str) -> &'static str {
    match team {
        "team_a" => "a",
        "team_b" => "b",
        _ => "",
    }
}

/// A link to the same page filtered to `team` (both sides, labelled `none`, when `None`).
pub fn team_link(
    query: Option<&str>,
    none: &str,
    team: Option<crate::params::Team>,
    current: Option<crate::params::Team>,
) -> Markup {
    let label = match team {
        None => none,
        Some(t) => team_label(t.as_str()),
    };
    let link = with_param(query, "team", team.map(|t| t.as_str()));
    let link = with_param(Some(&link), "offset", None);
    html! {
        a href={ "?" (link) } class=[(team == current).then_some("current")] { (label) } " "
    }
}

/// The navigation of a battle's pages; `current` is highlighted.
pub fn battle_nav(id: Uuid, current: &str) -> Markup {
    let report = format!("/battles/{id}");
    let tabs = [
        ("teams", format!("{report}#teams"), "Teams"),
        ("alliances", format!("{report}#alliances"), "Alliances"),
        (
            "corporations",
            format!("{report}#corporations"),
            "Corporations",
        ),
        ("timeline", format!("{report}#timeline"), "Timeline"),
        ("characters", format!("{report}/characters"), "Characters"),
        ("kills", format!("{report}/kills"), "Kills"),
    ];
    html! {
        nav.tabs {
            @for (key, href, label) in &tabs {
                a href=(href) class=[(*key == current).then_some("current")] { (label) }
            }
            a href={ "/api/battles/" (id) } { "JSON" }
        }
    }
}

/// Links to the previous and next page of `limit` rows.
pub fn pager(query: Option<&str>, offset: i64, limit: i64, shown: usize, total: i64) -> Markup {
    let prev = (offset > 0).then(|| {
        let o = (offset - limit).max(0).to_string();
        format!("?{}", with_param(query, "offset", Some(&o)))
    });
    let next = (offset + (shown as i64) < total).then(|| {
        let o = (offset + limit).to_string();
        format!("?{}", with_param(query, "offset", Some(&o)))
    });
    let first = if shown == 0 { offset } else { offset + 1 };
    html! {
        nav.pager {
            @if let Some(prev) = prev { a rel="prev" href=(prev) { "← Previous" } }
            span { (first) "–" (offset + shown as i64) " of " (total) }
            @if let Some(next) = next { a rel="next" href=(next) { "Next →" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isk_is_written_as_players_write_it() {
        assert_eq!(isk(950), "950");
        assert_eq!(isk(12_500), "12.50k");
        assert_eq!(isk(450_000_000), "450.00m");
        assert_eq!(isk(1_234_000_000), "1.23b");
        assert_eq!(isk(2_500_000_000_000), "2.50t");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(750), "12m 30s");
        assert_eq!(duration(4 * 3600 + 300), "4h 05m");
    }

    #[test]
    fn efficiency_is_destroyed_over_both() {
        assert_eq!(efficiency(0, 0), None);
        assert_eq!(efficiency(3, 1), Some(75.0));
        assert_eq!(efficiency(0, 5), Some(0.0));
    }

    #[test]
    fn empty_form_fields_are_dropped() {
        assert_eq!(
            form_query(Some("regionId=&minIsk=5&status=")),
            Some("minIsk=5".into())
        );
        assert_eq!(form_query(Some("regionId=&status=")), None);
        assert_eq!(form_query(None), None);
    }

    #[test]
    fn links_change_one_parameter() {
        assert_eq!(
            with_param(Some("a=1&offset=50"), "offset", Some("100")),
            "a=1&offset=100"
        );
        assert_eq!(
            with_param(Some("a=1"), "sort", Some("-pilots")),
            "a=1&sort=-pilots"
        );
        assert_eq!(with_param(Some("a=1&offset=5"), "offset", None), "a=1");
        assert_eq!(param(Some("q=Jita&x=1"), "q").as_deref(), Some("Jita"));
    }
}
