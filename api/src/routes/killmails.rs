//! `GET /api/battles/{id}/killmails`: a battle's killmails, filtered by victim `team`, sorted
//! by time (default, ascending) or ISK destroyed (ties by killmail id), paged. Two pipelined
//! queries: the battle's existence with the filtered count, and the page. Unfiltered, the count
//! is the battle row's `total_killmails` (the number of its killmails, written with them).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use deadpool_postgres::Client;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::params::{uuid_segment, Paging, QueryParams, Sort, Team};
use crate::routes::battle_ref::moved_or_missing;
use crate::shapes::{Killmail, KillmailList, PagePosition};
use crate::sql::{bigint, Conditions};
use crate::state::ApiState;

const PARAMETERS: &[&str] = &["team", "sort", "limit", "offset"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Time,
    IskDestroyed,
}

const SORT_KEYS: [(&str, SortKey); 2] = [
    ("time", SortKey::Time),
    ("isk_destroyed", SortKey::IskDestroyed),
];

fn order_by(sort: Sort<SortKey>) -> &'static str {
    match (sort.key, sort.descending) {
        (SortKey::Time, false) => "k.killmail_time ASC, k.killmail_id ASC",
        (SortKey::Time, true) => "k.killmail_time DESC, k.killmail_id DESC",
        (SortKey::IskDestroyed, false) => "k.isk_destroyed ASC, k.killmail_id ASC",
        (SortKey::IskDestroyed, true) => "k.isk_destroyed DESC, k.killmail_id ASC",
    }
}

pub(crate) struct Request {
    pub(crate) team: Option<Team>,
    sort: Sort<SortKey>,
    pub(crate) paging: Paging,
}

impl Request {
    pub(crate) fn from_params(raw: Option<&str>) -> ApiResult<Request> {
        let q = QueryParams::parse(raw, PARAMETERS)?;
        let default = Sort {
            key: SortKey::Time,
            descending: false,
        };
        Ok(Request {
            team: q.choice("team", &Team::CHOICES)?,
            sort: q.sort("sort", &SORT_KEYS, default)?,
            paging: q.paging()?,
        })
    }

    /// True when a filter narrows the rows (the count is then computed, not read).
    fn filtered(&self) -> bool {
        self.team.is_some()
    }

    fn conditions(&self, battle: Uuid) -> Conditions {
        let mut c = Conditions::default();
        c.add("k.battle_id = $?", battle);
        c.add_some(
            "k.victim_team = $?",
            self.team.map(|t| t.as_str().to_owned()),
        );
        c
    }
}

#[utoipa::path(
    get,
    path = "/api/battles/{id}/killmails",
    tag = "battles",
    params(
        ("id" = Uuid, Path, description = "Battle id"),
        ("team" = Option<String>, Query, description = "Victim team: team_a or team_b"),
        ("sort" = Option<String>, Query, description = "time or isk_destroyed; prefix - for descending (default time)"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 50"),
        ("offset" = Option<i64>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, body = KillmailList),
        (status = 308, description = "The battle merged into another; Location names it", body = crate::shapes::ErrorBody),
        (status = 400, body = crate::shapes::ErrorBody),
        (status = 404, body = crate::shapes::ErrorBody),
    )
)]
pub async fn battle_killmails(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<KillmailList>> {
    let id = uuid_segment("id", &id)?;
    let request = Request::from_params(raw.as_deref())?;
    let client = state.pool().get().await?;
    let (total, rows) = futures_util::try_join!(
        filtered_count(&client, &request, id),
        page(&client, &request, id)
    )?;
    let Some(total) = total else {
        return Err(moved_or_missing(&client, id, "/killmails", raw.as_deref()).await);
    };
    Ok(Json(KillmailList {
        killmails: rows.iter().map(killmail).collect(),
        pagination: PagePosition {
            total,
            limit: request.paging.limit,
            offset: request.paging.offset,
        },
    }))
}

/// The filtered killmail count, `None` when no visible battle has `id`.
pub(crate) async fn filtered_count(
    client: &Client,
    request: &Request,
    id: Uuid,
) -> ApiResult<Option<i64>> {
    if !request.filtered() {
        let statement = client
            .prepare_cached(
                "SELECT coalesce(b.total_killmails, 0)::bigint FROM battles b \
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
        "SELECT (SELECT count(*) FROM battle_killmails k WHERE {}) \
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
        "SELECT k.killmail_id, k.killmail_time, k.system_id, k.victim_character_id, \
           k.victim_alliance_id, k.victim_ship_type_id, k.victim_team, k.isk_destroyed \
         FROM battle_killmails k WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        c.where_sql(),
        order_by(request.sort)
    );
    let statement = client.prepare_cached(&sql).await?;
    Ok(client.query(&statement, &c.params()).await?)
}

pub(crate) fn killmail(row: &Row) -> Killmail {
    Killmail {
        killmail_id: row.get("killmail_id"),
        killmail_time: row.get("killmail_time"),
        system_id: row.get("system_id"),
        victim_character_id: row.get("victim_character_id"),
        victim_alliance_id: row.get("victim_alliance_id"),
        victim_ship_type_id: row.get("victim_ship_type_id"),
        victim_team: row.get("victim_team"),
        isk_destroyed: bigint(row, "isk_destroyed"),
    }
}
