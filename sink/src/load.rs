//! Reading back what the sink wrote: the stored killmails (to rebuild the engine's state on
//! start), the source offsets (to resume), and whole battle reports (for checks and tests).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use battles_dataflow::killmail::Killmail;
use battles_dataflow::report::{
    BattleKillmail, BattleReport, Participant, Statistics, Team, TeamTotals,
};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::changes::BattleStatus;
use crate::derived::{derived_statistics, DERIVED_STATISTICS_KILLMAILS};
use crate::error::SinkError;
use crate::sink::{with_retry, Sink};

impl Sink {
    /// Calls `f` with every stored killmail whose time is in `range` (all when `None`), in
    /// (time, id) order, streaming rather than collecting.
    pub async fn for_each_killmail(
        &self,
        range: Option<Range<DateTime<Utc>>>,
        mut f: impl FnMut(Killmail),
    ) -> Result<u64, SinkError> {
        let client = self.pool().get().await?;
        let (from, to) = match range {
            Some(r) => (Some(r.start), Some(r.end)),
            None => (None, None),
        };
        let stream = client
            .query_raw(
                "SELECT killmail_id, record FROM killmails
                 WHERE ($1::timestamptz IS NULL OR killmail_time >= $1)
                   AND ($2::timestamptz IS NULL OR killmail_time < $2)
                 ORDER BY killmail_time, killmail_id",
                [&from as &(dyn tokio_postgres::types::ToSql + Sync), &to],
            )
            .await?;
        let mut stream = std::pin::pin!(stream);
        let mut n = 0;
        while let Some(row) = stream.try_next().await? {
            f(killmail_of(&row)?);
            n += 1;
        }
        Ok(n)
    }

    /// Every stored killmail whose time is in `range` (all when `None`), in (time, id) order.
    pub async fn load_killmails(
        &self,
        range: Option<Range<DateTime<Utc>>>,
    ) -> Result<Vec<Killmail>, SinkError> {
        let mut out = Vec::new();
        self.for_each_killmail(range, |k| out.push(k)).await?;
        Ok(out)
    }

    /// (time in Unix seconds, killmail id) of every stored killmail, sorted: lets a driver see
    /// without a query whether a time range holds stored killmails.
    pub async fn stored_killmail_times(&self) -> Result<Vec<(i64, i64)>, SinkError> {
        with_retry(self.config().retry, "load killmail times", || async {
            let client = self.pool().get().await?;
            let rows = client
                .query(
                    "SELECT extract(epoch FROM killmail_time)::int8, killmail_id FROM killmails
                     ORDER BY 1, 2",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// The stored neighbourhood of some time ranges: every killmail of every stored battle
    /// that has a killmail in one of `ranges`, plus stored killmails in them that no battle
    /// holds, each once. This is what the engine must hold to cluster a late killmail in a
    /// range (widened by the link window) exactly as if it had come on time. Killmails of
    /// battles that retention soft-deleted are left out: they are history no one clusters
    /// again.
    pub async fn load_neighbourhood(
        &self,
        ranges: &[Range<DateTime<Utc>>],
    ) -> Result<Vec<Killmail>, SinkError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let starts: Vec<DateTime<Utc>> = ranges.iter().map(|r| r.start).collect();
        let ends: Vec<DateTime<Utc>> = ranges.iter().map(|r| r.end).collect();
        with_retry(self.config().retry, "load neighbourhood", || async {
            let client = self.pool().get().await?;
            let rows = client
                .query(
                    "WITH near AS (
                       SELECT DISTINCT k.killmail_id
                       FROM unnest($1::timestamptz[], $2::timestamptz[]) AS r(lo, hi)
                       JOIN killmails k ON k.killmail_time >= r.lo AND k.killmail_time < r.hi
                       WHERE NOT EXISTS (
                           SELECT 1 FROM battle_killmails bk JOIN battles b ON b.id = bk.battle_id
                           WHERE bk.killmail_id = k.killmail_id AND b.deleted_at IS NOT NULL)),
                     touched AS (
                       SELECT DISTINCT bk.battle_id FROM battle_killmails bk
                       JOIN near USING (killmail_id))
                     SELECT k.killmail_id, k.record FROM killmails k
                     WHERE k.killmail_id IN (
                       SELECT bk.killmail_id FROM battle_killmails bk JOIN touched USING (battle_id)
                       UNION SELECT killmail_id FROM near)
                     ORDER BY k.killmail_time, k.killmail_id",
                    &[&starts, &ends],
                )
                .await?;
            rows.into_iter().map(|row| killmail_of(&row)).collect()
        })
        .await
    }

    /// Every stored killmail in `range` that no soft-deleted battle holds, in (time, id) order:
    /// the input of re-clustering (retention's deletions are not clustered again).
    pub async fn load_live_killmails(
        &self,
        range: Range<DateTime<Utc>>,
    ) -> Result<Vec<Killmail>, SinkError> {
        with_retry(self.config().retry, "load killmails", || async {
            let client = self.pool().get().await?;
            let rows = client
                .query(
                    "SELECT k.killmail_id, k.record FROM killmails k
                     WHERE k.killmail_time >= $1 AND k.killmail_time < $2
                       AND NOT EXISTS (
                         SELECT 1 FROM battle_killmails bk JOIN battles b ON b.id = bk.battle_id
                         WHERE bk.killmail_id = k.killmail_id AND b.deleted_at IS NOT NULL)
                     ORDER BY k.killmail_time, k.killmail_id",
                    &[&range.start, &range.end],
                )
                .await?;
            rows.into_iter().map(|row| killmail_of(&row)).collect()
        })
        .await
    }

    /// The live (not soft-deleted) stored battles holding any of `killmails`, each with the
    /// (id, time) of every killmail it holds.
    pub async fn battles_holding(
        &self,
        killmails: &[i64],
    ) -> Result<HashMap<Uuid, Vec<(i64, DateTime<Utc>)>>, SinkError> {
        with_retry(self.config().retry, "load battles of killmails", || async {
            let client = self.pool().get().await?;
            let rows = client
                .query(
                    "WITH held AS (
                       SELECT DISTINCT bk.battle_id FROM battle_killmails bk
                       JOIN battles b ON b.id = bk.battle_id
                       WHERE bk.killmail_id = ANY($1) AND b.deleted_at IS NULL)
                     SELECT bk.battle_id, bk.killmail_id, bk.killmail_time
                     FROM battle_killmails bk JOIN held USING (battle_id)",
                    &[&killmails],
                )
                .await?;
            let mut out: HashMap<Uuid, Vec<(i64, DateTime<Utc>)>> = HashMap::new();
            for r in rows {
                out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
            }
            Ok(out)
        })
        .await
    }

    /// Whether the live service has written here: some battle is `open` or `closed` (a
    /// backfill writes `historical` only).
    pub async fn has_live_battles(&self) -> Result<bool, SinkError> {
        with_retry(self.config().retry, "live battles", || async {
            let client = self.pool().get().await?;
            Ok(client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM battles WHERE status IN ('open', 'closed'))",
                    &[],
                )
                .await?
                .get(0))
        })
        .await
    }

    /// The time of the newest stored killmail, if any.
    pub async fn newest_killmail_time(&self) -> Result<Option<DateTime<Utc>>, SinkError> {
        with_retry(self.config().retry, "newest killmail", || async {
            let client = self.pool().get().await?;
            Ok(client
                .query_one("SELECT max(killmail_time) FROM killmails", &[])
                .await?
                .get(0))
        })
        .await
    }

    /// Source key -> committed position.
    pub async fn load_offsets(&self) -> Result<BTreeMap<String, i64>, SinkError> {
        with_retry(self.config().retry, "load offsets", || async {
            let client = self.pool().get().await?;
            let rows = client
                .query("SELECT source_key, position FROM source_offsets", &[])
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// Ended battle id -> the battle that continues it.
    pub async fn load_aliases(&self) -> Result<BTreeMap<Uuid, Uuid>, SinkError> {
        let client = self.pool().get().await?;
        let rows = client
            .query("SELECT ended_battle_id, battle_id FROM battle_aliases", &[])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every stored battle rebuilt as the report that produced it, with its status, by id.
    /// `first_killmail_id` comes from the earliest battle killmail, `isk_estimated` from the
    /// `isk_estimated` column of the stored killmails, `third_party` from
    /// `battle_third_parties`.
    pub async fn load_reports(
        &self,
    ) -> Result<BTreeMap<Uuid, (BattleReport, BattleStatus)>, SinkError> {
        self.load_reports_where(None).await
    }

    /// [`Sink::load_reports`] of the battles `ids` only (those that exist).
    pub async fn load_reports_of(
        &self,
        ids: &[Uuid],
    ) -> Result<BTreeMap<Uuid, (BattleReport, BattleStatus)>, SinkError> {
        self.load_reports_where(Some(ids)).await
    }

    async fn load_reports_where(
        &self,
        ids: Option<&[Uuid]>,
    ) -> Result<BTreeMap<Uuid, (BattleReport, BattleStatus)>, SinkError> {
        let ids: Option<Vec<Uuid>> = ids.map(<[Uuid]>::to_vec);
        let client = self.pool().get().await?;
        let battles = client
            .query(
                "SELECT b.id, b.started_at, b.ended_at, b.primary_system_id, b.primary_system_name,
                   b.primary_region_id, b.primary_region_name, b.total_killmails, b.total_pilots,
                   b.total_isk_destroyed, b.team_a_pilots, b.team_a_isk_destroyed,
                   b.team_a_isk_lost, b.team_a_ships_destroyed, b.team_a_ships_lost,
                   b.team_b_pilots, b.team_b_isk_destroyed, b.team_b_isk_lost,
                   b.team_b_ships_destroyed, b.team_b_ships_lost, b.is_decisive, b.winning_team,
                   b.status, b.last_killmail_at,
                   s.top_killers, s.top_losers, s.team_a_ship_types, s.team_b_ship_types,
                   s.team_a_alliances, s.team_b_alliances, s.killmail_timeline, s.systems_involved,
                   EXISTS (SELECT 1 FROM battle_killmails bk JOIN killmails k USING (killmail_id)
                           WHERE bk.battle_id = b.id
                             AND k.isk_estimated) AS isk_estimated,
                   s.battle_id IS NOT NULL AS has_statistics
                 FROM battles b LEFT JOIN battle_statistics s ON s.battle_id = b.id
                 WHERE $1::uuid[] IS NULL OR b.id = ANY($1)",
                &[&ids],
            )
            .await?;
        let third: HashSet<(Uuid, i64)> = client
            .query(
                "SELECT battle_id, character_id FROM battle_third_parties
                 WHERE $1::uuid[] IS NULL OR battle_id = ANY($1)",
                &[&ids],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut participants: HashMap<Uuid, Vec<Participant>> = HashMap::new();
        for r in client
            .query(
                &format!(
                    "SELECT {PARTICIPANT_COLUMNS} FROM battle_participants
                     WHERE $1::uuid[] IS NULL OR battle_id = ANY($1)
                     ORDER BY battle_id, character_id"
                ),
                &[&ids],
            )
            .await?
        {
            let battle_id: Uuid = r.get(0);
            let third_party = third.contains(&(battle_id, r.get(1)));
            participants
                .entry(battle_id)
                .or_default()
                .push(participant_of(&r, third_party)?);
        }
        let mut killmails: HashMap<Uuid, Vec<BattleKillmail>> = HashMap::new();
        for r in client
            .query(
                &format!(
                    "SELECT {BATTLE_KILLMAIL_COLUMNS} FROM battle_killmails
                     WHERE $1::uuid[] IS NULL OR battle_id = ANY($1)
                     ORDER BY battle_id, killmail_time, killmail_id"
                ),
                &[&ids],
            )
            .await?
        {
            killmails
                .entry(r.get(0))
                .or_default()
                .push(battle_killmail_of(&r)?);
        }
        let mut out = BTreeMap::new();
        for r in &battles {
            let (report, status) = battle_from_row(r, &mut participants, &mut killmails)?;
            out.insert(report.battle_id, (report, status));
        }
        Ok(out)
    }
}

/// The columns of `battle_participants` that [`participant_of`] reads, in its order.
pub(crate) const PARTICIPANT_COLUMNS: &str = "battle_id, character_id, character_name, \
    corporation_id, corporation_name, alliance_id, alliance_name, team, ships_flown, kills, \
    deaths, damage_done, damage_received, isk_destroyed, isk_lost, first_seen_at, last_seen_at";

/// The columns of `battle_killmails` that [`battle_killmail_of`] reads, in its order.
pub(crate) const BATTLE_KILLMAIL_COLUMNS: &str = "battle_id, killmail_id, killmail_time, \
    system_id, victim_character_id, victim_alliance_id, victim_ship_type_id, victim_team, \
    isk_destroyed";

/// The participant of a [`PARTICIPANT_COLUMNS`] row.
pub(crate) fn participant_of(r: &Row, third_party: bool) -> Result<Participant, SinkError> {
    let battle_id: Uuid = r.get(0);
    let ships: serde_json::Value = r.get(8);
    Ok(Participant {
        character_id: r.get(1),
        character_name: r.get(2),
        corporation_id: r.get(3),
        corporation_name: r.get(4),
        alliance_id: r.get(5),
        alliance_name: r.get(6),
        team: team(battle_id, r.get(7))?,
        third_party,
        ships_flown: decode(battle_id, "ships_flown", ships)?,
        kills: r.get::<_, Option<i32>>(9).unwrap_or(0),
        deaths: r.get::<_, Option<i32>>(10).unwrap_or(0),
        damage_done: r.get::<_, Option<i64>>(11).unwrap_or(0),
        damage_received: r.get::<_, Option<i64>>(12).unwrap_or(0),
        isk_destroyed: r.get::<_, Option<i64>>(13).unwrap_or(0),
        isk_lost: r.get::<_, Option<i64>>(14).unwrap_or(0),
        first_seen_at: r.get(15),
        last_seen_at: r.get(16),
    })
}

/// The battle killmail of a [`BATTLE_KILLMAIL_COLUMNS`] row.
pub(crate) fn battle_killmail_of(r: &Row) -> Result<BattleKillmail, SinkError> {
    Ok(BattleKillmail {
        killmail_id: r.get(1),
        killmail_time: r.get(2),
        system_id: r.get(3),
        victim_character_id: r.get(4),
        victim_alliance_id: r.get(5),
        victim_ship_type_id: r.get(6),
        victim_team: team(r.get(0), r.get(7))?,
        isk_destroyed: r.get::<_, Option<i64>>(8).unwrap_or(0),
    })
}

/// The killmail of a `(killmail_id, record)` row.
fn killmail_of(row: &Row) -> Result<Killmail, SinkError> {
    let id: i64 = row.get(0);
    let record: &[u8] = row.get(1);
    crate::record::decode(record).map_err(|source| SinkError::StoredKillmail {
        killmail_id: id,
        source,
    })
}

fn battle_from_row(
    r: &Row,
    participants: &mut HashMap<Uuid, Vec<Participant>>,
    killmails: &mut HashMap<Uuid, Vec<BattleKillmail>>,
) -> Result<(BattleReport, BattleStatus), SinkError> {
    let id: Uuid = r.get(0);
    let int = |i: usize| r.get::<_, Option<i32>>(i).unwrap_or(0);
    let big = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0);
    let kms = killmails.remove(&id).unwrap_or_default();
    let participants = participants.remove(&id).unwrap_or_default();
    let has_statistics: bool = r.get(33);
    let statistics = if !has_statistics && kms.len() == DERIVED_STATISTICS_KILLMAILS {
        derived_statistics(r.get(3), r.get(4), &participants, &kms)
    } else {
        stored_statistics(r, id)?
    };
    let status_text: String = r.get(22);
    let status = BattleStatus::parse(&status_text).ok_or_else(|| SinkError::StoredBattle {
        battle_id: id,
        message: format!("unknown status {status_text:?}"),
    })?;
    let winning_team = match r.get::<_, Option<String>>(21) {
        Some(t) => Some(team(id, t)?),
        None => None,
    };
    let first_killmail_id = kms.first().map(|k| k.killmail_id).unwrap_or_default();
    let last_killmail_at: Option<DateTime<Utc>> = r.get(23);
    let report = BattleReport {
        battle_id: id,
        first_killmail_id,
        started_at: r.get(1),
        ended_at: r.get(2),
        primary_system_id: r.get(3),
        primary_system_name: r.get(4),
        primary_region_id: r.get(5),
        primary_region_name: r.get(6),
        total_killmails: int(7),
        total_pilots: int(8),
        total_isk_destroyed: big(9),
        team_a: TeamTotals {
            pilots: int(10),
            isk_destroyed: big(11),
            isk_lost: big(12),
            ships_destroyed: int(13),
            ships_lost: int(14),
        },
        team_b: TeamTotals {
            pilots: int(15),
            isk_destroyed: big(16),
            isk_lost: big(17),
            ships_destroyed: int(18),
            ships_lost: int(19),
        },
        is_decisive: r.get::<_, Option<bool>>(20).unwrap_or(false),
        winning_team,
        last_killmail_at: last_killmail_at.unwrap_or_else(|| r.get(2)),
        isk_estimated: r.get(32),
        participants,
        killmails: kms,
        statistics,
    };
    Ok((report, status))
}

/// The statistics of a `battle_statistics` row (columns 24 to 31 of `r`; defaults when NULL).
fn stored_statistics(r: &Row, id: Uuid) -> Result<Statistics, SinkError> {
    let json = |i: usize| {
        r.get::<_, Option<serde_json::Value>>(i)
            .unwrap_or(serde_json::Value::Null)
    };
    Ok(Statistics {
        top_killers: decode(id, "top_killers", json(24))?,
        top_losers: decode(id, "top_losers", json(25))?,
        team_a_ship_types: decode(id, "team_a_ship_types", json(26))?,
        team_b_ship_types: decode(id, "team_b_ship_types", json(27))?,
        team_a_alliances: decode(id, "team_a_alliances", json(28))?,
        team_b_alliances: decode(id, "team_b_alliances", json(29))?,
        killmail_timeline: decode(id, "killmail_timeline", json(30))?,
        systems_involved: decode(id, "systems_involved", json(31))?,
    })
}

fn team(battle_id: Uuid, s: String) -> Result<Team, SinkError> {
    match s.as_str() {
        "team_a" => Ok(Team::A),
        "team_b" => Ok(Team::B),
        _ => Err(SinkError::StoredBattle {
            battle_id,
            message: format!("unknown team {s:?}"),
        }),
    }
}

fn decode<T: serde::de::DeserializeOwned + Default>(
    battle_id: Uuid,
    column: &str,
    v: serde_json::Value,
) -> Result<T, SinkError> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v).map_err(|e| SinkError::StoredBattle {
        battle_id,
        message: format!("{column}: {e}"),
    })
}
