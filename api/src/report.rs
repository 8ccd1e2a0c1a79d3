//! The queries the battle report pages need and the REST API has none for: the per-minute
//! timeline of kills and ISK by side, the systems fought in, ships lost by type, corporations
//! with their pilots, the third parties, and the victims of a page of killmails. Each reads one
//! battle's rows through the `battle_id` indexes of `battle_killmails` and `battle_participants`
//! (and `battle_third_parties`' primary key), so its cost follows the battle, not the database.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::names::{Names, Unnamed};
use crate::sql::{bigint, name};

/// Killmails and ISK of one minute whose victims were on one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteLosses {
    pub minute: DateTime<Utc>,
    /// `team_a` or `team_b`: the side that lost these ships.
    pub victim_team: String,
    pub killmails: i64,
    pub isk: i64,
}

/// The battle's killmails grouped by minute and victim side, in time order.
pub async fn timeline(client: &Client, battle: Uuid) -> ApiResult<Vec<MinuteLosses>> {
    let statement = client
        .prepare_cached(
            "SELECT date_trunc('minute', k.killmail_time) AS minute, k.victim_team, \
               count(*) AS killmails, coalesce(sum(k.isk_destroyed), 0)::bigint AS isk \
             FROM battle_killmails k WHERE k.battle_id = $1 \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    Ok(rows
        .iter()
        .map(|r| MinuteLosses {
            minute: r.get("minute"),
            victim_team: r.get("victim_team"),
            killmails: r.get("killmails"),
            isk: bigint(r, "isk"),
        })
        .collect())
}

/// One solar system of a battle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemFought {
    pub system_id: i64,
    pub killmails: i64,
    pub isk: i64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// The systems the battle's killmails happened in, most killmails first.
pub async fn systems(client: &Client, battle: Uuid) -> ApiResult<Vec<SystemFought>> {
    let statement = client
        .prepare_cached(
            "SELECT k.system_id, count(*) AS killmails, \
               coalesce(sum(k.isk_destroyed), 0)::bigint AS isk, \
               min(k.killmail_time) AS first, max(k.killmail_time) AS last \
             FROM battle_killmails k WHERE k.battle_id = $1 \
             GROUP BY k.system_id ORDER BY killmails DESC, k.system_id",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    Ok(rows
        .iter()
        .map(|r| SystemFought {
            system_id: r.get("system_id"),
            killmails: r.get("killmails"),
            isk: bigint(r, "isk"),
            first: r.get("first"),
            last: r.get("last"),
        })
        .collect())
}

/// Ships of one type one side lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipsLost {
    pub victim_team: String,
    pub ship_type_id: Option<i64>,
    pub lost: i64,
    pub isk: i64,
}

/// Losses by side and ship type, most lost first.
pub async fn ships_lost(client: &Client, battle: Uuid) -> ApiResult<Vec<ShipsLost>> {
    let statement = client
        .prepare_cached(
            "SELECT k.victim_team, k.victim_ship_type_id, count(*) AS lost, \
               coalesce(sum(k.isk_destroyed), 0)::bigint AS isk \
             FROM battle_killmails k WHERE k.battle_id = $1 \
             GROUP BY 1, 2 ORDER BY lost DESC, isk DESC, 2",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    Ok(rows
        .iter()
        .map(|r| ShipsLost {
            victim_team: r.get("victim_team"),
            ship_type_id: r.get("victim_ship_type_id"),
            lost: r.get("lost"),
            isk: bigint(r, "isk"),
        })
        .collect())
}

/// A corporation's part in one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorporationShare {
    pub team: String,
    pub corporation_id: i64,
    pub name: Option<String>,
    pub alliance_id: Option<i64>,
    pub pilots: i64,
    pub kills: i64,
    pub deaths: i64,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
}

/// Corporations by side with their pilot counts, most pilots first.
pub async fn corporations(client: &Client, battle: Uuid) -> ApiResult<Vec<CorporationShare>> {
    let statement = client
        .prepare_cached(
            "SELECT p.team, p.corporation_id, max(p.corporation_name) AS corporation_name, \
               max(p.alliance_id) AS alliance_id, count(*) AS pilots, \
               coalesce(sum(p.kills), 0)::bigint AS kills, \
               coalesce(sum(p.deaths), 0)::bigint AS deaths, \
               coalesce(sum(p.isk_destroyed), 0)::bigint AS isk_destroyed, \
               coalesce(sum(p.isk_lost), 0)::bigint AS isk_lost \
             FROM battle_participants p \
             WHERE p.battle_id = $1 AND p.corporation_id IS NOT NULL \
             GROUP BY p.team, p.corporation_id \
             ORDER BY pilots DESC, isk_destroyed DESC, p.corporation_id",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    Ok(rows
        .iter()
        .map(|r| CorporationShare {
            team: r.get("team"),
            corporation_id: r.get("corporation_id"),
            name: name(r, "corporation_name"),
            alliance_id: r.get("alliance_id"),
            pilots: r.get("pilots"),
            kills: r.get("kills"),
            deaths: r.get("deaths"),
            isk_destroyed: r.get("isk_destroyed"),
            isk_lost: r.get("isk_lost"),
        })
        .collect())
}

impl CorporationShare {
    pub fn note_unnamed(&self, unnamed: &mut Unnamed) {
        unnamed.note(self.name.as_deref(), Some(self.corporation_id));
    }

    /// The name to show.
    pub fn display_name(&self, names: &Names) -> Option<String> {
        names.pick(self.name.as_deref(), self.corporation_id)
    }
}

/// A participant the engine flagged as a third party (fought on both sides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThirdParty {
    pub character_id: i64,
    pub name: Option<String>,
    pub team: String,
    pub alliance_id: Option<i64>,
    pub alliance_name: Option<String>,
}

/// The battle's third parties, by side then character id.
pub async fn third_parties(client: &Client, battle: Uuid) -> ApiResult<Vec<ThirdParty>> {
    let statement = client
        .prepare_cached(
            "SELECT t.character_id, p.character_name, p.team, p.alliance_id, p.alliance_name \
             FROM battle_third_parties t \
             JOIN battle_participants p \
               ON p.battle_id = t.battle_id AND p.character_id = t.character_id \
             WHERE t.battle_id = $1 ORDER BY p.team, t.character_id",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    Ok(rows
        .iter()
        .map(|r| ThirdParty {
            character_id: r.get("character_id"),
            name: name(r, "character_name"),
            team: r.get("team"),
            alliance_id: r.get("alliance_id"),
            alliance_name: name(r, "alliance_name"),
        })
        .collect())
}

/// The ids of the battle's third parties among `characters`.
pub async fn third_party_ids(
    client: &Client,
    battle: Uuid,
    characters: &[i64],
) -> ApiResult<HashSet<i64>> {
    let statement = client
        .prepare_cached(
            "SELECT t.character_id FROM battle_third_parties t \
             WHERE t.battle_id = $1 AND t.character_id = ANY($2)",
        )
        .await?;
    let rows = client.query(&statement, &[&battle, &characters]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What the battle's participant rows say about a victim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    pub name: Option<String>,
    pub corporation_id: Option<i64>,
    pub corporation_name: Option<String>,
    pub alliance_name: Option<String>,
}

/// The participant rows of `characters` in the battle, by character id.
pub async fn victims(
    client: &Client,
    battle: Uuid,
    characters: &[i64],
) -> ApiResult<HashMap<i64, Victim>> {
    let statement = client
        .prepare_cached(
            "SELECT p.character_id, p.character_name, p.corporation_id, p.corporation_name, \
               p.alliance_name \
             FROM battle_participants p WHERE p.battle_id = $1 AND p.character_id = ANY($2)",
        )
        .await?;
    let rows = client.query(&statement, &[&battle, &characters]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("character_id"),
                Victim {
                    name: name(r, "character_name"),
                    corporation_id: r.get("corporation_id"),
                    corporation_name: name(r, "corporation_name"),
                    alliance_name: name(r, "alliance_name"),
                },
            )
        })
        .collect())
}

/// The visible battle holding killmail `id`.
pub async fn battle_of_killmail(client: &Client, id: i64) -> ApiResult<Option<Uuid>> {
    let statement = client
        .prepare_cached(
            "SELECT k.battle_id FROM battle_killmails k JOIN battles b ON b.id = k.battle_id \
             WHERE k.killmail_id = $1 AND b.deleted_at IS NULL LIMIT 1",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .map(|r| r.get(0)))
}

/// Whether a visible battle has battle id `id`.
pub async fn battle_exists(client: &Client, id: Uuid) -> ApiResult<bool> {
    let statement = client
        .prepare_cached("SELECT 1 FROM battles b WHERE b.id = $1 AND b.deleted_at IS NULL")
        .await?;
    Ok(client.query_opt(&statement, &[&id]).await?.is_some())
}

/// Whether any participant flew for alliance `id` (one probe of the alliance index).
pub async fn alliance_seen(client: &Client, id: i64) -> ApiResult<bool> {
    let statement = client
        .prepare_cached("SELECT 1 FROM battle_participants p WHERE p.alliance_id = $1 LIMIT 1")
        .await?;
    Ok(client.query_opt(&statement, &[&id]).await?.is_some())
}

/// How many of the newest battles an alliance name is looked for in (participant names have no
/// index; this bounds the search to a few thousand battles' rows).
pub const NAME_SEARCH_BATTLES: i64 = 2_000;

/// The alliance called `name` (case-insensitive, exact): among names resolved from ESI, then
/// among the participants of the newest [`NAME_SEARCH_BATTLES`] battles.
pub async fn alliance_by_name(client: &Client, name: &str) -> ApiResult<Option<i64>> {
    let resolved = client
        .prepare_cached(
            "SELECT e.id FROM entity_names e \
             WHERE lower(e.name) = lower($1) AND e.category = 'alliance' ORDER BY e.id LIMIT 1",
        )
        .await?;
    if let Some(row) = client.query_opt(&resolved, &[&name]).await? {
        return Ok(Some(row.get(0)));
    }
    let stored = client
        .prepare_cached(
            "SELECT p.alliance_id FROM battle_participants p \
             WHERE p.battle_id IN (SELECT b.id FROM battles b WHERE b.deleted_at IS NULL \
                                   ORDER BY b.started_at DESC, b.id DESC LIMIT $2) \
               AND lower(p.alliance_name) = lower($1) AND p.alliance_id IS NOT NULL LIMIT 1",
        )
        .await?;
    Ok(client
        .query_opt(&stored, &[&name, &NAME_SEARCH_BATTLES])
        .await?
        .map(|r| r.get(0)))
}
