//! The queries the battle report pages need and the REST API has none for: the battle's
//! killmails (aggregated here into the per-minute timeline of kills and ISK by side, the systems
//! fought in and ships lost by type), corporations with their pilots, the third parties, the
//! victims of a page of killmails, and the search box's look-ups. Each reads one
//! battle's rows through the `battle_id` indexes of `battle_killmails` and `battle_participants`
//! (and `battle_third_parties`' primary key), so its cost follows the battle, not the database.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::names::{Names, Unnamed};
use crate::sql::{bigint, int, name};

/// What the report needs of one killmail of the battle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillRow {
    pub time: DateTime<Utc>,
    /// `team_a` or `team_b`: the side that lost the ship.
    pub victim_team: String,
    pub system_id: i64,
    pub ship_type_id: Option<i64>,
    pub isk: i64,
}

/// The battle's killmails, one index scan, unsorted: the timeline, systems and losses are
/// aggregated from them here ([`Kills`]), cheaper than three grouped queries.
pub async fn kill_rows(client: &Client, battle: Uuid) -> ApiResult<Vec<KillRow>> {
    let statement = client
        .prepare_cached(
            "SELECT k.killmail_time, k.victim_team, k.system_id, k.victim_ship_type_id, \
               k.isk_destroyed \
             FROM battle_killmails k WHERE k.battle_id = $1",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    Ok(rows
        .iter()
        .map(|r| KillRow {
            time: r.get("killmail_time"),
            victim_team: r.get("victim_team"),
            system_id: r.get("system_id"),
            ship_type_id: r.get("victim_ship_type_id"),
            isk: bigint(r, "isk_destroyed"),
        })
        .collect())
}

/// Killmails and ISK of one minute whose victims were on one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteLosses {
    pub minute: DateTime<Utc>,
    /// `team_a` or `team_b`: the side that lost these ships.
    pub victim_team: String,
    pub killmails: i64,
    pub isk: i64,
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

/// Ships of one type one side lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipsLost {
    pub victim_team: String,
    pub ship_type_id: Option<i64>,
    pub lost: i64,
    pub isk: i64,
}

/// The aggregates of a battle's killmails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kills {
    /// By minute, then victim side (`team_a` first).
    pub timeline: Vec<MinuteLosses>,
    /// Most killmails first, then system id.
    pub systems: Vec<SystemFought>,
    /// Most lost first, then most ISK, then ship type id.
    pub ships_lost: Vec<ShipsLost>,
}

impl Kills {
    pub fn from_rows(rows: &[KillRow]) -> Kills {
        let mut minutes: BTreeMap<(DateTime<Utc>, &str), (i64, i64)> = BTreeMap::new();
        let mut systems: HashMap<i64, SystemFought> = HashMap::new();
        let mut ships: HashMap<(&str, Option<i64>), (i64, i64)> = HashMap::new();
        for r in rows {
            let secs = r.time.timestamp();
            let minute = DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(r.time);
            let m = minutes.entry((minute, &r.victim_team)).or_default();
            m.0 += 1;
            m.1 += r.isk;
            let s = systems.entry(r.system_id).or_insert(SystemFought {
                system_id: r.system_id,
                killmails: 0,
                isk: 0,
                first: r.time,
                last: r.time,
            });
            s.killmails += 1;
            s.isk += r.isk;
            s.first = s.first.min(r.time);
            s.last = s.last.max(r.time);
            let l = ships.entry((&r.victim_team, r.ship_type_id)).or_default();
            l.0 += 1;
            l.1 += r.isk;
        }
        let timeline = minutes
            .into_iter()
            .map(|((minute, team), (killmails, isk))| MinuteLosses {
                minute,
                victim_team: team.to_owned(),
                killmails,
                isk,
            })
            .collect();
        let mut systems: Vec<SystemFought> = systems.into_values().collect();
        systems.sort_by(|a, b| {
            b.killmails
                .cmp(&a.killmails)
                .then(a.system_id.cmp(&b.system_id))
        });
        let mut ships_lost: Vec<ShipsLost> = ships
            .into_iter()
            .map(|((team, ship_type_id), (lost, isk))| ShipsLost {
                victim_team: team.to_owned(),
                ship_type_id,
                lost,
                isk,
            })
            .collect();
        ships_lost.sort_by(|a, b| {
            b.lost
                .cmp(&a.lost)
                .then(b.isk.cmp(&a.isk))
                .then(a.ship_type_id.cmp(&b.ship_type_id))
                .then(a.victim_team.cmp(&b.victim_team))
        });
        Kills {
            timeline,
            systems,
            ships_lost,
        }
    }
}

/// A corporation's part in one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorporationShare {
    pub team: String,
    pub corporation_id: i64,
    pub name: Option<String>,
    pub pilots: i64,
    pub kills: i64,
    pub deaths: i64,
}

/// Corporations by side with their pilot counts, most pilots first (then kills, then id):
/// the battle's participant rows read in one index scan and counted here (a grouped, sorted
/// query costs PostgreSQL several times more on a 1,500-pilot battle).
pub async fn corporations(client: &Client, battle: Uuid) -> ApiResult<Vec<CorporationShare>> {
    let statement = client
        .prepare_cached(
            "SELECT p.corporation_id, p.team, p.corporation_name, p.kills, p.deaths \
             FROM battle_participants p \
             WHERE p.battle_id = $1 AND p.corporation_id IS NOT NULL",
        )
        .await?;
    let rows = client.query(&statement, &[&battle]).await?;
    let mut by_corporation: HashMap<(i64, String), CorporationShare> = HashMap::new();
    for r in &rows {
        let corporation_id: i64 = r.get("corporation_id");
        let team: String = r.get("team");
        let share = by_corporation
            .entry((corporation_id, team.clone()))
            .or_insert_with(|| CorporationShare {
                team,
                corporation_id,
                name: None,
                pilots: 0,
                kills: 0,
                deaths: 0,
            });
        share.pilots += 1;
        share.kills += i64::from(int(r, "kills"));
        share.deaths += i64::from(int(r, "deaths"));
        if share.name.is_none() {
            share.name = name(r, "corporation_name");
        }
    }
    let mut shares: Vec<CorporationShare> = by_corporation.into_values().collect();
    shares.sort_by(|a, b| {
        b.pilots
            .cmp(&a.pilots)
            .then(b.kills.cmp(&a.kills))
            .then(a.corporation_id.cmp(&b.corporation_id))
            .then(a.team.cmp(&b.team))
    });
    Ok(shares)
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

/// Whether any participant of a live battle flew for alliance `id` (a probe of the alliance
/// index).
pub async fn alliance_seen(client: &Client, id: i64) -> ApiResult<bool> {
    let statement = client
        .prepare_cached(
            "SELECT 1 FROM battle_participants p JOIN battles b ON b.id = p.battle_id \
             WHERE p.alliance_id = $1 AND b.deleted_at IS NULL LIMIT 1",
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(time: &str, team: &str, system: i64, ship: i64, isk: i64) -> KillRow {
        KillRow {
            time: DateTime::parse_from_rfc3339(time)
                .unwrap()
                .with_timezone(&Utc),
            victim_team: team.into(),
            system_id: system,
            ship_type_id: Some(ship),
            isk,
        }
    }

    #[test]
    fn killmails_aggregate_by_minute_system_and_ship() {
        let rows = [
            kill("2021-11-28T10:20:59Z", "team_b", 1, 587, 10),
            kill("2021-11-28T10:20:01Z", "team_b", 2, 587, 5),
            kill("2021-11-28T10:20:30Z", "team_a", 1, 670, 1),
            kill("2021-11-28T10:22:00Z", "team_b", 1, 670, 2),
        ];
        let k = Kills::from_rows(&rows);
        let t: Vec<(String, &str, i64, i64)> = k
            .timeline
            .iter()
            .map(|m| {
                (
                    m.minute.format("%H:%M").to_string(),
                    m.victim_team.as_str(),
                    m.killmails,
                    m.isk,
                )
            })
            .collect();
        assert_eq!(
            t,
            [
                ("10:20".to_owned(), "team_a", 1, 1),
                ("10:20".to_owned(), "team_b", 2, 15),
                ("10:22".to_owned(), "team_b", 1, 2),
            ]
        );
        assert_eq!(k.systems.len(), 2);
        assert_eq!(
            (
                k.systems[0].system_id,
                k.systems[0].killmails,
                k.systems[0].isk
            ),
            (1, 3, 13)
        );
        assert_eq!(
            k.systems[0].first.format("%H:%M:%S").to_string(),
            "10:20:30"
        );
        assert_eq!(k.systems[0].last.format("%H:%M:%S").to_string(), "10:22:00");
        let lost: Vec<(&str, Option<i64>, i64)> = k
            .ships_lost
            .iter()
            .map(|s| (s.victim_team.as_str(), s.ship_type_id, s.lost))
            .collect();
        assert_eq!(
            lost,
            [
                ("team_b", Some(587), 2),
                ("team_b", Some(670), 1),
                ("team_a", Some(670), 1)
            ]
        );
    }
}
