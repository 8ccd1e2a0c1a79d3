//! `GET /api/battles/{id}`: one battle in full, read in one query (the battle row joined with
//! its `battle_statistics` row; a battle of one killmail without that row has its statistics
//! rebuilt from its participant and killmail rows, two more small queries), plus one names-cache query when the resolver is on and some
//! entity is unnamed. Ship type names and system security come from the embedded SDE.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use deadpool_postgres::Client;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::names::{self, Names, Unnamed};
use crate::params::{uuid_segment, QueryParams, Team};
use crate::routes::battle_ref::{moved_or_missing, outcome, team_totals, SUMMARY_COLUMNS};
use crate::shapes::{
    AllianceShare, BattleDetail, DetailStatistics, Place, ShipTypeCount, SystemDetail, TeamDetail,
    TopKiller, TopLoser,
};
use crate::sql::{bigint, int, name};
use crate::state::ApiState;
use crate::universe::StaticData;

/// `battle_statistics.top_killers` entries as the sink writes them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKiller {
    character_id: i64,
    #[serde(default)]
    name: String,
    team: String,
    kills: i32,
    isk_destroyed: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredLoser {
    character_id: i64,
    #[serde(default)]
    name: String,
    team: String,
    deaths: i32,
    isk_lost: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredAlliance {
    alliance_id: i64,
    #[serde(default)]
    name: String,
    pilots: i32,
    isk_destroyed: i64,
    isk_lost: i64,
}

/// The statistics JSON of one battle (empty when it has no statistics row).
#[derive(Default)]
pub(crate) struct StoredStatistics {
    top_killers: Vec<StoredKiller>,
    top_losers: Vec<StoredLoser>,
    ship_types: [BTreeMap<String, i32>; 2],
    alliances: [Vec<StoredAlliance>; 2],
}

impl StoredStatistics {
    /// The statistics of the battle of `row` ([`battle_row`]): its `battle_statistics` row,
    /// or, for a battle of one killmail that has none, the statistics the sink left out
    /// because they follow from its participant and killmail rows (`battles_sink::derived`).
    pub(crate) async fn of_battle(
        client: &Client,
        row: &Row,
        id: Uuid,
    ) -> ApiResult<StoredStatistics> {
        let derived = !row.get::<_, bool>("has_statistics")
            && usize::try_from(int(row, "total_killmails"))
                == Ok(battles_sink::derived::DERIVED_STATISTICS_KILLMAILS);
        if !derived {
            return StoredStatistics::from_row(row, id);
        }
        let system_name: Option<String> = row.get("primary_system_name");
        let s = battles_sink::derived::load_derived_statistics(
            client,
            id,
            row.get("primary_system_id"),
            system_name.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(|e| match e {
            battles_sink::SinkError::Database(e) => ApiError::Database(e),
            other => ApiError::Inconsistent(format!("battle {id}: {other}")),
        })?;
        Ok(StoredStatistics {
            top_killers: as_stored(&s.top_killers, "top_killers", id)?,
            top_losers: as_stored(&s.top_losers, "top_losers", id)?,
            ship_types: [
                as_stored(&s.team_a_ship_types, "team_a_ship_types", id)?,
                as_stored(&s.team_b_ship_types, "team_b_ship_types", id)?,
            ],
            alliances: [
                as_stored(&s.team_a_alliances, "team_a_alliances", id)?,
                as_stored(&s.team_b_alliances, "team_b_alliances", id)?,
            ],
        })
    }

    /// The statistics of the `battle_statistics` columns of `row` (defaults when NULL).
    pub(crate) fn from_row(row: &Row, id: Uuid) -> ApiResult<StoredStatistics> {
        Ok(StoredStatistics {
            top_killers: json_column(row, "top_killers", id)?,
            top_losers: json_column(row, "top_losers", id)?,
            ship_types: [
                json_column(row, "team_a_ship_types", id)?,
                json_column(row, "team_b_ship_types", id)?,
            ],
            alliances: [
                json_column(row, "team_a_alliances", id)?,
                json_column(row, "team_b_alliances", id)?,
            ],
        })
    }

    pub(crate) fn unnamed(&self) -> Unnamed {
        let mut unnamed = Unnamed::default();
        for k in &self.top_killers {
            unnamed.note(Some(&k.name), Some(k.character_id));
        }
        for l in &self.top_losers {
            unnamed.note(Some(&l.name), Some(l.character_id));
        }
        for a in self.alliances.iter().flatten() {
            unnamed.note(Some(&a.name), Some(a.alliance_id));
        }
        unnamed
    }
}

/// Derived statistics read as the JSON the sink would have stored for them.
fn as_stored<T: serde::Serialize, U: DeserializeOwned>(
    value: &T,
    column: &str,
    id: Uuid,
) -> ApiResult<U> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::Inconsistent(format!("battle {id}: derived {column}: {e}")))
}

/// A JSONB column decoded, its default when NULL.
fn json_column<T: DeserializeOwned + Default>(row: &Row, column: &str, id: Uuid) -> ApiResult<T> {
    match row.get::<_, Option<serde_json::Value>>(column) {
        None => Ok(T::default()),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            ApiError::Inconsistent(format!("battle {id}: battle_statistics.{column}: {e}"))
        }),
    }
}

#[utoipa::path(
    get,
    path = "/api/battles/{id}",
    tag = "battles",
    params(("id" = Uuid, Path, description = "Battle id")),
    responses(
        (status = 200, body = BattleDetail),
        (status = 308, description = "The battle merged into another; Location names it", body = crate::shapes::ErrorBody),
        (status = 400, body = crate::shapes::ErrorBody),
        (status = 404, body = crate::shapes::ErrorBody),
    )
)]
pub async fn battle_detail(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<BattleDetail>> {
    let id = uuid_segment("id", &id)?;
    QueryParams::parse(raw.as_deref(), &[])?;
    let client = state.pool().get().await?;
    let Some(row) = battle_row(&client, id).await? else {
        return Err(moved_or_missing(&client, id, "", raw.as_deref()).await);
    };
    let stored = StoredStatistics::of_battle(&client, &row, id).await?;
    let names = names::resolve(state.names(), &client, stored.unnamed()).await?;
    Ok(Json(detail_from(&row, stored, &names)))
}

pub(crate) async fn battle_row(client: &Client, id: Uuid) -> ApiResult<Option<Row>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, b.last_killmail_at, b.created_at, b.updated_at, \
           s.top_killers, s.top_losers, s.team_a_ship_types, s.team_b_ship_types, \
           s.team_a_alliances, s.team_b_alliances, s.battle_id IS NOT NULL AS has_statistics \
         FROM battles b LEFT JOIN battle_statistics s ON s.battle_id = b.id \
         WHERE b.id = $1 AND b.deleted_at IS NULL"
    );
    let statement = client.prepare_cached(&sql).await?;
    Ok(client.query_opt(&statement, &[&id]).await?)
}

pub(crate) fn detail_from(row: &Row, stored: StoredStatistics, names: &Names) -> BattleDetail {
    let system_id: i64 = row.get("primary_system_id");
    let StoredStatistics {
        top_killers,
        top_losers,
        ship_types: [ships_a, ships_b],
        alliances: [allies_a, allies_b],
    } = stored;
    BattleDetail {
        id: row.get("id"),
        started_at: row.get("started_at"),
        ended_at: row.get("ended_at"),
        duration: int(row, "duration_seconds"),
        primary_system: SystemDetail {
            id: system_id,
            name: name(row, "primary_system_name"),
            security: StaticData::embedded().security(system_id),
        },
        primary_region: Place {
            id: row.get("primary_region_id"),
            name: name(row, "primary_region_name"),
        },
        statistics: DetailStatistics {
            total_killmails: int(row, "total_killmails"),
            total_pilots: int(row, "total_pilots"),
            total_isk_destroyed: bigint(row, "total_isk_destroyed"),
            team_a: team_detail(row, Team::A, allies_a, ships_a, names),
            team_b: team_detail(row, Team::B, allies_b, ships_b, names),
            top_killers: top_killers.into_iter().map(|k| killer(k, names)).collect(),
            top_losers: top_losers.into_iter().map(|l| loser(l, names)).collect(),
        },
        outcome: outcome(row),
        status: row.get("status"),
        last_killmail_at: row.get("last_killmail_at"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn team_detail(
    row: &Row,
    team: Team,
    alliances: Vec<StoredAlliance>,
    ship_types: BTreeMap<String, i32>,
    names: &Names,
) -> TeamDetail {
    let totals = team_totals(row, team);
    TeamDetail {
        pilots: totals.pilots,
        isk_destroyed: totals.isk_destroyed,
        isk_lost: totals.isk_lost,
        ships_destroyed: totals.ships_destroyed,
        ships_lost: totals.ships_lost,
        top_alliances: alliances
            .into_iter()
            .map(|a| AllianceShare {
                alliance_name: names.pick(Some(&a.name), a.alliance_id),
                alliance_id: a.alliance_id,
                pilots: a.pilots,
                isk_destroyed: a.isk_destroyed,
                isk_lost: a.isk_lost,
            })
            .collect(),
        ship_types: ship_types
            .into_iter()
            .map(|(type_id, count)| {
                let name = type_id
                    .parse()
                    .ok()
                    .and_then(|id| StaticData::embedded().type_name(id))
                    .map(str::to_owned);
                (type_id, ShipTypeCount { name, count })
            })
            .collect(),
    }
}

fn killer(k: StoredKiller, names: &Names) -> TopKiller {
    TopKiller {
        character_name: names.pick(Some(&k.name), k.character_id),
        character_id: k.character_id,
        team: k.team,
        kills: k.kills,
        isk_destroyed: k.isk_destroyed,
    }
}

fn loser(l: StoredLoser, names: &Names) -> TopLoser {
    TopLoser {
        character_name: names.pick(Some(&l.name), l.character_id),
        character_id: l.character_id,
        team: l.team,
        deaths: l.deaths,
        isk_lost: l.isk_lost,
    }
}
