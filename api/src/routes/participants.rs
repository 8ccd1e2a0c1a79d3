//! `GET /api/battles/{id}/participants`: a battle's characters, filtered by `team` and
//! `allianceId`, sorted by kills, deaths or ISK destroyed (default `-kills`, ties by character
//! id), paged. Two pipelined queries: the battle's existence with the filtered count, and the page.
//! Unfiltered, the count is the battle row's `total_pilots` (the engine defines it as the number
//! of participants, and the sink writes both in one transaction).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use deadpool_postgres::Client;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::names::{self, Names, Unnamed};
use crate::params::{uuid_segment, Paging, QueryParams, Sort, Team};
use crate::routes::battle_ref::moved_or_missing;
use crate::shapes::{Entity, PagePosition, Participant, ParticipantList, ShipFlown};
use crate::sql::{bigint, int, name, Conditions};
use crate::state::ApiState;
use crate::universe::StaticData;

const PARAMETERS: &[&str] = &["team", "allianceId", "sort", "limit", "offset"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Kills,
    Deaths,
    IskDestroyed,
}

const SORT_KEYS: [(&str, SortKey); 3] = [
    ("kills", SortKey::Kills),
    ("deaths", SortKey::Deaths),
    ("isk_destroyed", SortKey::IskDestroyed),
];

fn order_by(sort: Sort<SortKey>) -> &'static str {
    match (sort.key, sort.descending) {
        (SortKey::Kills, true) => "p.kills DESC, p.character_id",
        (SortKey::Kills, false) => "p.kills ASC, p.character_id",
        (SortKey::Deaths, true) => "p.deaths DESC, p.character_id",
        (SortKey::Deaths, false) => "p.deaths ASC, p.character_id",
        (SortKey::IskDestroyed, true) => "p.isk_destroyed DESC, p.character_id",
        (SortKey::IskDestroyed, false) => "p.isk_destroyed ASC, p.character_id",
    }
}

/// The validated request.
pub(crate) struct Request {
    pub(crate) team: Option<Team>,
    alliance_id: Option<i64>,
    sort: Sort<SortKey>,
    pub(crate) paging: Paging,
}

impl Request {
    pub(crate) fn from_params(raw: Option<&str>) -> ApiResult<Request> {
        let q = QueryParams::parse(raw, PARAMETERS)?;
        let default = Sort {
            key: SortKey::Kills,
            descending: true,
        };
        Ok(Request {
            team: q.choice("team", &Team::CHOICES)?,
            alliance_id: q.id("allianceId")?,
            sort: q.sort("sort", &SORT_KEYS, default)?,
            paging: q.paging()?,
        })
    }

    /// The conditions on `battle_participants p` after `p.battle_id = $1`.
    /// True when a filter narrows the rows (the count is then computed, not read).
    fn filtered(&self) -> bool {
        self.team.is_some() || self.alliance_id.is_some()
    }

    fn conditions(&self, battle: Uuid) -> Conditions {
        let mut c = Conditions::default();
        c.add("p.battle_id = $?", battle);
        c.add_some("p.team = $?", self.team.map(|t| t.as_str().to_owned()));
        c.add_some("p.alliance_id = $?", self.alliance_id);
        c
    }
}

#[utoipa::path(
    get,
    path = "/api/battles/{id}/participants",
    tag = "battles",
    params(
        ("id" = Uuid, Path, description = "Battle id"),
        ("team" = Option<String>, Query, description = "team_a or team_b"),
        ("allianceId" = Option<i64>, Query, description = "Only this alliance's pilots"),
        ("sort" = Option<String>, Query, description = "kills, deaths or isk_destroyed; prefix - for descending (default -kills)"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 50"),
        ("offset" = Option<i64>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, body = ParticipantList),
        (status = 308, description = "The battle merged into another; Location names it", body = crate::shapes::ErrorBody),
        (status = 400, body = crate::shapes::ErrorBody),
        (status = 404, body = crate::shapes::ErrorBody),
    )
)]
pub async fn battle_participants(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<ParticipantList>> {
    let id = uuid_segment("id", &id)?;
    let request = Request::from_params(raw.as_deref())?;
    let client = state.pool().get().await?;
    let (total, rows) = futures_util::try_join!(
        filtered_count(&client, &request, id),
        page(&client, &request, id)
    )?;
    let Some(total) = total else {
        return Err(moved_or_missing(&client, id, "/participants", raw.as_deref()).await);
    };
    let mut unnamed = Unnamed::default();
    for row in &rows {
        note_unnamed(&mut unnamed, row);
    }
    let names = names::resolve(state.names(), &client, unnamed).await?;
    Ok(Json(ParticipantList {
        participants: rows.iter().map(|r| participant(r, &names)).collect(),
        pagination: PagePosition {
            total,
            limit: request.paging.limit,
            offset: request.paging.offset,
        },
    }))
}

/// The filtered participant count, `None` when no visible battle has `id`.
pub(crate) async fn filtered_count(
    client: &Client,
    request: &Request,
    id: Uuid,
) -> ApiResult<Option<i64>> {
    if !request.filtered() {
        let statement = client
            .prepare_cached(
                "SELECT coalesce(b.total_pilots, 0)::bigint FROM battles b \
                 WHERE b.id = $1 AND b.deleted_at IS NULL",
            )
            .await?;
        return Ok(client
            .query_opt(&statement, &[&id])
            .await?
            .map(|r| r.get(0)));
    }
    let mut c = request.conditions(id);
    let battle = c.bind(id);
    let sql = format!(
        "SELECT (SELECT count(*) FROM battle_participants p WHERE {}) \
         FROM battles b WHERE b.id = {battle} AND b.deleted_at IS NULL",
        c.where_sql()
    );
    let statement = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&statement, &c.params())
        .await?
        .map(|r| r.get(0)))
}

pub(crate) async fn page(client: &Client, request: &Request, id: Uuid) -> ApiResult<Vec<Row>> {
    let mut c = request.conditions(id);
    let limit = c.bind(request.paging.limit);
    let offset = c.bind(request.paging.offset);
    let sql = format!(
        "SELECT p.character_id, p.character_name, p.corporation_id, p.corporation_name, \
           p.alliance_id, p.alliance_name, p.team, p.ships_flown, p.kills, p.deaths, \
           p.damage_done, p.damage_received, p.isk_destroyed, p.isk_lost, \
           p.first_seen_at, p.last_seen_at \
         FROM battle_participants p WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        c.where_sql(),
        order_by(request.sort)
    );
    let statement = client.prepare_cached(&sql).await?;
    Ok(client.query(&statement, &c.params()).await?)
}

pub(crate) fn note_unnamed(unnamed: &mut Unnamed, row: &Row) {
    for (name_column, id_column) in [
        ("character_name", "character_id"),
        ("corporation_name", "corporation_id"),
        ("alliance_name", "alliance_id"),
    ] {
        let stored: Option<&str> = row.get(name_column);
        unnamed.note(stored, row.get(id_column));
    }
}

pub(crate) fn participant(row: &Row, names: &Names) -> Participant {
    let character_id: i64 = row.get("character_id");
    Participant {
        character_id,
        character_name: names.pick(name(row, "character_name").as_deref(), character_id),
        corporation: entity(row, "corporation_id", "corporation_name", names),
        alliance: entity(row, "alliance_id", "alliance_name", names),
        team: row.get("team"),
        ships_flown: ships_flown(row),
        kills: int(row, "kills"),
        deaths: int(row, "deaths"),
        damage_done: bigint(row, "damage_done"),
        damage_received: bigint(row, "damage_received"),
        isk_destroyed: bigint(row, "isk_destroyed"),
        isk_lost: bigint(row, "isk_lost"),
        first_seen_at: row.get("first_seen_at"),
        last_seen_at: row.get("last_seen_at"),
    }
}

fn entity(row: &Row, id_column: &str, name_column: &str, names: &Names) -> Option<Entity> {
    let id: i64 = row.get::<_, Option<i64>>(id_column)?;
    Some(Entity {
        id,
        name: names.pick(name(row, name_column).as_deref(), id),
    })
}

/// `ships_flown` is a JSON array of ship type ids.
fn ships_flown(row: &Row) -> Vec<ShipFlown> {
    let ids: Option<serde_json::Value> = row.get("ships_flown");
    let data = StaticData::embedded();
    ids.as_ref()
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_i64)
        .map(|id| ShipFlown {
            ship_type_id: id,
            ship_type_name: data.type_name(id).map(str::to_owned),
        })
        .collect()
}
