//! `GET /api/killmails/{id}/battle`: which visible battle holds a killmail.

use axum::extract::{Path, RawQuery, State};
use axum::Json;

use crate::error::{ApiError, ApiResult};
use crate::params::{id_segment, QueryParams};
use crate::shapes::KillmailBattle;
use crate::state::ApiState;

#[utoipa::path(
    get,
    path = "/api/killmails/{id}/battle",
    tag = "battles",
    params(("id" = i64, Path, description = "Killmail id")),
    responses(
        (status = 200, body = KillmailBattle),
        (status = 400, body = crate::shapes::ErrorBody),
        (status = 404, body = crate::shapes::ErrorBody),
    )
)]
pub async fn killmail_battle(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<KillmailBattle>> {
    let killmail_id = id_segment("id", &id)?;
    QueryParams::parse(raw.as_deref(), &[])?;
    let client = state.pool().get().await?;
    let statement = client
        .prepare_cached(
            "SELECT k.battle_id FROM battle_killmails k JOIN battles b ON b.id = k.battle_id \
             WHERE k.killmail_id = $1 AND b.deleted_at IS NULL LIMIT 1",
        )
        .await?;
    let row = client
        .query_opt(&statement, &[&killmail_id])
        .await?
        .ok_or_else(|| ApiError::NotFound {
            resource: "battle of killmail",
            id: killmail_id.to_string(),
        })?;
    Ok(Json(KillmailBattle {
        killmail_id,
        battle_id: row.get(0),
    }))
}
