//! `/search?q=`: the search box. `q` is tried, in order, as
//! - a battle id (UUID): its report (which redirects a merged battle, or answers 404);
//! - a number: the battle holding that killmail, else the battles of that alliance, else of
//!   that solar system;
//! - a name: the battles of that solar system (SDE names, any case), else of that alliance
//!   (names resolved from ESI, or carried by the participants of the newest battles).
//!
//! A hit answers 303 to the page; nothing found is a 404 page; a missing `q` a 400 naming it.

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use deadpool_postgres::Client;

use crate::error::{ApiError, ApiResult};
use crate::params::QueryParams;
use crate::report as queries;
use crate::state::ApiState;
use crate::universe::StaticData;

use super::PageResult;

pub async fn search(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> PageResult {
    let q = QueryParams::parse(raw.as_deref(), &["q"])?;
    let text = q
        .text("q")
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::invalid(
                "q",
                "is required: a killmail id, system, alliance or battle id",
            )
        })?
        .to_owned();
    let client = state.pool().get().await?;
    match target(&client, &text).await? {
        Some(location) => Ok(see_other(&location)),
        None => Err(ApiError::NotFound {
            resource: "battle, killmail, system or alliance matching",
            id: text,
        }
        .into()),
    }
}

/// Where `text` leads, if anywhere.
pub async fn target(client: &Client, text: &str) -> ApiResult<Option<String>> {
    if let Ok(id) = uuid::Uuid::parse_str(text) {
        return Ok(Some(format!("/battles/{id}")));
    }
    let data = StaticData::embedded();
    if let Ok(number) = text.parse::<i64>() {
        if number <= 0 {
            return Ok(None);
        }
        if let Some(battle) = queries::battle_of_killmail(client, number).await? {
            return Ok(Some(format!("/battles/{battle}")));
        }
        if queries::alliance_seen(client, number).await? {
            return Ok(Some(format!("/?allianceId={number}")));
        }
        if data.system_name(number).is_some() {
            return Ok(Some(format!("/?systemId={number}")));
        }
        return Ok(None);
    }
    if let Some(system) = data.system_by_name(text) {
        return Ok(Some(format!("/?systemId={system}")));
    }
    Ok(queries::alliance_by_name(client, text)
        .await?
        .map(|alliance| format!("/?allianceId={alliance}")))
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}
