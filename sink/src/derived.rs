//! Statistics the sink does not store: a battle of one killmail gets no `battle_statistics`
//! row when its statistics follow from the rows that are stored anyway (its participants, its
//! battle killmail and its primary system), and readers rebuild them from those rows.
//!
//! Why: most battles are a single killmail, and their eight JSONB statistics values repeat
//! what `battle_participants` and `battle_killmails` already hold (issue 13 measured 176 MB of
//! statistics JSONB for 210k battles). The sink writes the row whenever
//! [`derived_statistics`] would not give back exactly the engine's statistics (an alliance
//! named only on a structure's loss, say), so leaving it out never changes what is read.
//!
//! [`derived_statistics`] follows `battles_dataflow::summarize`: top killers and losers from
//! the participants, ship types and alliance pilots from the participants, alliance losses and
//! the timeline from the battle killmails, the systems from the killmails and the battle's
//! primary system.

use std::collections::BTreeMap;

use battles_dataflow::report::{
    AllianceStats, BattleKillmail, BattleReport, Participant, Statistics, SystemStats, Team,
    TimelineEntry,
};
use battles_dataflow::summarize::{top_killers, top_losers};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::error::SinkError;
use crate::load::{
    battle_killmail_of, participant_of, BATTLE_KILLMAIL_COLUMNS, PARTICIPANT_COLUMNS,
};

/// Battles of this many killmails may go without a statistics row.
pub const DERIVED_STATISTICS_KILLMAILS: usize = 1;

/// True when `report`'s statistics need no `battle_statistics` row: it has
/// [`DERIVED_STATISTICS_KILLMAILS`] killmail and its stored rows give back its statistics.
pub fn statistics_are_derived(report: &BattleReport) -> bool {
    report.killmails.len() == DERIVED_STATISTICS_KILLMAILS
        && report.total_killmails as usize == DERIVED_STATISTICS_KILLMAILS
        && derived_statistics(
            report.primary_system_id,
            &report.primary_system_name,
            &report.participants,
            &report.killmails,
        ) == report.statistics
}

/// The statistics that a battle's participants, killmails and primary system imply.
pub fn derived_statistics(
    primary_system_id: i64,
    primary_system_name: &str,
    participants: &[Participant],
    killmails: &[BattleKillmail],
) -> Statistics {
    let mut ship_types: [BTreeMap<i64, i32>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for p in participants {
        for ship in &p.ships_flown {
            *ship_types[team_index(p.team)].entry(*ship).or_insert(0) += 1;
        }
    }
    let [team_a_ship_types, team_b_ship_types] = ship_types;
    let [team_a_alliances, team_b_alliances] = alliances(participants, killmails);
    Statistics {
        top_killers: top_killers(participants),
        top_losers: top_losers(participants),
        team_a_ship_types,
        team_b_ship_types,
        team_a_alliances,
        team_b_alliances,
        killmail_timeline: killmails
            .iter()
            .map(|k| TimelineEntry {
                timestamp: k.killmail_time,
                killmail_id: k.killmail_id,
                victim_team: k.victim_team,
                isk_destroyed: k.isk_destroyed,
            })
            .collect(),
        systems_involved: systems(primary_system_id, primary_system_name, killmails),
    }
}

fn team_index(team: Team) -> usize {
    (team == Team::B) as usize
}

/// Each side's alliances: pilots and ISK destroyed from the participants, ISK lost from the
/// killmails' victims; named as the participants name them (empty when none does). Most
/// pilots first, then most ISK destroyed, then the smaller id.
fn alliances(
    participants: &[Participant],
    killmails: &[BattleKillmail],
) -> [Vec<AllianceStats>; 2] {
    let names: BTreeMap<i64, &str> = participants
        .iter()
        .filter_map(|p| Some((p.alliance_id?, p.alliance_name.as_deref()?)))
        .collect();
    let mut sides: [BTreeMap<i64, AllianceStats>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let name_of = |id: i64| names.get(&id).map(|n| (*n).to_owned()).unwrap_or_default();
    for k in killmails {
        if let Some(a) = k.victim_alliance_id {
            let e = alliance_entry(&mut sides[team_index(k.victim_team)], a, name_of);
            e.isk_lost = e.isk_lost.saturating_add(k.isk_destroyed);
        }
    }
    for p in participants {
        if let Some(a) = p.alliance_id {
            let e = alliance_entry(&mut sides[team_index(p.team)], a, name_of);
            e.pilots += 1;
            e.isk_destroyed = e.isk_destroyed.saturating_add(p.isk_destroyed);
        }
    }
    sides.map(|side| {
        let mut v: Vec<AllianceStats> = side.into_values().collect();
        v.sort_by(|a, b| {
            (b.pilots, b.isk_destroyed, a.alliance_id).cmp(&(
                a.pilots,
                a.isk_destroyed,
                b.alliance_id,
            ))
        });
        v
    })
}

/// The entry of alliance `id` in `side`, new (named by `name_of`) when it has none.
fn alliance_entry(
    side: &mut BTreeMap<i64, AllianceStats>,
    id: i64,
    name_of: impl Fn(i64) -> String,
) -> &mut AllianceStats {
    side.entry(id).or_insert_with(|| AllianceStats {
        alliance_id: id,
        name: name_of(id),
        pilots: 0,
        isk_destroyed: 0,
        isk_lost: 0,
    })
}

/// Killmails per system, most first (ties: smaller id); only the primary system is named.
fn systems(
    primary_system_id: i64,
    primary_system_name: &str,
    killmails: &[BattleKillmail],
) -> Vec<SystemStats> {
    let mut counts: BTreeMap<i64, i32> = BTreeMap::new();
    for k in killmails {
        *counts.entry(k.system_id).or_insert(0) += 1;
    }
    let mut v: Vec<SystemStats> = counts
        .into_iter()
        .map(|(system_id, killmails)| SystemStats {
            system_id,
            name: if system_id == primary_system_id {
                primary_system_name.to_owned()
            } else {
                String::new()
            },
            killmails,
        })
        .collect();
    v.sort_by(|a, b| (b.killmails, a.system_id).cmp(&(a.killmails, b.system_id)));
    v
}

/// The statistics of the stored battle `battle_id` (primary system `primary_system_id`, named
/// `primary_system_name`) rebuilt from its participant and battle killmail rows: what a reader
/// serves for a battle that has no `battle_statistics` row and
/// [`DERIVED_STATISTICS_KILLMAILS`] killmail.
pub async fn load_derived_statistics(
    client: &Client,
    battle_id: Uuid,
    primary_system_id: i64,
    primary_system_name: &str,
) -> Result<Statistics, SinkError> {
    let participants = client
        .query(
            &format!(
                "SELECT {PARTICIPANT_COLUMNS} FROM battle_participants WHERE battle_id = $1 \
                 ORDER BY character_id"
            ),
            &[&battle_id],
        )
        .await?
        .iter()
        .map(|r| participant_of(r, false))
        .collect::<Result<Vec<_>, _>>()?;
    let killmails = client
        .query(
            &format!(
                "SELECT {BATTLE_KILLMAIL_COLUMNS} FROM battle_killmails WHERE battle_id = $1 \
                 ORDER BY killmail_time, killmail_id"
            ),
            &[&battle_id],
        )
        .await?
        .iter()
        .map(battle_killmail_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(derived_statistics(
        primary_system_id,
        primary_system_name,
        &participants,
        &killmails,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use battles_dataflow::killmail::{Attacker, Killmail, Victim};
    use battles_dataflow::summarize::summarize;
    use chrono::TimeZone;

    fn attacker(character_id: i64, alliance: Option<(i64, &str)>, final_blow: bool) -> Attacker {
        Attacker {
            character_id: Some(character_id),
            character_name: Some(format!("Pilot {character_id}")),
            corporation_id: Some(98_000_000 + character_id),
            corporation_name: None,
            alliance_id: alliance.map(|a| a.0),
            alliance_name: alliance.map(|a| a.1.to_owned()),
            faction_id: None,
            ship_type_id: Some(587),
            ship_type_name: None,
            weapon_type_id: None,
            damage_done: 100,
            final_blow,
        }
    }

    /// A killmail at `minute` whose victim is `victim` (None: a structure of alliance 99).
    fn killmail(id: i64, minute: u32, victim: Option<i64>) -> Killmail {
        Killmail {
            killmail_id: id,
            killmail_hash: None,
            killmail_time: chrono::Utc
                .with_ymd_and_hms(2021, 11, 28, 10, minute, 0)
                .unwrap(),
            solar_system_id: 30_001_046,
            solar_system_name: "Jorund".into(),
            constellation_id: 20_000_153,
            region_id: 10_000_012,
            region_name: "Curse".into(),
            victim: Victim {
                character_id: victim,
                character_name: victim.map(|v| format!("Pilot {v}")),
                corporation_id: Some(98_000_100),
                corporation_name: None,
                alliance_id: Some(99),
                alliance_name: Some("Structure Owners".into()),
                faction_id: None,
                ship_type_id: if victim.is_some() { 17_738 } else { 35_832 },
                ship_type_name: None,
                ship_group_id: Some(if victim.is_some() { 27 } else { 1_657 }),
                ship_category_id: Some(if victim.is_some() { 6 } else { 65 }),
                damage_taken: 300,
            },
            attackers: vec![
                attacker(1, Some((7, "Attackers United")), true),
                attacker(2, Some((7, "Attackers United")), false),
                attacker(3, None, false),
            ],
            isk_value: 150_000_000,
            isk_estimated: false,
            dropped_value: None,
            destroyed_value: None,
            fitted_value: None,
            npc: None,
            solo: None,
            awox: None,
        }
    }

    #[test]
    fn a_ship_loss_battle_has_the_statistics_of_its_rows() {
        let report = summarize(&[&killmail(1, 0, Some(50))]);
        assert!(!report.statistics.top_killers.is_empty());
        assert!(
            !report.statistics.team_b_alliances.is_empty()
                || !report.statistics.team_a_alliances.is_empty()
        );
        assert!(statistics_are_derived(&report));
    }

    #[test]
    fn an_alliance_named_only_on_a_structure_keeps_its_row() {
        // The structure's alliance is named by the killmail alone: no participant row says
        // its name, so the statistics must be stored.
        let report = summarize(&[&killmail(1, 0, None)]);
        assert!(report
            .statistics
            .team_a_alliances
            .iter()
            .chain(&report.statistics.team_b_alliances)
            .any(|a| a.alliance_id == 99 && a.name == "Structure Owners"));
        assert!(!statistics_are_derived(&report));
    }

    #[test]
    fn battles_of_several_killmails_keep_their_row() {
        let (a, b) = (killmail(1, 0, Some(50)), killmail(2, 1, Some(51)));
        let report = summarize(&[&a, &b]);
        assert_eq!(report.total_killmails, 2);
        assert!(!statistics_are_derived(&report));
    }
}
